using EcsNet.Core.Stages;
using EcsNet.Labels.Jobs;

namespace EcsNet.Cluster.Tests.Jobs;

/// <summary>
/// `ecsnet node --roles preprocess` child processes on 127.0.0.1 joined to a node in this process (the seed), as
/// separate machines would be: jobs cross process boundaries (the protobuf serializer), a SIGKILLed process is
/// noticed by the failure detector and its jobs run elsewhere, and a preprocess process never loads LibTorch.
/// </summary>
public sealed class NodeProcessTests(ITestOutputHelper output)
{
    private static async Task<InProcessNode> Seed(ITestOutputHelper output, params string[] roles)
    {
        var seed = await InProcessNode.StartAsync(output, roles);
        await seed.Cluster.JoinAsync(seed.Address);
        return seed;
    }

    private static async Task WaitForMembers(InProcessNode seed, int count)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        while (seed.Cluster.State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up) < count)
            await Task.Delay(200, limit.Token);
        await seed.WaitForJobRegionsAsync(count - (seed.Options.Has(ClusterRoles.Preprocess) ? 0 : 1));
    }

    [Fact]
    public async Task CrfLabelsAreWrittenOnceAndTheSameWhenAPreprocessProcessIsKilledMidStage()
    {
        using var data = JobData.Create(24, size: 160);
        var local = data.Context(LocalImageJobRunner.Default, Path.Combine(data.Root, "local"));
        CopyCams(data, local);
        new CrfStage().Run(local, CancellationToken.None);

        await using var seed = await Seed(output, ClusterRoles.Coordinator, ClusterRoles.Preprocess);
        // one job thread per process: three processes share this machine's cores with the test
        var settings = Path.Combine(data.Root, "node.json");
        File.WriteAllText(settings, """{ "EcsNet": { "Node": { "JobSlots": 1 } } }""");
        using var first = await NodeProcess.StartAsync("--roles", "preprocess", "--seed", seed.Address.ToString(), "--config", settings);
        using var second = await NodeProcess.StartAsync("--roles", "preprocess", "--seed", seed.Address.ToString(), "--config", settings);
        await WaitForMembers(seed, 3);

        // the first child process to finish a job is killed at once, with the rest of its jobs still on it
        var children = new[] { first, second };
        NodeProcess? victim = null;
        var killedAt = DateTime.MinValue;
        var recorded = new RecordingRunner(new OnFirstResult(seed.Runner, node => children.Any(c => c.Address == node), node =>
        {
            victim = children.Single(c => c.Address == node);
            victim.Kill();
            killedAt = DateTime.UtcNow;
            output.WriteLine($"{killedAt:HH:mm:ss.fff} killed {node} (pid {victim.Pid}) with SIGKILL after its first job");
        }));
        var cluster = data.Context(recorded);
        await Task.Run(() => new CrfStage().Run(cluster, CancellationToken.None)).WaitAsync(TimeSpan.FromMinutes(4));

        foreach (var child in children)
            foreach (var line in child.Log.Split('\n').Where(l => l.Contains("SBR", StringComparison.Ordinal) || l.Contains("UNREACHABLE", StringComparison.Ordinal) || l.Contains("Leader is", StringComparison.Ordinal) || l.Contains("Member removed", StringComparison.Ordinal)))
                output.WriteLine($"[{child.Address}] {line.Trim()}");
        foreach (var line in seed.Log.Where(l => l.Text.Contains("sending it again", StringComparison.Ordinal)))
            output.WriteLine($"{line.At:HH:mm:ss.fff} [seed] {line.Text}");
        var byNode = recorded.Results.GroupBy(r => r.Node).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine($"jobs by node: {string.Join(", ", byNode.Select(p => $"{p.Key}={p.Value}"))}" +
            (victim is null ? "" : $"; stage ended {(DateTime.UtcNow - killedAt).TotalSeconds:F1} s after the kill"));
        Assert.True(victim is not null, "no child process finished a job");
        var exit = await victim!.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(exit != 0, $"the killed process exited with {exit}");
        var victimAddress = victim.Address;
        // its jobs were sent again: normally once the failure detector and the split-brain resolver have removed it
        // (about 7 s, then the removal margin), on a machine too loaded for that by the accept timeout
        var resent = seed.Log.Where(l => l.Text.Contains("sending it again", StringComparison.Ordinal)).ToList();
        Assert.True(resent.Count > 0, "no job was sent again after the kill; the seed's log from the kill on:\n" +
            string.Join("\n", seed.Log.Where(l => l.At >= killedAt).Select(l => $"{l.At:HH:mm:ss.fff} {l.Text}").Take(60)));
        output.WriteLine($"first job sent again {(resent[0].At - killedAt).TotalSeconds:F1} s after the kill, " +
            (resent.Any(l => l.Text.Contains($"its node {victimAddress} was removed", StringComparison.Ordinal)) ? "after its removal" : "by the accept timeout"));
        var ids = recorded.Results.Select(r => r.ImageId).Order().ToList();
        Assert.True(data.Ids.Order().SequenceEqual(ids),
            $"results: missing [{string.Join(", ", data.Ids.Except(ids))}], twice [{string.Join(", ", ids.GroupBy(i => i).Where(g => g.Count() > 1).Select(g => g.Key))}]");
        // exactly the labels of the single-process stage, byte for byte, and nothing else
        var expected = JobData.Labels(Path.Combine(local.StageDir(CrfStage.StageName), "labels"));
        Assert.Equal(24, expected.Count);
        var labelDir = Path.Combine(cluster.StageDir(CrfStage.StageName), "labels");
        var actual = JobData.Labels(labelDir);
        var differing = expected.Keys.Union(actual.Keys)
            .Where(k => !expected.TryGetValue(k, out var e) || !actual.TryGetValue(k, out var a) || !e.AsSpan().SequenceEqual(a))
            .Select(k => $"{k} ({(expected.TryGetValue(k, out var e) ? e.Length : -1)} B here, {(actual.TryGetValue(k, out var a) ? a.Length : -1)} B on the cluster, " +
                         $"written by {recorded.Results.FirstOrDefault(r => r.ImageId + ".png" == k)?.Node ?? "nobody"})")
            .ToList();
        Assert.True(differing.Count == 0, $"labels that differ from the single-process stage: {string.Join("; ", differing)}; " +
            $"files in {labelDir}: {string.Join(", ", Directory.GetFiles(labelDir).Select(Path.GetFileName))}");
    }

    [Fact]
    public async Task APreprocessNodeProcessRunsJobsWithoutLoadingLibTorch()
    {
        using var data = JobData.Create(4);
        await using var seed = await Seed(output, ClusterRoles.Coordinator);
        using var node = await NodeProcess.StartAsync("--roles", "preprocess", "--seed", seed.Address.ToString());
        await WaitForMembers(seed, 2);
        foreach (var jobs in new[]
                 {
                     data.Ids.Select(id => (IImageJob)data.CrfJob(id, "crf")).ToList(),
                     data.Ids.Select(id => (IImageJob)data.MapsJob(id, "maps")).ToList(),
                     data.Ids.Select(id => (IImageJob)data.WalkJob(id, "rw")).ToList(),
                 })
        {
            var results = await seed.Runner.RunAsync(jobs).WaitAsync(TimeSpan.FromMinutes(2));
            Assert.All(results, r => Assert.Equal(node.Address, r.Node));
        }
        var libraries = node.MappedLibraries();
        Assert.Contains(libraries, l => l.Contains("libcoreclr", StringComparison.Ordinal));
        Assert.DoesNotContain(libraries, l => l.Contains("torch", StringComparison.OrdinalIgnoreCase));
        output.WriteLine($"{libraries.Count} shared libraries mapped by pid {node.Pid}, none of them LibTorch");
    }

    [Fact]
    public async Task SigtermMakesANodeProcessLeaveGracefully()
    {
        await using var seed = await Seed(output, ClusterRoles.Coordinator);
        using var node = await NodeProcess.StartAsync("--roles", "preprocess", "--seed", seed.Address.ToString());
        await WaitForMembers(seed, 2);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        node.Terminate();
        var exit = await node.WaitForExitAsync(TimeSpan.FromSeconds(60));
        var exited = clock.Elapsed;
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (seed.Cluster.State.Members.Any(m => m.Address.ToString() == node.Address))
            await Task.Delay(100, limit.Token);
        output.WriteLine($"SIGTERM → process exited {exited.TotalSeconds:F1} s, removed from the seed's view {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(exit == 0, node.Log);
        Assert.Contains($"node {node.Address} left the cluster", node.Log);
        // a graceful leave, not a crash: nobody had to mark it unreachable
        Assert.DoesNotContain(seed.Log, l => l.Text.Contains("UNREACHABLE", StringComparison.Ordinal));
    }

    private static void CopyCams(JobData data, PipelineContext to)
    {
        var target = Path.Combine(to.StageDir(CamStage.StageName), "labels", "cams");
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(data.CamDir))
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
    }

    /// <summary>Calls <paramref name="act"/> once, when the first job of a node that <paramref name="matches"/> is reported done.</summary>
    private sealed class OnFirstResult(IImageJobRunner inner, Func<string, bool> matches, Action<string> act) : IImageJobRunner
    {
        private int fired;

        public Task<IReadOnlyList<ImageJobResult>> RunAsync(IReadOnlyList<IImageJob> jobs, ImageJobProgress? progress = null, CancellationToken cancellationToken = default) =>
            inner.RunAsync(jobs, (done, total, result) =>
            {
                if (matches(result.Node) && Interlocked.Exchange(ref fired, 1) == 0)
                    act(result.Node);
                progress?.Invoke(done, total, result);
            }, cancellationToken);
    }
}
