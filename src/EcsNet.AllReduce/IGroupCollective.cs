using EcsNet.AllReduce.Ring;

namespace EcsNet.AllReduce;

/// <summary>
/// The collectives of one membership generation, whatever carries them (<see cref="Topology.GroupCollectives"/>):
/// the gRPC ring, shared memory, or both. Ranks in failures and in <see cref="Abort"/> are the generation's.
/// </summary>
public interface IGroupCollective : ICollective, IAsyncDisposable
{
    long Generation { get; }

    /// <summary>Every rank of the generation, in rank order.</summary>
    IReadOnlyList<RingMember> Members { get; }

    /// <summary>Why the group failed or was aborted (null while it works).</summary>
    Exception? Failure { get; }

    /// <summary>How the data travels, for logs (e.g. "shared memory, 3 ranks").</summary>
    string Plan { get; }

    /// <summary>
    /// Fails the group from outside (e.g. the rendezvous dropped <paramref name="blamedRank"/>): a collective
    /// waiting on it, and every later one, throws <see cref="PeerFailedException"/> with <paramref name="reason"/>.
    /// </summary>
    void Abort(string reason, int blamedRank = -1);
}
