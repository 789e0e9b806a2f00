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
}
