using Grpc.Core;

namespace EcsNet.AllReduce.Ring;

/// <summary>
/// The sending end of one ring for one generation, as the peer server sees it: the ring successor's Pull
/// stream is served by <see cref="Serve"/>. Only one stream may claim it.
/// </summary>
internal sealed class OutboundLink(long generation, RingMember self, RingMember successor, Func<IServerStreamWriter<RingFrame>, CancellationToken, Task> serve)
{
    private int claimed;

    public long Generation { get; } = generation;

    public RingMember Self { get; } = self;

    public RingMember Successor { get; } = successor;

    /// <summary>Writes the ring's outgoing chunks to the successor's stream until the ring closes.</summary>
    public Func<IServerStreamWriter<RingFrame>, CancellationToken, Task> Serve { get; } = serve;

    public bool Claimed => Volatile.Read(ref claimed) == 1;

    /// <summary>True for the first stream only; a second claimant is rejected.</summary>
    public bool TryClaim() => Interlocked.CompareExchange(ref claimed, 1, 0) == 0;
}
