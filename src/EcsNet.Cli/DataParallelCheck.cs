using System.Diagnostics;
using EcsNet.AllReduce;
using EcsNet.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.Cli;

/// <summary>
/// The workloads of `ecsnet bench dataparallel`: (1) equivalence — a small BatchNorm-free CNN trained for a
/// number of SGD steps on shards of one global batch must end with the weights of single-process training
/// on the whole batch; (2) overlap — how much of the gradient all-reduce hides behind backward on the
/// small CAM net (SmallBackbone trunk + 1×1 classifier + GAP, multilabel soft margin, SPEC §2).
/// </summary>
internal static class DataParallelCheck
{
    public const int GlobalBatch = 12;

    public static Module<Tensor, Tensor> EquivalenceNet(long seed)
    {
        torch.manual_seed(seed);
        return Sequential(
            ("conv1", Conv2d(3, 16, 3, padding: 1)),
            ("relu1", ReLU()),
            ("conv2", Conv2d(16, 32, 3, stride: 2, padding: 1)),
            ("relu2", ReLU()),
            ("conv3", Conv2d(32, 32, 3, stride: 2, padding: 1)),
            ("relu3", ReLU()),
            ("pool", AdaptiveAvgPool2d(1)),
            ("flat", Flatten()),
            ("fc", Linear(32, 5)));
    }

    public static (Tensor X, Tensor Y) EquivalenceBatch()
    {
        torch.manual_seed(2024);
        return (randn(GlobalBatch, 3, 16, 16), randint(0, 5, GlobalBatch, dtype: ScalarType.Int64));
    }

    private static optim.Optimizer Sgd(Module model) => optim.SGD(model.parameters(), 0.05, momentum: 0.9, weight_decay: 1e-4);

    public static float[] Weights(Module model) =>
        model.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray()).ToArray();

    /// <summary>The reference: one process, whole batch.</summary>
    public static float[] SingleProcess(int steps)
    {
        var (x, y) = EquivalenceBatch();
        var model = EquivalenceNet(1);
        var sgd = Sgd(model);
        for (var step = 0; step < steps; step++)
        {
            sgd.zero_grad();
            using var scope = NewDisposeScope();
            functional.cross_entropy(model.forward(x), y).backward();
            sgd.step();
        }
        return Weights(model);
    }

    /// <summary>This rank's part: initial weights from rank 0 (other ranks start from another seed), its shard, same optimizer.</summary>
    public static async Task<float[]> DataParallelAsync(ICollective collective, int steps, DataParallelOptions options)
    {
        var (x, y) = EquivalenceBatch();
        var model = EquivalenceNet(collective.Rank == 0 ? 1 : 1000 + collective.Rank);
        using var dp = new DataParallel(model, collective, options);
        await dp.BroadcastParametersAsync();
        var sgd = Sgd(model);
        var (start, count) = DataParallel.Shard(GlobalBatch, collective.Rank, collective.WorldSize);
        var xs = x.narrow(0, start, count);
        var ys = y.narrow(0, start, count);
        await Task.Run(() =>
        {
            for (var step = 0; step < steps; step++)
                dp.Step(() => functional.cross_entropy(model.forward(xs), ys), sgd);
        });
        return Weights(model);
    }

    /// <summary>Timings of the overlap measurement (medians over steps, seconds).</summary>
    public sealed record OverlapResult(double BackwardOnly, double SyncAfterBackward, double Overlapped, double ExposedWait, int Buckets, int Started, long Parameters)
    {
        /// <summary>All-reduce time when nothing overlaps: (backward then sync) − backward alone.</summary>
        public double Communication => SyncAfterBackward - BackwardOnly;

        /// <summary>Share of that time that overlapping removed from the step.</summary>
        public double HiddenFraction => Communication <= 0 ? 0 : Math.Clamp((SyncAfterBackward - Overlapped) / Communication, 0, 1);
    }

    private sealed class CamNet : Module<Tensor, Tensor>
    {
        private readonly SmallBackbone trunk;
        private readonly Conv2d classifier;

        public CamNet() : base(nameof(CamNet))
        {
            trunk = new SmallBackbone();
            classifier = Conv2d(trunk.OutChannels, 20, 1, bias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor input) =>
            functional.adaptive_avg_pool2d(classifier.forward(trunk.forward(input)), 1).flatten(1);
    }

    /// <summary>
    /// Times the steps of the small CAM net three ways on every rank (same order everywhere): backward with
    /// no sync, backward then all buckets (overlap off), and overlapped buckets. Each figure: median step
    /// time (loss + backward + sync) over <paramref name="steps"/> after 2 warm-up steps.
    /// </summary>
    public static async Task<OverlapResult> OverlapAsync(ICollective collective, int steps, int imageSize, int perRankBatch, DataParallelOptions options)
    {
        torch.manual_seed(7);
        var model = new CamNet();
        var x = randn(perRankBatch, 3, imageSize, imageSize);
        var y = (rand(perRankBatch, 20) > 0.8).to(ScalarType.Float32);
        var overlapped = new DataParallel(model, collective, options);
        var serial = new DataParallel(model, collective, options with { OverlapWithBackward = false });
        serial.Dispose(); // no hooks needed when nothing overlaps
        await overlapped.BroadcastParametersAsync();

        double Median(Func<double> step)
        {
            for (var i = 0; i < 2; i++)
                step();
            var times = Enumerable.Range(0, steps).Select(_ => step()).OrderBy(t => t).ToArray();
            return times[times.Length / 2];
        }

        double Time(DataParallel dp, bool sync)
        {
            model.zero_grad();
            using var scope = NewDisposeScope();
            using var quiet = sync ? null : dp.NoSync();
            var clock = Stopwatch.StartNew();
            var loss = functional.multilabel_soft_margin_loss(model.forward(x), y);
            dp.Backward(loss);
            return clock.Elapsed.TotalSeconds;
        }

        var waits = new List<double>();
        var result = await Task.Run(() =>
        {
            var backwardOnly = Median(() => Time(overlapped, sync: false));
            var syncAfter = Median(() => Time(serial, sync: true));
            var overlap = Median(() =>
            {
                var t = Time(overlapped, sync: true);
                waits.Add(overlapped.LastSync!.WaitSeconds);
                return t;
            });
            return (backwardOnly, syncAfter, overlap);
        });
        var stats = overlapped.LastSync!;
        overlapped.Dispose();
        var exposed = waits.OrderBy(w => w).ElementAt(waits.Count / 2);
        return new OverlapResult(result.backwardOnly, result.syncAfter, result.overlap, exposed, stats.Buckets, stats.BucketsStartedDuringBackward,
            model.parameters().Sum(p => p.numel()));
    }
}
