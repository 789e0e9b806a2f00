using System.Diagnostics;
using EcsNet.Cluster.Hosting;
using EcsNet.Core.Stages;
using EcsNet.Labels.Jobs;
using EcsNet.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace EcsNet.Cluster.Tests.Jobs;

/// <summary>
/// Several nodes in this process, on 127.0.0.1 and free ports, joined in code: the pipeline's jobs run on other
/// nodes than the one running the stage, and survive a node that stops mid-run.
/// </summary>
public sealed class InProcessClusterTests(ITestOutputHelper output)
{
    private static readonly string[] Runner = { ClusterRoles.Coordinator };
    private static readonly string[] Preprocess = { ClusterRoles.Preprocess };

    /// <summary>The demo's toy settings (see DemoVerbTests): cam and aff train in seconds.</summary>
    private static ExperimentConfig Tiny => ExperimentConfig.SmallCpu with
    {
        CamTraining = ExperimentConfig.SmallCpu.CamTraining with { Epochs = 1, BatchSize = 4, Crop = 96 },
        CamInference = new() { Scales = new[] { 1.0 } },
        Augment = ExperimentConfig.SmallCpu.Augment with { LongEdgeMin = 96, LongEdgeMax = 128 },
        Affinity = ExperimentConfig.SmallCpu.Affinity with { CropSize = 96, BatchSize = 4, Epochs = 1 },
    };

    [Fact]
    public async Task CrfAffinityAndRandomWalkJobsRunOnTheOtherNodeAndWriteTheLocalBytes()
    {
        using var dir = new TempDir();
        var synth = EcsNet.Data.SyntheticVoc.Generate(dir.File("voc"), new EcsNet.Data.SynthOptions { TrainImages = 5, ValImages = 1, Size = 96, Seed = 3 });
        var pipeline = new Pipeline(new IPipelineStage[] { new CamStage(), new CrfStage(), new AffinityStage(), new RandomWalkStage() });
        var local = new PipelineContext(Tiny, synth.Root, "train", "val", dir.File("local"));
        pipeline.Run(local);

        var nodes = await InProcessNode.ClusterAsync(output, new(Runner), new(Preprocess));
        await using var a = nodes[0];
        await using var b = nodes[1];
        await a.WaitForJobRegionsAsync(1);
        var recorded = new RecordingRunner(a.Runner);
        // the same cam stage output (copied), then crf, aff and rw with every job sent from a to b
        CopyFolder(local.StageDir("cam"), Path.Combine(dir.File("cluster"), "cam"));
        var cluster = local with { RunDir = dir.File("cluster"), Jobs = recorded };
        pipeline.Run(cluster, only: new[] { "cam", "crf", "aff", "rw" });

        Assert.Equal(3 * 5, recorded.Results.Count);
        Assert.All(recorded.Results, r => Assert.Equal(b.Address.ToString(), r.Node));
        foreach (var stage in new[] { "crf", "rw" })
        {
            var expected = JobData.Labels(Path.Combine(local.StageDir(stage), "labels"));
            Assert.Equal(5, expected.Count);
            Assert.Equal(expected, JobData.Labels(Path.Combine(cluster.StageDir(stage), "labels")));
        }
        // AffinityNet trained on maps made on b takes exactly the same steps as on maps made here
        Assert.Equal(File.ReadAllText(Path.Combine(local.StageDir("aff"), "run", "train-log.jsonl")),
            File.ReadAllText(Path.Combine(cluster.StageDir("aff"), "run", "train-log.jsonl")));
    }

