using EcsNet.Core.Runtime;
using EcsNet.Core.Training;
using static TorchSharp.torch;

namespace EcsNet.AllReduce.DataParallel;

/// <summary>
/// The Core trainers' <see cref="IGradientSync"/> over <see cref="DistributedDataParallel"/> and a ring (or any
/// <see cref="ICollective"/>): gradients averaged in overlapped buckets, control values (loss terms, |Φ|,
/// resume steps) summed with a float64 all-reduce. Collectives block the calling (training) thread; a
/// failing or silent peer surfaces as <see cref="PeerFailedException"/> naming its rank within the ring's
/// peer timeout. Each synchronised backward adds its bytes and times to the all-reduce metrics
/// (<see cref="EcsNetMetrics"/>, docs/METRICS.md).
/// </summary>
public sealed class DataParallelGradientSync : IGradientSync
{
    private readonly ICollective collective;
    private readonly DataParallelOptions options;
    private DistributedDataParallel? dataParallel;
    private bool attached;

    public DataParallelGradientSync(ICollective collective, DataParallelOptions? options = null)
    {
        this.collective = collective;
        this.options = options ?? new DataParallelOptions();
        this.options.Validate();
    }

    public int Rank => collective.Rank;

    public int WorldSize => collective.WorldSize;

    public bool IsRoot => collective.Rank == 0;

    /// <summary>Timings of the last synchronised backward (null before the first).</summary>
    public DataParallelStats? LastSync => dataParallel?.LastSync;

    /// <summary>The bucket sizes of the attached model, in launch order.</summary>
    public IReadOnlyList<long> BucketSizes => Attached.BucketSizes;

    private DistributedDataParallel Attached => dataParallel ?? throw new InvalidOperationException(attached ? "a group of one has no buckets" : "attach a module first");

    /// <summary>
    /// A group of one (an elastic training down to its last member, a cluster run on one worker) trains exactly as a
    /// single process: no buckets, probes or copies; every collective is the identity.
    /// </summary>
    private bool Alone => collective.WorldSize == 1;

    public void Attach(nn.Module module)
    {
        if (dataParallel is not null || attached)
            throw new InvalidOperationException("this gradient sync is already attached to a module");
        attached = true;
        if (!Alone)
            dataParallel = new DistributedDataParallel(module, collective, options);
    }

    public void BroadcastParameters(int root = 0)
    {
        if (!Alone)
            Attached.BroadcastParametersAsync(root).GetAwaiter().GetResult();
    }

    public void Broadcast(float[] values, int root)
    {
        if (!Alone)
            collective.BroadcastAsync(values, root).GetAwaiter().GetResult();
    }

    public void Backward(Tensor loss)
    {
        if (Alone)
        {
            loss.backward();
            return;
        }
        Attached.Backward(loss);
        if (Attached.Synchronizing && Attached.LastSync is { } s)
            EcsNetMetrics.RecordAllReduce(s.Bytes, s.CommunicationSeconds, s.WaitSeconds);
    }

    public void SumAcrossRanks(double[] values)
    {
        if (!Alone)
            collective.AllReduceAsync(values.AsMemory(), ReduceOp.Sum).GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        dataParallel?.Dispose();
        dataParallel = null;
    }
}
