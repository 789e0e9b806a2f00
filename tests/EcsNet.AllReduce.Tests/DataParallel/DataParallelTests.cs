using EcsNet.AllReduce.DataParallel;
using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.Tests.Ring;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.AllReduce.Tests.DataParallel;

/// <summary>N ranks on shards of the global batch must train exactly like one process on the whole batch.</summary>
[Collection(TorchGlobalRng.Name)]
public sealed class DataParallelTests
{
    private const int GlobalBatch = 12;
    private const int Steps = 20;

    internal static Module<Tensor, Tensor> SmallNet(long seed)
    {
        torch.manual_seed(seed);
        return Sequential(
            ("conv1", Conv2d(3, 6, 3, padding: 1)),
            ("relu1", ReLU()),
            ("conv2", Conv2d(6, 8, 3, stride: 2, padding: 1)),
            ("relu2", ReLU()),
            ("pool", AdaptiveAvgPool2d(1)),
            ("flat", Flatten()),
            ("fc", Linear(8, 4)));
    }

    internal static (Tensor X, Tensor Y) Batch()
    {
        torch.manual_seed(123);
        return (randn(GlobalBatch, 3, 8, 8), randint(0, 4, GlobalBatch, dtype: ScalarType.Int64));
    }

    internal static float[][] Weights(Module module) =>
        module.parameters().Select(p => p.detach().cpu().data<float>().ToArray()).ToArray();

    private static float[][] SingleProcess()
    {
        var (x, y) = Batch();
        var model = SmallNet(1);
        var sgd = optim.SGD(model.parameters(), 0.1, momentum: 0.9);
        for (var step = 0; step < Steps; step++)
        {
            sgd.zero_grad();
            using var scope = NewDisposeScope();
            functional.cross_entropy(model.forward(x), y).backward();
            sgd.step();
        }
        return Weights(model);
    }

