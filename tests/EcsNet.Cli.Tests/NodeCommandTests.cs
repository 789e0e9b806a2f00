using System.Net;
using EcsNet.Testing;

namespace EcsNet.Cli.Tests;

/// <summary>`ecsnet node`: options, errors, and a node run in process until cancelled.</summary>
[Collection(CliCollection.Name)]
public sealed class NodeCommandTests
{
    [Fact]
    public async Task HelpNamesTheOptionsAndSaysWhatTheRolesCarry()
    {
        var r = await Ecsnet.Run("node", "--help");
        Assert.Equal(0, r.Exit);
        foreach (var option in new[] { "--roles", "--seed", "--hostname", "--port", "--device", "--workers", "--config", "--health-url" })
            Assert.Contains(option, r.Out);
        // help wraps at the terminal's width: compare with the whitespace folded
        var text = System.Text.RegularExpressions.Regex.Replace(r.Out, @"\s+", " ");
        Assert.Contains("coordinator: the training coordinator singleton", text);
        Assert.Contains("worker: one worker actor per device", text);
        Assert.Contains("preprocess: the training samples and the per-image jobs", text);
    }

    [Theory]
    [InlineData("--roles", new[] { "--roles", "trainer" })]
    [InlineData("--seed", new[] { "--seed", "10.0.0.5:4053" })]
    [InlineData("--seed", new[] { "--seed", "akka.tcp://other@127.0.0.1:4053" })]
    [InlineData("--port", new[] { "--port", "70000" })]
    [InlineData("--health-url", new[] { "--health-url", "ftp://x" })]
    public async Task BadOptionsGiveOneLineNamingTheOptionAndExit2(string named, string[] args)
    {
        var r = await Ecsnet.Run(new[] { "node" }.Concat(args).ToArray());
        Assert.Equal(EcsNetCli.ExitBadInput, r.Exit);
        Assert.StartsWith("error: " + named, r.Err.Trim());
        Assert.Single(r.Err.Trim().Split('\n'));
    }

    [Fact]
    public async Task AMissingOrBadSettingsFileIsNamed()
    {
        using var dir = new TempDir();
        var missing = await Ecsnet.Run("node", "--config", dir.File("none.json"));
        Assert.Equal(EcsNetCli.ExitBadInput, missing.Exit);
        Assert.Contains("none.json: node settings file not found", missing.Err);

        File.WriteAllText(dir.File("bad.json"), """{ "EcsNet": { "Node": { "JobMaxTries": 0 } } }""");
        var bad = await Ecsnet.Run("node", "--config", dir.File("bad.json"));
        Assert.Equal(EcsNetCli.ExitBadInput, bad.Exit);
        Assert.Contains("EcsNet:Node:JobMaxTries: must be ≥ 1", bad.Err);
    }

    [Fact]
    public async Task ANodeRunsUntilCancelledServesHealthAndLeaves()
    {
        using var dir = new TempDir();
        int port = FreePorts.Loopback();
        File.WriteAllText(dir.File("node.json"), $$"""{ "EcsNet": { "Node": { "Port": {{port}}, "JobSlots": 1 } } }""");
        var output = new StringWriter();
        var error = new StringWriter();
        using var cancel = new CancellationTokenSource();
        var run = EcsNetCli.RunAsync(new[] { "node", "--roles", "preprocess", "--config", dir.File("node.json") }, CliIo.ToWriters(output, error), cancel.Token);
        string Out() { lock (output) return output.ToString(); }
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!Out().Contains("is up in the cluster") && !run.IsCompleted && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        Assert.Contains($"{NodeCommand.StartedPrefix}akka.tcp://ecsnet@127.0.0.1:{port} roles preprocess", Out());
        var ready = Out().Split(' ', '\n').First(w => w.EndsWith("/healthz/ready", StringComparison.Ordinal)).Trim();
        using (var http = new HttpClient())
        {
            // the readiness probe learns of the membership from cluster events, a moment after the node prints it
            var response = await HttpPolling.GetUntil(http, ready, HttpStatusCode.OK, TimeSpan.FromSeconds(20));
            Assert.True(response.Status == HttpStatusCode.OK, $"readiness still {response.Status} ({response.Body}) 20 s after the node was up");
            Assert.Equal("Healthy", response.Body);
            var live = await http.GetAsync(ready.Replace("/ready", "/live"));
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        }
        cancel.Cancel();
        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"node akka.tcp://ecsnet@127.0.0.1:{port} left the cluster", Out());
    }

    [Fact]
    public async Task ANodeWhoseSeedNeverAnswersGivesUpNamingIt()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("node.json"), """{ "EcsNet": { "Node": { "SeedJoinTimeout": "00:00:03" } } }""");
        var seed = $"akka.tcp://ecsnet@127.0.0.1:{FreePorts.Loopback()}";
        var r = await Ecsnet.Run("node", "--roles", "worker", "--seed", seed, "--config", dir.File("node.json")).WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal(EcsNetCli.ExitBadInput, r.Exit);
        Assert.Contains($"error: --seed: could not join {seed}", r.Err);
    }
}
