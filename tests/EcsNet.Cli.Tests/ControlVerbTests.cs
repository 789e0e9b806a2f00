using System.Text.Json;
using EcsNet.Testing;

namespace EcsNet.Cli.Tests;

/// <summary>`ecsnet serve` and the operator verbs against it, with the exit codes scripts rely on (docs/CONTROL.md).</summary>
[Collection(CliCollection.Name)]
public sealed class ControlVerbTests
{
    private const string Token = "cli-token-0123456789abcdef";

    private const string Tiny = """
        name: cli-tiny
        dataset:
          synthetic: { trainImages: 8, valImages: 2, size: 64, seed: 2 }
        stages: [cam]
        camTraining: { batchSize: 4, crop: 64, checkpointEvery: 1 }
        camInference: { scales: [1.0] }
        augment: { longEdgeMin: 64, longEdgeMax: 80 }
        """;

    [Fact]
    public async Task The_operator_verbs_drive_a_served_cluster_and_exit_with_codes_scripts_can_rely_on()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("token"), Token + "\n");
        File.WriteAllText(dir.File("tiny.yaml"), Tiny.Replace("batchSize: 4", "batchSize: 4, epochs: 1"));
        File.WriteAllText(dir.File("long.yaml"), Tiny.Replace("batchSize: 4", "batchSize: 4, epochs: 60"));
        File.WriteAllText(dir.File("bad.yaml"), Tiny.Replace("stages: [cam]", "stages: [cam, paint]\nworkers: 0"));
        var output = new StringWriter();
        var error = new StringWriter();
        using var cancel = new CancellationTokenSource();
        var serve = EcsNetCli.RunAsync(new[] { "serve", "--port", "0", "--token-file", dir.File("token"), "--runs", dir.File("runs") },
            CliIo.ToWriters(output, error), cancel.Token);
        string Out() { lock (output) return output.ToString(); }
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!Out().Contains(ServeCommand.ControlPrefix) && !serve.IsCompleted && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        Assert.False(serve.IsCompleted, error.ToString());
        var url = Out().Split('\n').First(l => l.StartsWith(ServeCommand.ControlPrefix, StringComparison.Ordinal))[ServeCommand.ControlPrefix.Length..].Trim();
        string[] Api(params string[] args) => args.Concat(new[] { "--server", url, "--token", Token }).ToArray();

        var submitted = await Ecsnet.Run(Api("submit", dir.File("tiny.yaml"), "--watch"));
        Assert.True(submitted.Exit == 0, submitted.ToString());
        Assert.Contains("submitted run cli-tiny-", submitted.Out);
        Assert.Contains("completed", submitted.Out);
        Assert.Contains("mIoU", submitted.Out);

        var runs = await Ecsnet.Run(Api("runs", "--json"));
        Assert.Equal(0, runs.Exit);
        var run = JsonDocument.Parse(runs.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single()).RootElement;
        var id = run.GetProperty("id").GetString()!;
        Assert.Equal("RUN_STATE_COMPLETED", run.GetProperty("state").GetString());

        var report = await Ecsnet.Run(Api("report", id, "--out", dir.File("report.html")));
        Assert.True(report.Exit == 0, report.ToString());
        Assert.Contains("<svg", File.ReadAllText(dir.File("report.html")));

        var artifacts = await Ecsnet.Run(Api("artifacts", id, "--out", dir.File("fetched"), "--kind", "tables"));
        Assert.True(artifacts.Exit == 0, artifacts.ToString());
        Assert.True(File.Exists(Path.Combine(dir.File("fetched"), "cam", "manifest.json")));

        // a long run: paused (watch ends with 7), resumed, stopped
        var longRun = await Ecsnet.Run(Api("submit", dir.File("long.yaml"), "--json"));
        Assert.Equal(0, longRun.Exit);
        var longId = JsonDocument.Parse(longRun.Out).RootElement.GetProperty("id").GetString()!;
        Assert.Equal(0, (await Ecsnet.Run(Api("pause", longId))).Exit);
        Assert.Equal(ControlClient.ExitRunStopped, (await Ecsnet.Run(Api("watch", longId))).Exit);
        Assert.Equal(0, (await Ecsnet.Run(Api("resume", longId))).Exit);
        var stop = await Ecsnet.Run(Api("stop", longId));
        Assert.True(stop.Exit == 0, stop.ToString());
        Assert.Equal(ControlClient.ExitRunStopped, (await Ecsnet.Run(Api("watch", longId))).Exit);

        // what scripts see when something is wrong
        var bad = await Ecsnet.Run(Api("submit", dir.File("bad.yaml")));
        Assert.Equal(EcsNetCli.ExitBadInput, bad.Exit);
        Assert.Contains("experiment.stages[1]: unknown stage 'paint'", bad.Err);
        Assert.Equal(ControlClient.ExitWrongState, (await Ecsnet.Run(Api("resume", id))).Exit);
        Assert.Equal(ControlClient.ExitNotFound, (await Ecsnet.Run(Api("watch", "no-such-run"))).Exit);
        var wrong = await Ecsnet.Run("runs", "--server", url, "--token", "not-the-token-at-all");
        Assert.Equal(ControlClient.ExitUnauthenticated, wrong.Exit);
        Assert.DoesNotContain("not-the-token-at-all", wrong.Err);
        Assert.Equal(ControlClient.ExitUnavailable, (await Ecsnet.Run("runs", "--server", $"http://127.0.0.1:{FreePorts.Loopback()}", "--token", Token)).Exit);
        Assert.Equal(EcsNetCli.ExitBadInput, (await Ecsnet.Run("runs", "--server", url)).Exit);   // no token at all

        cancel.Cancel();
        Assert.Equal(0, await serve.WaitAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task Serve_refuses_to_start_without_a_token()
    {
        using var dir = new TempDir();
        var r = await Ecsnet.Run("serve", "--port", "0", "--runs", dir.File("runs"));
        Assert.Equal(EcsNetCli.ExitBadInput, r.Exit);
        Assert.Contains("control token: no token is configured", r.Err);
    }
}