    private static async Task<(float[][][] Weights, DataParallelStats?[] Stats)> DataParallelRun(int world, int microBatches)
    {
        var (x, y) = Batch();
        await using var ring = await LocalRing.StartAsync(world);
        // rank 0 holds the reference initialisation; the others start elsewhere and get it by broadcast
        var models = Enumerable.Range(0, world).Select(r => SmallNet(r == 0 ? 1 : 100 + r)).ToArray();
        var weights = new float[world][][];
        var stats = new DataParallelStats?[world];
        var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
        {
            using var dp = new DistributedDataParallel(models[r], ring.Rings[r], new DataParallelOptions { BucketBytes = 1024 });
            dp.BroadcastParametersAsync().GetAwaiter().GetResult();
            var sgd = optim.SGD(models[r].parameters(), 0.1, momentum: 0.9);
            var (start, count) = DistributedDataParallel.Shard(GlobalBatch, r, world);
            var xs = x.narrow(0, start, count);
            var ys = y.narrow(0, start, count);
            for (var step = 0; step < Steps; step++)
            {
                if (microBatches == 1)
                    dp.Step(() => functional.cross_entropy(models[r].forward(xs), ys), sgd);
                else
                    dp.AccumulateStep(k =>
                    {
                        var (ms, mc) = DistributedDataParallel.Shard(count, k, microBatches);
                        return functional.cross_entropy(models[r].forward(xs.narrow(0, ms, mc)), ys.narrow(0, ms, mc));
                    }, microBatches, sgd);
            }
            weights[r] = Weights(models[r]);
            stats[r] = dp.LastSync;
        })).ToArray();
        foreach (var t in threads)
            t.Start();
        foreach (var t in threads)
            Assert.True(t.Join(TimeSpan.FromSeconds(120)), "a rank did not finish");
        Assert.All(weights, w => Assert.NotNull(w));
        return (weights, stats);
    }

    private static double MaxAbsDiff(float[][] a, float[][] b) =>
        a.Zip(b).Max(pair => pair.First.Zip(pair.Second).Max(v => Math.Abs((double)v.First - v.Second)));

    [Theory]
    [InlineData(2, 1)]
    [InlineData(3, 1)]
    [InlineData(2, 2)]
    public async Task Sharded_training_equals_single_process_training(int world, int microBatches)
    {
        var reference = SingleProcess();
        var (weights, stats) = await DataParallelRun(world, microBatches);

        var diff = MaxAbsDiff(reference, weights[0]);
        Assert.True(diff <= 1e-5, $"max abs weight difference {diff:E2} after {Steps} steps with {world} ranks");
        Assert.True(MaxAbsDiff(reference, SmallNet(1).parameters().Select(p => p.data<float>().ToArray()).ToArray()) > 1e-3,
            "the weights moved during training");
        for (var r = 1; r < world; r++)
            Assert.Equal(0.0, MaxAbsDiff(weights[0], weights[r]));
        // small buckets: some all-reduces started while backward was still running
        Assert.All(stats, s => Assert.True(s!.BucketsStartedDuringBackward > 0, $"{s.BucketsStartedDuringBackward} of {s.Buckets} buckets overlapped"));
    }

    /// <summary>Layers called with forward() directly run no hooks: their gradients are synchronised after backward.</summary>
    private sealed class DirectNet : Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear fc1 = Linear(5, 7);
        private readonly TorchSharp.Modules.Linear fc2 = Linear(7, 2);

        public DirectNet() : base(nameof(DirectNet)) => RegisterComponents();

        public override Tensor forward(Tensor x) => fc2.forward(functional.relu(fc1.forward(x)));
    }

    [Fact]
    public async Task Layers_called_without_hooks_are_still_averaged_after_backward()
    {
        await using var ring = await LocalRing.StartAsync(2);
        torch.manual_seed(5);
        var inputs = new[] { randn(3, 5), randn(3, 5) };
        var models = new[] { new DirectNet(), new DirectNet() };
        var expected = new List<float[]>();
        {
            // reference: the mean of the two ranks' gradients, computed locally on rank 0's weights
            var probe = new DirectNet();
            probe.load_state_dict(models[0].state_dict());
            var sum = probe.parameters().Select(p => new float[p.numel()]).ToArray();
            foreach (var x in inputs)
            {
                probe.zero_grad();
                probe.forward(x).square().mean().backward();
                var k = 0;
                foreach (var p in probe.parameters())
                {
                    var g = p.grad!.data<float>().ToArray();
                    for (var i = 0; i < g.Length; i++)
                        sum[k][i] += g[i] / 2;
                    k++;
                }
            }
            expected.AddRange(sum);
        }
        var grads = new float[2][][];
        var overlapped = new int[2];
        var threads = Enumerable.Range(0, 2).Select(r => new Thread(() =>
        {
            using var dp = new DistributedDataParallel(models[r], ring.Rings[r]);
            dp.BroadcastParametersAsync().GetAwaiter().GetResult();
            models[r].zero_grad();
            dp.Backward(models[r].forward(inputs[r]).square().mean());
            grads[r] = models[r].parameters().Select(p => p.grad!.data<float>().ToArray()).ToArray();
            overlapped[r] = dp.LastSync!.BucketsStartedDuringBackward;
        })).ToArray();
        foreach (var t in threads)
            t.Start();
        foreach (var t in threads)
            Assert.True(t.Join(TimeSpan.FromSeconds(60)));
        Assert.Equal(new[] { 0, 0 }, overlapped);
        for (var r = 0; r < 2; r++)
            for (var k = 0; k < expected.Count; k++)
                for (var i = 0; i < expected[k].Length; i++)
                    Assert.True(Math.Abs(expected[k][i] - grads[r][k][i]) <= 1e-6, $"rank {r} parameter {k}[{i}]");
    }

    [Fact]
    public void Buckets_follow_reverse_parameter_order_and_respect_the_cap()
    {
        var model = SmallNet(1);
        using var dp = new DistributedDataParallel(model, new SoloCollective(), new DataParallelOptions { BucketBytes = 200 * sizeof(float) });
        // parameters: conv1 w 162 + b 6, conv2 w 432 + b 8, fc w 32 + b 4 → reversed: 4, 32, 8 | 432 | 6, 162
        Assert.Equal(new long[] { 44 * 4, 432 * 4, 168 * 4 }, dp.BucketSizes);

        // DDP's small first bucket: the last layers' gradients start travelling early
        using var ddp = new DistributedDataParallel(model, new SoloCollective(), new DataParallelOptions { FirstBucketBytes = 100 * sizeof(float) });
        Assert.Equal(new long[] { 44 * 4, 600 * 4 }, ddp.BucketSizes);
    }

    [Fact]
    public void A_small_model_gets_its_minimum_of_buckets_and_the_first_layers_can_get_a_short_last_bucket()
    {
        var model = SmallNet(1);
        // 644 floats = 2576 bytes over at least 3 buckets: a cap of 859 bytes (214 floats)
        using var few = new DistributedDataParallel(model, new SoloCollective(), new DataParallelOptions { MinBuckets = 3, SmallestBucketBytes = 4 });
        Assert.Equal(new long[] { 44 * 4, 432 * 4, 168 * 4 }, few.BucketSizes);
        // without a minimum, DDP's cap holds everything past the first bucket in one
        using var plain = new DistributedDataParallel(model, new SoloCollective(), new DataParallelOptions { MinBuckets = 0, FirstBucketBytes = 100 * sizeof(float) });
        Assert.Equal(new long[] { 44 * 4, 600 * 4 }, plain.BucketSizes);
        // conv1's weight and bias (168 floats) fit a last bucket of 170 floats, and are all-reduced last
        using var tail = new DistributedDataParallel(model, new SoloCollective(), new DataParallelOptions { MinBuckets = 0, LastBucketBytes = 170 * sizeof(float) });
        Assert.Equal(new long[] { 476 * 4, 168 * 4 }, tail.BucketSizes);
        Assert.Equal(256L << 10, new DataParallelOptions().CapFor(2576)); // never below the smallest bucket
        Assert.Equal(25L << 20, new DataParallelOptions().CapFor(420_000_000));
    }

    [Fact]
    public void Shards_cover_the_batch_once()
    {
        var shards = Enumerable.Range(0, 5).Select(r => DistributedDataParallel.Shard(13, r, 5)).ToArray();
        Assert.Equal(13, shards.Sum(s => s.Count));
        for (var r = 1; r < 5; r++)
            Assert.Equal(shards[r - 1].Start + shards[r - 1].Count, shards[r].Start);
    }

    /// <summary>A world of one: collectives are no-ops.</summary>
    private sealed class SoloCollective : ICollective
    {
        public int Rank => 0;
        public int WorldSize => 1;
        public Task AllReduceAsync(Memory<float> buffer, ReduceOp op = ReduceOp.Sum, WireCompression? compression = null, CancellationToken cancellationToken = default) => Task.CompletedTask;
        public Task AllReduceAsync(Memory<double> buffer, ReduceOp op = ReduceOp.Sum, CancellationToken cancellationToken = default) => Task.CompletedTask;
        public Task BroadcastAsync(Memory<float> buffer, int root = 0, CancellationToken cancellationToken = default) => Task.CompletedTask;
    }
}
