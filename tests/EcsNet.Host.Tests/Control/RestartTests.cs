using EcsNet.Control.V1;
using EcsNet.Testing;

namespace EcsNet.Host.Tests.Control;

/// <summary>The run registry across host restarts, on SQLite and on a real PostgreSQL server.</summary>
[Collection(ControlCollection.Name)]
public sealed class RestartTests(PostgresServer postgres) : IClassFixture<PostgresServer>
{
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task A_restarted_host_lists_its_runs_and_goes_on_with_the_interrupted_one_from_its_checkpoint(string database)
    {
        using var dir = new TempDir();
        var registry = database == "sqlite" ? "sqlite:" + dir.File("registry.db") : await postgres.CreateDatabaseAsync("restart_" + Guid.NewGuid().ToString("N")[..8]);
        string finished, interrupted;
        int stepAtStop;
        await using (var first = await ControlHost.StartAsync(dir.File("runs"), registry))
        {
            var client = first.Client();
            finished = (await client.SubmitExperimentAsync(new SubmitExperimentRequest { Experiment = ControlHost.TinyExperiment("done") })).Id;
            Assert.Equal(RunState.Completed, (await ControlHost.WatchAsync(client, finished))[^1].Run.State);
            interrupted = (await client.SubmitExperimentAsync(new SubmitExperimentRequest { Experiment = ControlHost.TinyExperiment("cut", epochs: 40) })).Id;
            stepAtStop = (await ControlHost.WatchAsync(client, interrupted, e => e.Run.Step >= 3 && e.Losses.Count > 0))[^1].Run.Step;
        }   // the host stops mid-run, as on a redeploy

        await using var second = await ControlHost.StartAsync(dir.File("runs"), registry);
        var again = second.Client();
        var runs = (await again.ListRunsAsync(new ListRunsRequest())).Runs;
        Assert.Equal(new[] { interrupted, finished }, runs.Select(r => r.Id));
        var done = runs[1];
        Assert.Equal(RunState.Completed, done.State);
        Assert.Equal("cam", Assert.Single(done.Stages).Stage);
        Assert.True(done.Stages[0].Metrics.ContainsKey("mIoU"));

        var resumed = await ControlHost.WatchAsync(again, interrupted);
        var firstStep = resumed.First(e => e.Losses.Count > 0 && e.Run.Step > 0).Run.Step;
        Assert.True(firstStep > stepAtStop - 1, $"went on at step {firstStep} after the host stopped at step {stepAtStop}: it started over");
        var end = resumed[^1].Run;
        Assert.True(end.State == RunState.Completed, $"{end.State}: {end.Error}");
        Assert.Equal(1, end.Resumes);
        Assert.Equal(end.MaxSteps, end.Step);
    }
}
