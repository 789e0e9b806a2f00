using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using EcsNet.Cluster.Jobs;
using EcsNet.Data;
using EcsNet.Labels.Jobs;

namespace EcsNet.Cluster.Tests.Jobs;

/// <summary>The sharded runner on a one-node cluster (the node hosts the regions and runs the runner).</summary>
public sealed class ShardedImageJobRunnerTests : Akka.TestKit.Xunit2.TestKit, IAsyncLifetime
{
    private readonly InProcessNode node;

    public ShardedImageJobRunnerTests(ITestOutputHelper output) : this(Start(output), output)
    {
    }

    private ShardedImageJobRunnerTests(InProcessNode node, ITestOutputHelper output) : base(node.System, output)
    {
        this.node = node;
    }

    private static InProcessNode Start(ITestOutputHelper output)
    {
        var node = InProcessNode.StartAsync(output, new[] { ClusterRoles.Coordinator, ClusterRoles.Preprocess },
            o => o.JobEntityIdleTimeout = TimeSpan.FromSeconds(1)).GetAwaiter().GetResult();
        node.Cluster.JoinAsync(node.Address).Wait(TimeSpan.FromSeconds(30));
        return node;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    async Task IAsyncLifetime.DisposeAsync() => await node.DisposeAsync();

    [Fact]
    public async Task JobsRunOnTheNodeWriteWhatTheLocalRunnerWritesAndTheirEntitiesPassivate()
    {
        using var data = JobData.Create(6);
        var jobs = data.Ids.Select(id => (IImageJob)data.CrfJob(id, "sharded")).ToList();
        var reported = new List<(int Done, int Total)>();
        var results = await node.Runner.RunAsync(jobs, (done, total, _) => { lock (reported) reported.Add((done, total)); });
        Assert.Equal(jobs.Select(j => (j.ImageId, j.OutputPath)), results.Select(r => (r.ImageId, r.OutputPath)));
        Assert.All(results, r => Assert.Equal(node.Address.ToString(), r.Node));
        Assert.Equal(Enumerable.Range(1, 6).Select(i => (i, 6)), reported.OrderBy(r => r.Done));

        await LocalImageJobRunner.Default.RunAsync(data.Ids.Select(id => (IImageJob)data.CrfJob(id, "local")).ToList());
        Assert.Equal(JobData.Labels(data.Out("local", "")), JobData.Labels(data.Out("sharded", "")));

        // idle entities passivate (1 s here): the region is empty again
        var region = await ActorRegistry.For(Sys).GetAsync<CrfLabelRegion>();
        await AwaitAssertAsync(async () =>
        {
            var state = await region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, TimeSpan.FromSeconds(3));
            Assert.All(state.Shards, s => Assert.Empty(s.EntityIds));
        }, TimeSpan.FromSeconds(15), TimeSpan.FromMilliseconds(250));
    }

    [Fact]
    public async Task EachKindOfJobRunsThroughItsOwnRegion()
    {
        using var data = JobData.Create(2);
        foreach (var jobs in new[]
                 {
                     data.Ids.Select(id => (IImageJob)data.MapsJob(id, "maps")).ToList(),
                     data.Ids.Select(id => (IImageJob)data.WalkJob(id, "rw")).ToList(),
                 })
        {
            var results = await node.Runner.RunAsync(jobs);
            Assert.All(results, r => Assert.True(File.Exists(r.OutputPath), r.OutputPath));
        }
    }

    [Fact]
    public async Task BadInputFailsTheRunNamingTheImageAndTheNode()
    {
        using var data = JobData.Create(3);
        var victim = data.Ids[1];
        File.Delete(Path.Combine(data.CamDir, victim + ".npy"));
        var jobs = data.Ids.Select(id => (IImageJob)data.CrfJob(id, "crf")).ToList();
        var e = await Assert.ThrowsAsync<BadInputException>(() => node.Runner.RunAsync(jobs));
        Assert.StartsWith($"image {victim} on {node.Address}: ", e.Message);
        Assert.EndsWith($"{victim}.npy: CAM file is missing", e.Message);
    }

    [Fact]
    public async Task JobsThatCannotRunElsewhereAreRefusedBeforeAnythingIsSent()
    {
        using var data = JobData.Create(1);
        var id = data.Ids[0];
        var relative = data.CrfJob(id, "crf") with { OutputPath = "labels/x.png" };
        var e = await Assert.ThrowsAsync<BadInputException>(() => node.Runner.RunAsync(new IImageJob[] { relative }));
        Assert.Contains("output path 'labels/x.png' is relative", e.Message);
        var twice = await Assert.ThrowsAsync<BadInputException>(() => node.Runner.RunAsync(new IImageJob[] { data.CrfJob(id, "a"), data.CrfJob(id, "b") }));
        Assert.Equal($"image {id}: has two jobs in one run; run them one after the other", twice.Message);
        var bad = await Assert.ThrowsAsync<BadInputException>(() => node.Runner.RunAsync(new IImageJob[] { data.CrfJob(id, "c") with { BackgroundThreshold = 2 } }));
        Assert.Contains("background threshold must lie in (0, 1]", bad.Message);
    }

    [Fact]
    public async Task CancellingTheRunStopsWaiting()
    {
        using var data = JobData.Create(4, size: 128);
        var jobs = data.Ids.Select(id => (IImageJob)data.CrfJob(id, "crf", JobData.Crf with { Iterations = 60 })).ToList();
        using var cancel = new CancellationTokenSource();
        var run = node.Runner.RunAsync(jobs, (_, _, _) => cancel.Cancel(), cancel.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task WithoutAPreprocessNodeTheRunSaysWhichNodeToStart()
    {
        await using var lonely = await InProcessNode.StartAsync(null, new[] { ClusterRoles.Coordinator },
            o => o.PreprocessNodeWaitTimeout = TimeSpan.FromSeconds(2));
        await lonely.Cluster.JoinAsync(lonely.Address);
        using var data = JobData.Create(1);
        var e = await Assert.ThrowsAsync<BadInputException>(() => lonely.Runner.RunAsync(new IImageJob[] { data.CrfJob(data.Ids[0], "crf") }));
        Assert.Contains("no node with the 'preprocess' role is up after 2 s", e.Message);
        Assert.Contains($"ecsnet node --roles preprocess --seed {lonely.Address}", e.Message);
    }
}
