using EcsNet.Core.Training;

namespace EcsNet.AllReduce;

/// <summary>
/// A collective failed because of a peer: it died, stalled past the timeout, sent a mismatched tensor or
/// belongs to another generation. <see cref="Exception.Message"/> names the peer (rank and address).
/// </summary>
public sealed class PeerFailedException : CollectiveFailedException
{
    public PeerFailedException(int rank, string address, string message, Exception? inner = null)
        : base(message, inner)
    {
        Rank = rank;
        Address = address;
    }

    /// <summary>The rank held responsible (-1 when unknown).</summary>
    public int Rank { get; }

    public string Address { get; }

    /// <summary>The rank <paramref name="failure"/> blames: a peer failure's, otherwise −1.</summary>
    internal static int BlamedBy(Exception failure) => failure is PeerFailedException p ? p.Rank : -1;

    /// <summary>
    /// Keeps the first failure of a collective group in <paramref name="slot"/>; false when one was kept already.
    /// </summary>
    internal static bool KeepFirst(ref Exception? slot, Exception failure) => Interlocked.CompareExchange(ref slot, failure, null) is null;

    /// <summary>The failure of a group aborted from outside at <paramref name="rank"/>, blaming <paramref name="blamed"/> (null: nobody).</summary>
    internal static PeerFailedException Aborted(Ring.RingMember? blamed, long generation, int rank, string reason) =>
        new(blamed?.Rank ?? -1, blamed?.Address ?? "", $"generation {generation} aborted at rank {rank}: {reason}");

    /// <summary>What a call on a group that failed before throws: the same peer blamed, and why it failed.</summary>
    internal static PeerFailedException AlreadyFailed(Exception first, string group) =>
        new(BlamedBy(first), first is PeerFailedException p ? p.Address : "", $"{group} already failed: {first.Message}", first);
}
