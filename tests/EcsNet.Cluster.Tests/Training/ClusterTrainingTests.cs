using System.Collections.Concurrent;
using Akka.Actor;
using EcsNet.Cluster.Hosting;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Training;

namespace EcsNet.Cluster.Tests.Training;

/// <summary>
/// Trainings on an in-process cluster (the training coordinator, worker actors, sample entities): N workers end with
/// the weights of one process; a run scaled up or down between steps, or stopped, does too; a run without workers
/// fails naming the cause. The runs' step and generation reports are checked on the way.
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class ClusterTrainingTests(ITestOutputHelper output)
{
    private static readonly string[] All = ClusterRoles.All.ToArray();

    private Task<InProcessNode> Node(int workers, Action<EcsNetTrainingOptions>? training = null) =>
        InProcessNode.StartAsync(output, All, o => o.JoinSelfWithoutSeeds = true, training: t =>
        {
            t.Workers = workers;
            t.Threads = 1;
            t.WorkerWait = TimeSpan.FromSeconds(60);
            training?.Invoke(t);
        });

    /// <summary>Submits and follows the run; <paramref name="onStatus"/> sees every status (on an actor's thread).</summary>
    private async Task<RunStatus> Run(InProcessNode node, RunSpec spec, Action<RunStatus, Akka.Actor.IActorRef>? onStatus = null)
    {
        var coordinator = await TrainingData.Coordinator(node);
        var status = await RunClient.RunAsync(node.System, coordinator, spec, s => onStatus?.Invoke(s, coordinator), TimeSpan.FromSeconds(30))
            .WaitAsync(TimeSpan.FromMinutes(4));
        foreach (var g in status.Generations.Where(g => g.Rank == 0))
            output.WriteLine($"generation {g.Generation}: {g.WorldSize} worker(s) from step {g.ResumedStep} (state of rank {g.StateFrom}; {g.Reason})");
        return status;
    }

    [Fact]
    public async Task Two_worker_actors_end_with_the_weights_of_one_process_after_20_steps()
    {
        using var data = new TrainingData(epochs: 10);
        var reference = data.SingleProcess();
        await using var node = await Node(workers: 2);
        await node.WaitForWorkersAsync(2);
        var steps = new ConcurrentBag<int>();
        var status = await Run(node, data.Spec("two", 2), (s, _) => steps.Add(s.Step));
        Assert.True(status.State == RunStatus.Types.State.Completed, status.Error);
        Assert.Equal(20, data.MaxSteps);
        Assert.Contains(20, steps);
        Assert.Equal(2, status.WorldSize);
        var diff = TrainingData.MaxAbsDiff(reference, data.Weights(data.Run("two")));
        output.WriteLine($"2 worker actors vs one process, 20 steps: max abs weight difference {diff:E2}");
        Assert.True(diff <= 1e-5, $"max abs weight difference {diff:E2}");
        Assert.Equal(20, File.ReadAllLines(Path.Combine(data.Run("two"), "train-log.jsonl")).Length);
    }

    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 1)]
    public async Task A_run_scaled_between_steps_forms_a_generation_of_the_new_size_and_ends_like_one_process(int from, int to)
    {
        using var data = new TrainingData(epochs: 12);
        var reference = data.SingleProcess();
        await using var node = await Node(workers: 2);
        await node.WaitForWorkersAsync(2);
        int asked = 0;
        var status = await Run(node, data.Spec("scaled", from), (s, coordinator) =>
        {
            if (s.Step >= 6 && Interlocked.Exchange(ref asked, 1) == 0)
                coordinator.Tell(new ScaleRun { Run = "scaled", Workers = to }, ActorRefs.NoSender);
        });
        Assert.True(status.State == RunStatus.Types.State.Completed, status.Error);
        var sizes = status.Generations.Where(g => g.Rank == 0).Select(g => g.WorldSize).ToList();
        Assert.Equal(from, sizes[0]);
        Assert.Equal(to, sizes[^1]);
        var last = status.Generations.Last(g => g.Rank == 0);
        Assert.InRange(last.ResumedStep, 6, data.MaxSteps - 1);
        Assert.Equal(-1, last.AbandonedStep);   // a switch between steps loses nothing
        var diff = TrainingData.MaxAbsDiff(reference, data.Weights(data.Run("scaled")));
        Assert.True(diff <= 1e-5, $"max abs weight difference {diff:E2} after scaling {from} → {to}");
    }

    [Fact]
    public async Task A_stopped_run_finishes_its_step_and_leaves_a_checkpoint_there()
    {
        using var data = new TrainingData(epochs: 50);
        await using var node = await Node(workers: 2);
        int asked = 0;
        var status = await Run(node, data.Spec("stopped", 2), (s, coordinator) =>
        {
            if (s.Step >= 5 && Interlocked.Exchange(ref asked, 1) == 0)
                coordinator.Tell(new StopRun { Run = "stopped" }, ActorRefs.NoSender);
        });
        Assert.Equal(RunStatus.Types.State.Stopped, status.State);
        var latest = File.ReadAllText(Path.Combine(data.Run("stopped"), "checkpoints", "latest")).Trim();
        int step = int.Parse(latest["step-".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(step, 5, 20);
        Assert.Equal(step, File.ReadAllLines(Path.Combine(data.Run("stopped"), "train-log.jsonl")).Length);
    }

    [Fact]
    public async Task A_run_without_workers_fails_naming_the_cause()
    {
        using var data = new TrainingData(epochs: 1);
        await using var node = await InProcessNode.StartAsync(output, new[] { ClusterRoles.Coordinator, ClusterRoles.Preprocess },
            o => o.JoinSelfWithoutSeeds = true, training: t => t.WorkerWait = TimeSpan.FromSeconds(2));
        var status = await Run(node, data.Spec("alone", 1));
        Assert.Equal(RunStatus.Types.State.Failed, status.State);
        Assert.Contains("no idle worker within 2 s", status.Error);
    }

    [Fact]
    public async Task Bad_runs_are_rejected_naming_the_field_and_unknown_runs_are_named()
    {
        await using var node = await Node(workers: 1);
        var coordinator = await TrainingData.Coordinator(node);
        var timeout = TimeSpan.FromSeconds(10);
        var zero = await coordinator.Ask<RunRejected>(new SubmitRun { Spec = new RunSpec { Run = "r", Workers = 0, ExperimentFile = "x" } }, timeout);
        Assert.Contains("workers: 0 must be at least 1", zero.Reason);
        var unnamed = await coordinator.Ask<RunRejected>(new SubmitRun { Spec = new RunSpec { Workers = 1, ExperimentFile = "x" } }, timeout);
        Assert.Contains("run: is empty", unnamed.Reason);
        var unknown = await coordinator.Ask<RunRejected>(new GetRunStatus { Run = "nope" }, timeout);
        Assert.Contains("'nope' is unknown", unknown.Reason);
        var scale = await coordinator.Ask<RunRejected>(new ScaleRun { Run = "nope", Workers = 2 }, timeout);
        Assert.Contains("'nope' is unknown", scale.Reason);
    }
}

/// <summary>Trainings of several workers in one process share the cores and torch's global settings: one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TrainingCollection
{
    public const string Name = "training";
}
