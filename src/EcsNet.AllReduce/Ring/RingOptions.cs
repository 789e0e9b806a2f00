using EcsNet.AllReduce.Topology;

namespace EcsNet.AllReduce.Ring;

/// <summary>How gradients travel on the wire.</summary>
public enum WireCompression
{
    /// <summary>float32 as is: results are exact sums in the ring's fixed order.</summary>
    None,

    /// <summary>
    /// float16 payload: half the bytes; partial sums are rounded to fp16 at every hop and the final value is
    /// rounded once more, so every replica still ends bit-identical. Only for float32 buffers.
    /// </summary>
    Float16,
}

/// <summary>Settings of the ring all-reduce (docs/METHOD.md §7). Every figure can be set from the CLI.</summary>
public sealed record RingOptions
{
    /// <summary>
    /// Bytes per wire message. Segments are cut into pieces of this size so that sending, receiving and
    /// reducing overlap (pipelining). 64 KiB measured best on loopback here: each received piece becomes a
    /// protobuf ByteString, and below the large-object threshold (85,000 bytes) that is a cheap gen-0
    /// allocation instead of fresh large-object memory (docs/BENCHMARKS-allreduce.md).
    /// </summary>
    public int ChunkBytes { get; init; } = 64 << 10;

    /// <summary>
    /// Bytes a sender lets gRPC buffer in the HTTP/2 response before it flushes, while more chunks are
    /// queued (a chunk is flushed at once when nothing follows it). Fewer flushes, fewer thread hand-offs.
    /// </summary>
    public int FlushBytes { get; init; } = 1 << 20;

    /// <summary>
    /// How long a rank waits for its predecessor's next chunk (or for its successor to accept one) before it
    /// fails the collective naming that peer. Large buckets over slow links need more.
    /// </summary>
    public TimeSpan PeerTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long opening the stream to the successor may take (it may still be starting).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Payload encoding between hosts; see <see cref="WireCompression"/>. Shared memory inside a host always
    /// carries exact float32.
    /// </summary>
    public WireCompression Compression { get; init; } = WireCompression.None;

    /// <summary>Shared memory inside a host, gRPC between hosts (<see cref="Transport.Auto"/>), or one of the two for all.</summary>
    public Transport Transport { get; init; } = Transport.Auto;

    /// <summary>
    /// Bytes of one shared-memory slot: an all-reduce inside a host goes in chunks of this size (each rank holds
    /// two slots). 1 MiB measured best on this project's 2-core VM (docs/BENCHMARKS-allreduce.md): big enough
    /// that the two waits per chunk cost little, small enough to stay in cache and to start the next chunk's
    /// copies while peers still reduce. A host of 8 ranks needs 16 MiB of /dev/shm.
    /// </summary>
    public int ShmSlotBytes { get; init; } = 1 << 20;

    /// <summary>Checked when a ring is formed: a clear error instead of a broken stream.</summary>
    public void Validate()
    {
        if (ChunkBytes < 1024 || ChunkBytes > (64 << 20))
            throw new ArgumentOutOfRangeException(nameof(ChunkBytes), ChunkBytes, "chunk size must be between 1 KiB and 64 MiB");
        if (FlushBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(FlushBytes), FlushBytes, "flush size must not be negative");
        if (PeerTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(PeerTimeout), PeerTimeout, "peer timeout must be positive");
        if (ShmSlotBytes < 4096 || ShmSlotBytes > (256 << 20) || ShmSlotBytes % 64 != 0)
            throw new ArgumentOutOfRangeException(nameof(ShmSlotBytes), ShmSlotBytes, "shared-memory slot must be 4 KiB to 256 MiB and a multiple of 64 bytes");
        if (!Enum.IsDefined(Transport))
            throw new ArgumentOutOfRangeException(nameof(Transport), Transport, $"transport must be one of {TransportNames.List}");
        if (ConnectTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(ConnectTimeout), ConnectTimeout, "connect timeout must be positive");
    }
}
