using EcsNet.AllReduce.Ring;

namespace EcsNet.AllReduce.DataParallel;

/// <summary>Settings of data-parallel gradient synchronisation (docs/METHOD.md §7). Every figure can be set from the CLI.</summary>
public sealed record DataParallelOptions
{
    /// <summary>
    /// Gradient bytes per bucket: 25 MiB, PyTorch DDP's <c>bucket_cap_mb</c> default. Smaller buckets start
    /// communicating earlier in backward; larger ones pay the per-collective cost less often.
    /// </summary>
    public long BucketBytes { get; init; } = 25L << 20;

    /// <summary>
    /// Cap of the first bucket (the last layers' gradients): 1 MiB, DDP's <c>first_bucket_bytes_cap</c>
    /// default, so that communication starts early in backward.
    /// </summary>
    public long FirstBucketBytes { get; init; } = 1L << 20;

    /// <summary>
    /// Buckets a model gets at least (0: no minimum): the cap shrinks to a model's gradient bytes over this
    /// (never below <see cref="SmallestBucketBytes"/>). Under DDP's 25 MiB cap a small model is one bucket besides
    /// the first, which can only start at the end of backward; measured on the small CAM net (4.7 MB, 2
    /// workers), 6 buckets hid 79–85 % of the all-reduce and the 25 MiB default 0–56 %
    /// (docs/BENCHMARKS-allreduce.md). Models of 200 MB and more keep DDP's cap.
    /// </summary>
    public int MinBuckets { get; init; } = 8;

    /// <summary>
    /// Cap of the last bucket (the first layers' gradients, which are final only when backward returns, so their
    /// all-reduce cannot overlap it): the first parameters up to this size get a bucket of their own (at least one
    /// parameter stays for the other buckets). 0, the default: no separate last bucket, as DDP; on the 2-core VM
    /// a 256 KiB tail made no difference beyond the run-to-run spread (docs/BENCHMARKS-allreduce.md).
    /// </summary>
    public long LastBucketBytes { get; init; }

    /// <summary>The smallest cap <see cref="MinBuckets"/> may lead to: below it the per-collective cost dominates.</summary>
    public long SmallestBucketBytes { get; init; } = 256L << 10;

    /// <summary>The bucket cap for a model of <paramref name="gradientBytes"/>.</summary>
    public long CapFor(long gradientBytes) => MinBuckets <= 0
        ? BucketBytes
        : Math.Min(BucketBytes, Math.Max(SmallestBucketBytes, (gradientBytes + MinBuckets - 1) / MinBuckets));

    /// <summary>Start each bucket's all-reduce as soon as its gradients are final, while backward continues.</summary>
    public bool OverlapWithBackward { get; init; } = true;

    /// <summary>
    /// Also watch layers whose input needs no gradient (the first layer, layers on detached features): they
    /// read a leaf copy of their input that requires one, so that backward reaches the readiness probe in
    /// front of them. Costs those layers' input gradient (computed and dropped); without it their buckets,
    /// and every bucket after them, start only when backward returns.
    /// </summary>
    public bool ProbeInputsWithoutGradient { get; init; } = true;

    /// <summary>Gradient payload on the wire (fp16 halves the bytes; see <see cref="WireCompression"/>).</summary>
    public WireCompression Compression { get; init; } = WireCompression.None;

    /// <summary>
    /// Average (the default, as DDP): each rank's loss is the mean over its equal shard, so the average of
    /// the shard gradients is the gradient of the global-batch mean. Sum: the loss already carries the weights.
    /// </summary>
    public ReduceOp Reduce { get; init; } = ReduceOp.Average;

    /// <summary>Also copy rank 0's buffers (e.g. BatchNorm running statistics) at start-up.</summary>
    public bool BroadcastBuffers { get; init; } = true;

    public void Validate()
    {
        if (BucketBytes < 4)
            throw new ArgumentOutOfRangeException(nameof(BucketBytes), BucketBytes, "a bucket must hold at least one float");
        if (LastBucketBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(LastBucketBytes), LastBucketBytes, "the last bucket's cap must not be negative");
        if (MinBuckets < 0)
            throw new ArgumentOutOfRangeException(nameof(MinBuckets), MinBuckets, "the minimum number of buckets must not be negative");
        if (SmallestBucketBytes < 4)
            throw new ArgumentOutOfRangeException(nameof(SmallestBucketBytes), SmallestBucketBytes, "a bucket must hold at least one float");
        if (FirstBucketBytes < 4)
            throw new ArgumentOutOfRangeException(nameof(FirstBucketBytes), FirstBucketBytes, "a bucket must hold at least one float");
    }
}
