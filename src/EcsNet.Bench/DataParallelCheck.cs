using System.Diagnostics;
using EcsNet.AllReduce;
using EcsNet.AllReduce.DataParallel;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.Bench;

/// <summary>
/// The workloads of `ecsnet bench dataparallel`: (1) equivalence — a small BatchNorm-free CNN trained for a
/// number of SGD steps on shards of one global batch must end with the weights of single-process training
/// on the whole batch; (2) overlap — how much of the gradient all-reduce hides behind backward on the
/// small CAM net (a plain conv trunk + 1×1 classifier + GAP, the multilabel soft-margin loss of paper Eq 4).
/// </summary>
public static class DataParallelCheck
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
        using var dp = new DistributedDataParallel(model, collective, options);
        await dp.BroadcastParametersAsync();
        var sgd = Sgd(model);
        var (start, count) = DistributedDataParallel.Shard(GlobalBatch, collective.Rank, collective.WorldSize);
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
    public sealed record OverlapResult(
        double BackwardOnly, double SyncAfterBackward, double Overlapped, double SerialWait, double ExposedWait, int Buckets, int Started, long Parameters)
    {
        /// <summary>
        /// Share of the all-reduce time taken off the step: 1 − (wait after backward with overlap) / (wait
        /// after backward without overlap, i.e. the whole all-reduce). Both waits are timed inside the step,
        /// so the figure does not hinge on differences of noisy step times.
        /// </summary>
        public double HiddenFraction => SerialWait <= 0 ? 0 : Math.Clamp(1 - ExposedWait / SerialWait, 0, 1);
    }

    /// <summary>
    /// A small CAM net for the overlap figure: a plain stride-8 conv/BN/ReLU trunk of about the size of
    /// SmallBackbone (1.2 M parameters), a 1×1 classifier to 20 classes and GAP. Built from Sequential so
    /// that every layer runs through <c>call</c>, where TorchSharp runs the forward pre-hooks that
    /// DistributedDataParallel uses to see each layer's backward finish.
    /// </summary>
    private static Module<Tensor, Tensor> CamNet()
    {
        var layers = new List<(string, Module<Tensor, Tensor>)>();
        var spec = new (int In, int Out, int Stride, int Dilation)[]
        {
            (3, 32, 2, 1), (32, 64, 2, 1), (64, 64, 1, 1), (64, 128, 2, 1), (128, 128, 1, 1), (128, 256, 1, 2), (256, 256, 1, 2),
        };
        for (var k = 0; k < spec.Length; k++)
        {
            var (cin, cout, stride, dilation) = spec[k];
            layers.Add(($"conv{k}", Conv2d(cin, cout, 3, stride: stride, padding: dilation, dilation: dilation, bias: false)));
            layers.Add(($"bn{k}", BatchNorm2d(cout)));
            layers.Add(($"relu{k}", ReLU()));
        }
        layers.Add(("classifier", Conv2d(256, 20, 1, bias: false)));
        layers.Add(("gap", AdaptiveAvgPool2d(1)));
        layers.Add(("flat", Flatten()));
        return Sequential(layers);
    }

    /// <summary>
    /// Times the steps of the small CAM net three ways on every rank (same order everywhere): backward with
    /// no sync, backward then all buckets (overlap off), and overlapped buckets, taking turns step by step.
    /// Each figure: median step time (forward + loss + backward + sync) over <paramref name="steps"/> after
    /// 2 warm-up rounds.
    /// </summary>
    public static async Task<OverlapResult> OverlapAsync(ICollective collective, int steps, int imageSize, int perRankBatch, DataParallelOptions options)
    {
        torch.manual_seed(7);
        var model = CamNet();
        var x = randn(perRankBatch, 3, imageSize, imageSize);
        var y = (rand(perRankBatch, 20) > 0.8).to(ScalarType.Float32);
        var overlapped = new DistributedDataParallel(model, collective, options);
        var serial = new DistributedDataParallel(model, collective, options with { OverlapWithBackward = false });
        serial.Dispose(); // no hooks needed when nothing overlaps
        await overlapped.BroadcastParametersAsync();

        double Time(DistributedDataParallel dp, bool sync)
        {
            model.zero_grad();
            using var scope = NewDisposeScope();
            using var quiet = sync ? null : dp.NoSync();
            var clock = Stopwatch.StartNew();
            var loss = functional.multilabel_soft_margin_loss(model.forward(x), y);
            dp.Backward(loss);
            return clock.Elapsed.TotalSeconds;
        }

        // the three modes take turns step by step, so that a change in machine load hits all three alike
        var backwardOnly = new List<double>();
        var syncAfter = new List<double>();
        var overlap = new List<double>();
        var serialWaits = new List<double>();
        var waits = new List<double>();
        await Task.Run(() =>
        {
            for (var i = 0; i < steps + 2; i++)
            {
                var a = Time(overlapped, sync: false);
                var b = Time(serial, sync: true);
                var serialWait = serial.LastSync!.WaitSeconds;
                var c = Time(overlapped, sync: true);
                if (i < 2)
                    continue; // warm-up
                backwardOnly.Add(a);
                syncAfter.Add(b);
                overlap.Add(c);
                serialWaits.Add(serialWait);
                waits.Add(overlapped.LastSync!.WaitSeconds);
            }
        });
        static double Median(List<double> values) => values.OrderBy(v => v).ElementAt(values.Count / 2);
        var stats = overlapped.LastSync!;
        overlapped.Dispose();
        return new OverlapResult(Median(backwardOnly), Median(syncAfter), Median(overlap), Median(serialWaits), Median(waits), stats.Buckets, stats.BucketsStartedDuringBackward,
            model.parameters().Sum(p => p.numel()));
    }
}