    [Fact]
    public async Task ACrashedNodesJobsAreSentAgainAndEveryLabelIsWrittenOnceAndTheSame()
    {
        using var data = JobData.Create(16, size: 128);
        var crf = JobData.Crf with { Iterations = 30 };
        await LocalImageJobRunner.Default.RunAsync(data.Ids.Select(id => (IImageJob)data.CrfJob(id, "local", crf)).ToList());

        // b crashes: its actor system stops without leaving the cluster (no coordinated shutdown), as a killed process
        const string crash = "akka.coordinated-shutdown.run-by-actor-system-terminate = off";
        void OneSlot(EcsNetNodeOptions o) => o.JobSlots = 1;
        var nodes = await InProcessNode.ClusterAsync(output, new(Runner), new(Preprocess, OneSlot, crash), new(Preprocess, OneSlot));
        await using var a = nodes[0];
        await using var b = nodes[1];
        await using var c = nodes[2];
        await a.WaitForJobRegionsAsync(2);
        var bAddress = b.Address.ToString();
        var crashedAt = new TaskCompletionSource<Stopwatch>(TaskCreationOptions.RunContinuationsAsynchronously);
        var results = await a.Runner.RunAsync(data.Ids.Select(id => (IImageJob)data.CrfJob(id, "cluster", crf)).ToList(), (_, _, r) =>
        {
            if (r.Node == bAddress && crashedAt.TrySetResult(Stopwatch.StartNew()))
            {
                output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} crashing {bAddress} after its first job ({r.ImageId})");
                _ = b.System.Terminate();
            }
        }).WaitAsync(TimeSpan.FromMinutes(3));
        var clock = await crashedAt.Task;
        var sinceCrash = clock.Elapsed;
        var crashTime = DateTime.UtcNow - sinceCrash;

        Assert.Equal(data.Ids, results.Select(r => r.ImageId));
        var byNode = results.GroupBy(r => r.Node).ToDictionary(g => g.Key, g => g.Count());
        // the runner sent b's jobs again once b was removed (membership, not a timeout)
        var resent = a.Log.Where(l => l.Text.Contains($"its node {bAddress} was removed from the cluster; sending it again", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(resent);
        var unreachable = a.Log.FirstOrDefault(l => l.Text.Contains("Marking node(s) as UNREACHABLE", StringComparison.Ordinal));
        output.WriteLine($"jobs by node: {string.Join(", ", byNode.Select(p => $"{p.Key}={p.Value}"))}; after the crash: " +
            $"unreachable {(unreachable.At - crashTime).TotalSeconds:F1} s, {resent.Count} jobs sent again {(resent[0].At - crashTime).TotalSeconds:F1} s, " +
            $"run ended {sinceCrash.TotalSeconds:F1} s");
        Assert.True(byNode.GetValueOrDefault(c.Address.ToString()) > 0);
        // every label once, byte-equal to the single-process run, no temporary files left visible as labels
        Assert.Equal(JobData.Labels(data.Out("local", "")), JobData.Labels(data.Out("cluster", "")));
    }

    [Fact]
    public async Task ALeavingNodeFinishesItsRunningJobRunsItsShutdownTasksAndHandsOffTheRest()
    {
        using var data = JobData.Create(12, size: 128);
        var crf = JobData.Crf with { Iterations = 30 };
        await LocalImageJobRunner.Default.RunAsync(data.Ids.Select(id => (IImageJob)data.CrfJob(id, "local", crf)).ToList());
        var task = new RecordingShutdownTask();
        void OneSlot(EcsNetNodeOptions o) => o.JobSlots = 1;
        var nodes = await InProcessNode.ClusterAsync(output, new(Runner), new(Preprocess, OneSlot, Services: s => s.AddSingleton<INodeShutdownTask>(task)),
            new(Preprocess, OneSlot));
        await using var a = nodes[0];
        var b = nodes[1];
        await using var c = nodes[2];
        await a.WaitForJobRegionsAsync(2);
        var bAddress = b.Address.ToString();
        Task? leaving = null;
        var results = await a.Runner.RunAsync(data.Ids.Select(id => (IImageJob)data.CrfJob(id, "cluster", crf)).ToList(), (_, _, r) =>
        {
            if (r.Node == bAddress && leaving is null)
                leaving = Task.Run(() => b.DisposeAsync().AsTask());
        }).WaitAsync(TimeSpan.FromMinutes(3));
        await leaving!.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.True(task.Ran, "the node's shutdown task ran");
        Assert.Equal(JobData.Labels(data.Out("local", "")), JobData.Labels(data.Out("cluster", "")));
        Assert.True(results.Count(r => r.Node == c.Address.ToString()) > 0);
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
