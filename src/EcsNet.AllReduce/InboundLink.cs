using System.Threading.Channels;
using EcsNet.AllReduce.Wire;

namespace EcsNet.AllReduce;

/// <summary>
/// The receiving end of one ring for one generation: the peer server pushes the predecessor's chunks here
/// and the ring reads them. Only one stream may feed it.
/// </summary>
internal sealed class InboundLink
{
    private int claimed;

    public InboundLink(long generation, RingMember self, RingMember predecessor, int capacity)
    {
        Generation = generation;
        Self = self;
        Predecessor = predecessor;
        Chunks = Channel.CreateBounded<RingChunk>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public long Generation { get; }

    public RingMember Self { get; }

    public RingMember Predecessor { get; }

    public Channel<RingChunk> Chunks { get; }

    /// <summary>Cancelled when the ring is closed or aborted: the serving stream then ends.</summary>
    public CancellationTokenSource Closing { get; } = new();

    /// <summary>Set before <see cref="Closing"/> is cancelled when the ring gave up (sent back as the status).</summary>
    public string? AbortReason { get; set; }

    /// <summary>True for the first stream only; a second claimant is rejected.</summary>
    public bool TryClaim() => Interlocked.CompareExchange(ref claimed, 1, 0) == 0;

    public void Close(string? abortReason)
    {
        AbortReason ??= abortReason;
        try { Closing.Cancel(); } catch (ObjectDisposedException) { }
    }
}
