using EcsNet.AllReduce.DataParallel;
using EcsNet.AllReduce.Rendezvous;
using EcsNet.Core.Nets;
using EcsNet.Core.Training;
using static EcsNet.AllReduce.Tests.Rendezvous.LocalJob;
using static TorchSharp.torch;

namespace EcsNet.AllReduce.Tests.DataParallel;

/// <summary>
/// The Core training loop of the CAM network over elastic groups: a member lost mid-training, a joiner, a member
/// that leaves. With fixed BatchNorm statistics the global batch's gradient does not depend on how it is split,
/// so every run must end with the weights of one uninterrupted process — whatever happened to the membership.
/// </summary>
[Collection(TorchGlobalRng.Name)]
public sealed class ElasticCamTrainingTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const int Steps = 12;
    private readonly string dir = Path.Combine(Path.GetTempPath(), "ecsnet-elastic-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
    }

    private static EcsNetModel NewModel(ulong init)
    {
        var model = new EcsNetModel(new SmallBackbone(8), new EcsNetOptions { OverlayRates = new[] { 1, 2 }, HeadDropout = 0.5, CeStartStep = 0 });
        using var g = new Generator(init);
        using (no_grad())
            foreach (var p in model.parameters())
                p.copy_(randn(p.shape, generator: g) * 0.1);
        return model;
    }

    /// <summary>Batch 6 so that 3, 2 or 1 members all split it; 24 images, 4 steps per epoch.</summary>
    private static CamTrainingOptions Options => new()
    {
        Epochs = 3, BatchSize = 6, Crop = 32, WarmupSteps = 2, Momentum = 0.9, Seed = 3, LearningRate = 0.02,
        CheckpointEvery = 100, FreezePretrained = false, BatchNormMode = BatchNormMode.Eval,
    };

    private static float[] Weights(nn.Module m) => m.parameters().SelectMany(p => p.detach().contiguous().data<float>().ToArray()).ToArray();

    private float[] SingleProcess()
    {
        using var model = NewModel(7);
        using var task = new CamTrainingTask(model, Options, pretrained: false);
        using var source = new LocalBatchSource(new NoiseCamSamples(24));
        Assert.Equal(Steps, TrainingLoop.Run(task, source, Path.Combine(dir, "single")).Steps);
        return Weights(model);
    }

    /// <summary>One member training on its own thread; <paramref name="onStep"/> runs after each of its steps.</summary>
    private Task<(TrainingResult Result, float[] Weights)> Member(ElasticTrainingGroup group, ulong init, Action<StepReport>? onStep = null) =>
        OnThread(() =>
        {
            using var model = NewModel(init);
            using var task = new CamTrainingTask(model, Options, pretrained: false);
            using var source = new LocalBatchSource(new NoiseCamSamples(24));
            var result = TrainingLoop.Run(task, source, Path.Combine(dir, "elastic"), group, new TrainingCallbacks(OnStep: onStep));
            return (result, Weights(model));
        });

    private static double MaxAbsDiff(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs((double)p.First - p.Second));

    private static Task<ElasticTrainingGroup> Join(RankSession session) =>
        ElasticTrainingGroup.JoinAsync(session, new DataParallelOptions { BucketBytes = 8 << 10 }, Bound);

    [Fact]
    public async Task A_member_lost_mid_training_leaves_the_others_with_the_single_process_weights()
    {
        var reference = SingleProcess();
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 3 });
        var sessions = await StartAsync(host, 3);
        try
        {
            var groups = await Task.WhenAll(sessions.Select(Join));
            var victim = groups.Single(g => g.Rank == 2).Session;
            // rank 2 dies right after its 5th step: its process is gone (session closed without leaving)
            var members = groups.Select((g, i) => Member(g, i == 0 ? 7UL : 100UL + (ulong)i, r =>
            {
                if (r.Rank == 2 && r.Step == 5 && r.Generation == 1)
                {
                    victim.DisposeAsync().AsTask().GetAwaiter().GetResult();
                    throw new OperationCanceledException("rank 2 killed");
                }
            })).ToArray();
            var outcomes = await Task.WhenAll(members.Select(async m =>
            {
                try { return await m.WaitAsync(TimeSpan.FromSeconds(120)); }
                catch (OperationCanceledException) { return ((TrainingResult, float[])?)null; }
            }));
            var survivors = outcomes.Where(o => o is not null).Select(o => o!.Value).ToArray();
            Assert.Equal(2, survivors.Length);
            foreach (var (result, weights) in survivors)
            {
                Assert.True(result.Completed);
                Assert.Equal(Steps, result.Steps);
                var change = Assert.Single(result.Generations, g => g.WorldSize == 2);
                output.WriteLine($"generation {change.Generation}: rank {change.Rank}/{change.WorldSize}, resumed at step {change.ResumedStep} " +
                                 $"with rank {change.StateFrom}'s state, abandoned step {change.AbandonedStep}, redone {change.Redone}: {change.Reason}");
                Assert.InRange(change.ResumedStep, 5, 6);   // at most the step in flight is lost
                var diff = MaxAbsDiff(reference, weights);
                output.WriteLine($"max abs difference from one process: {diff:E2}");
                Assert.True(diff <= 1e-5, $"survivor differs from single-process training by {diff:E2}");
            }
            Assert.Equal(0.0, MaxAbsDiff(survivors[0].Item2, survivors[1].Item2));
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }

    [Fact]
    public async Task A_joiner_gets_the_members_state_and_all_end_with_the_single_process_weights()
    {
        var reference = SingleProcess();
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 2 });
        var sessions = new List<RankSession>(await StartAsync(host, 2));
        try
        {
            var groups = await Task.WhenAll(sessions.Select(Join));
            var atFour = new ManualResetEventSlim();
            var firstTwo = groups.Select((g, i) => Member(g, i == 0 ? 7UL : 100UL + (ulong)i, r =>
            {
                if (r.Step == 4 && r.Generation == 1)
                {
                    atFour.Set();
                    // hold until the joiner's generation is announced, so the switch comes after step 5
                    SpinWait.SpinUntil(() => g.ChangePending, Bound);
                }
            })).ToList();
            Assert.True(await Task.Run(() => atFour.Wait(Bound)));
            sessions.Add(await StartAsync(host));
            var joiner = await Join(sessions[2]);
            var third = Member(joiner, 999);   // a different initialisation: its state must come from the others
            var all = await Task.WhenAll(firstTwo.Append(third)).WaitAsync(TimeSpan.FromSeconds(120));
            foreach (var (result, weights) in all)
            {
                Assert.True(result.Completed);
                Assert.True(MaxAbsDiff(reference, weights) <= 1e-5, $"differs from single-process training by {MaxAbsDiff(reference, weights):E2}");
            }
            var joined = all[2].Result.Generations[0];
            Assert.Equal(3, joined.WorldSize);
            Assert.Equal(5, joined.ResumedStep);
            Assert.NotEqual(joined.Rank, joined.StateFrom);
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }

    [Fact]
    public async Task A_member_that_leaves_lets_the_others_finish_with_the_single_process_weights()
    {
        var reference = SingleProcess();
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 3 });
        var sessions = await StartAsync(host, 3);
        try
        {
            var groups = await Task.WhenAll(sessions.Select(Join));
            var members = groups.Select((g, i) => Member(g, i == 0 ? 7UL : 100UL + (ulong)i, r =>
            {
                if (r.Rank == 1 && r.Step == 3 && r.Generation == 1)
                    g.RequestLeave();
            })).ToArray();
            var all = await Task.WhenAll(members).WaitAsync(TimeSpan.FromSeconds(120));
            var left = Assert.Single(all, a => a.Result.Left);
            Assert.False(left.Result.Completed);
            Assert.InRange(left.Result.Steps, 4, 5);   // the step it asked in, plus at most the one the others were already in
            foreach (var (result, weights) in all.Where(a => !a.Result.Left))
            {
                Assert.True(result.Completed);
                Assert.Equal(2, result.Generations[^1].WorldSize);
                Assert.True(MaxAbsDiff(reference, weights) <= 1e-5, $"differs from single-process training by {MaxAbsDiff(reference, weights):E2}");
            }
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }
}
