using EcsNet.AllReduce.DataParallel;
using EcsNet.AllReduce.Tests.Ring;
using EcsNet.Core.Nets;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using static TorchSharp.torch;

namespace EcsNet.AllReduce.Tests.DataParallel;

/// <summary>
/// The CAM trainer with in-process ranks on a loopback ring (docs/METHOD.md §7): N ranks on shards of each global batch
/// must end with the weights of single-process training on the whole batch.
/// </summary>
[Collection(TorchGlobalRng.Name)]
public sealed class DataParallelCamTrainerTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), "ecsnet-dpcam-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
    }

    /// <summary>Weights from a private generator (other tests draw from the global one in parallel).</summary>
    private static EcsNetModel NewModel(CamMethod method, ulong init)
    {
        var options = new EcsNetOptions { OverlayRates = new[] { 1, 2 }, HeadDropout = 0.5 };
        if (method == CamMethod.Cam)
            options = ExperimentConfig.CamBaselineOf(options);
        var model = new EcsNetModel(new SmallBackbone(8), options);
        using var g = new Generator(init);
        using (no_grad())
            foreach (var p in model.parameters())
                p.copy_(randn(p.shape, generator: g) * 0.1);
        return model;
    }

    private static CamTrainingOptions Options(int batch, int stopAfter) => new()
    {
        Epochs = 4, BatchSize = batch, Crop = 32, WarmupSteps = 2, Momentum = 0.9, Seed = 3, LearningRate = 0.02,
        CheckpointEvery = 100, StopAfterSteps = stopAfter, FreezePretrained = false, BatchNormMode = BatchNormMode.Eval,
    };

    private static float[] Weights(nn.Module m) =>
        m.parameters().SelectMany(p => p.detach().contiguous().data<float>().ToArray()).ToArray();

    private static double MaxAbsDiff(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs((double)p.First - p.Second));

    private float[] SingleProcess(CamMethod method, int batch, int steps, string run)
    {
        using var model = NewModel(method, 7);
        using var task = new CamTrainingTask(model, Options(batch, steps), pretrained: false);
        using var source = new LocalBatchSource(new NoiseCamSamples(12));
        Assert.Equal(steps, TrainingLoop.Run(task, source, Path.Combine(dir, run)).Steps);
        return Weights(model);
    }

    /// <summary>Each rank on its own thread with its own model (rank 0's initialisation is the reference one).</summary>
    private readonly List<DataParallelStats?> stats = new();

    private async Task<float[][]> DataParallelRun(CamMethod method, int world, int batch, int steps, string run, int resumeSteps = 0)
    {
        await using var ring = await LocalRing.StartAsync(world);
        var weights = new float[world][];
        var errors = new Exception?[world];
        var threads = Enumerable.Range(0, world).Select(r => new Thread(() =>
        {
            try
            {
                foreach (var stop in resumeSteps > 0 ? new[] { steps - resumeSteps, resumeSteps } : new[] { steps })
                {
                    using var model = NewModel(method, r == 0 ? 7UL : 100UL + (ulong)r);
                    using var sync = new DataParallelGradientSync(ring.Rings[r], new DataParallelOptions { BucketBytes = 16 << 10, FirstBucketBytes = 4 << 10 });
                    using var task = new CamTrainingTask(model, Options(batch, stop), pretrained: false);
                    using var source = new LocalBatchSource(new NoiseCamSamples(12));
                    TrainingLoop.Run(task, source, Path.Combine(dir, run), sync);
                    weights[r] = Weights(model);
                    lock (stats) stats.Add(sync.LastSync);
                }
            }
            catch (Exception e)
            {
                errors[r] = e;
            }
        })).ToArray();
        foreach (var t in threads)
            t.Start();
        foreach (var t in threads)
            Assert.True(t.Join(TimeSpan.FromSeconds(240)), "a rank did not finish");
        Assert.All(errors, e => Assert.Null(e));
        return weights;
    }

    [Theory]
    [InlineData(CamMethod.Cam, 2)]
    [InlineData(CamMethod.Cam, 3)]
    [InlineData(CamMethod.Ecs, 2)]
    public async Task Ranks_on_shards_train_like_one_process_on_the_global_batch(CamMethod method, int world)
    {
        const int steps = 4;
        int batch = 2 * world;
        var reference = SingleProcess(method, batch, steps, "single");
        var weights = await DataParallelRun(method, world, batch, steps, "dp");

        var diff = MaxAbsDiff(reference, weights[0]);
        output.WriteLine($"{method}, {world} ranks, {steps} steps: max abs weight difference {diff:E2}");
        Assert.True(diff <= 1e-5, $"max abs weight difference {diff:E2} after {steps} steps, {method}, {world} ranks");
        using (var fresh = NewModel(method, 7))
            Assert.True(MaxAbsDiff(reference, Weights(fresh)) > 1e-3, "the weights moved");
        for (var r = 1; r < world; r++)
            Assert.Equal(0.0, MaxAbsDiff(weights[0], weights[r]));
        foreach (var s in stats)
            output.WriteLine($"  {s}");
        if (method == CamMethod.Ecs)   // every layer gets a gradient: buckets start during backward
            Assert.All(stats, s => Assert.True(s!.BucketsStartedDuringBackward > 0, $"{s.BucketsStartedDuringBackward} of {s.Buckets} buckets started during backward"));

        // rank 0 alone wrote the log, with the global batch's loss (the single-process one)
        var single = File.ReadAllLines(Path.Combine(dir, "single", "train-log.jsonl"));
        var dp = File.ReadAllLines(Path.Combine(dir, "dp", "train-log.jsonl"));
        Assert.Equal(steps, dp.Length);
        for (var i = 0; i < steps; i++)
        {
            double Loss(string line) => System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("Total").GetDouble();
            Assert.True(Math.Abs(Loss(single[i]) - Loss(dp[i])) <= 1e-4, $"step {i + 1}: loss {Loss(dp[i])} vs {Loss(single[i])}");
        }
        Assert.Equal("step-000004", File.ReadAllText(Path.Combine(dir, "dp", "checkpoints", "latest")).Trim());
    }

    [Fact]
    public async Task Ranks_resume_from_rank_0s_checkpoint_exactly()
    {
        const int steps = 4;
        var reference = SingleProcess(CamMethod.Cam, 4, steps, "single");
        var weights = await DataParallelRun(CamMethod.Cam, 2, 4, steps, "dp", resumeSteps: 2);
        var diff = MaxAbsDiff(reference, weights[0]);
        Assert.True(diff <= 1e-5, $"max abs weight difference {diff:E2} after a resume");
        Assert.Equal(new[] { "step-000002", "step-000004" },
            Directory.GetDirectories(Path.Combine(dir, "dp", "checkpoints")).Select(Path.GetFileName).Order().ToArray());
    }

    /// <summary>
    /// A global batch the ranks do not divide (5 over 2: shards of 3 and 2, as after a generation change) still
    /// trains like one process: each rank's per-image means count as its share of the global batch.
    /// </summary>
    [Theory]
    [InlineData(CamMethod.Cam)]
    [InlineData(CamMethod.Ecs)]
    public async Task Unequal_shards_train_like_one_process_on_the_global_batch(CamMethod method)
    {
        const int steps = 4;
        var reference = SingleProcess(method, 5, steps, "single5");
        var weights = await DataParallelRun(method, 2, 5, steps, "dp5");
        var diff = MaxAbsDiff(reference, weights[0]);
        output.WriteLine($"{method}, shards 3 + 2, {steps} steps: max abs weight difference {diff:E2}");
        Assert.True(diff <= 1e-5, $"max abs weight difference {diff:E2} with unequal shards");
        Assert.Equal(0.0, MaxAbsDiff(weights[0], weights[1]));
    }
}
