using EcsNet.Control.Registry;

namespace EcsNet.Control.Tests.Registry;

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualClock(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>
/// The behaviour every <see cref="IRunRegistry"/> must have, written once; each database runs it through a subclass
/// that gives a fresh, empty store per test (<see cref="SqliteRunRegistryTests"/>, <see cref="PostgresRunRegistryTests"/>).
/// </summary>
public abstract class RunRegistryContract : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2025, 3, 4, 5, 6, 7, 891, TimeSpan.FromHours(2));

    private SqlRunRegistry? registry;

    /// <summary>The store of this test, as <see cref="RunRegistry.Open"/> reads it.</summary>
    protected string Connection { get; private set; } = "";

    internal ManualClock Clock { get; } = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));

    protected SqlRunRegistry Registry => registry ?? throw new InvalidOperationException("not initialized");

    /// <summary>A fresh, empty store (a new file, a new database) as a connection string.</summary>
    protected abstract Task<string> CreateStoreAsync();

    public async Task InitializeAsync()
    {
        Connection = await CreateStoreAsync();
        registry = await RunRegistry.OpenAsync(Connection, Clock);
    }

    public virtual async Task DisposeAsync()
    {
        if (registry is not null)
        {
            await registry.DisposeAsync();
        }
    }

    private static RunRecord Run(string id, DateTimeOffset created, RunLifecycle state = RunLifecycle.Queued) => new()
    {
        Id = id,
        Name = "run " + id,
        State = state,
        ExperimentJson = "{}",
        RunDir = "runs/" + id,
        Created = created,
    };

    [Fact]
    public async Task A_created_run_comes_back_with_every_field()
    {
        var run = new RunRecord
        {
            Id = "r-1",
            Name = "ÉCS 実験 🚀 «tiny»",
            State = RunLifecycle.Paused,
            ExperimentJson = """{"name":"tiny-ecs","workers":2,"stages":["cam","crf"],"note":"ü"}""",
            RunDir = "runs/r-1 ünï",
            Created = T0,
            Updated = T0.AddMinutes(5),
            Stage = "crf",
            Step = 7,
            MaxSteps = 40,
            Workers = 3,
            Error = "überhitzt ✗",
            Resumes = 2,
        };
        await Registry.CreateAsync(run);

        var back = await Registry.GetAsync("r-1");

        Assert.Equal(run, back);
        Assert.Equal(TimeSpan.Zero, back!.Created.Offset);
        Assert.Equal(TimeSpan.Zero, back.Updated.Offset);
        Assert.Equal(new DateTimeOffset(2025, 3, 4, 3, 6, 7, 891, TimeSpan.Zero), back.Created);
    }

    [Fact]
    public async Task Times_are_kept_in_utc_to_the_millisecond_and_updated_defaults_to_created()
    {
        var created = T0.AddTicks(4321);
        await Registry.CreateAsync(Run("r-1", created));

        var back = await Registry.GetAsync("r-1");

        Assert.Equal(T0, back!.Created);
        Assert.Equal(T0, back.Updated);
        Assert.Equal(SqlRunRegistry.Truncate(created), back.Created);
    }

    [Fact]
    public async Task An_unknown_id_reads_as_null_with_no_stages_or_artifacts()
    {
        Assert.Null(await Registry.GetAsync("nope"));
        Assert.Empty(await Registry.StagesAsync("nope"));
        Assert.Empty(await Registry.ArtifactsAsync("nope"));
    }

    [Fact]
    public async Task Creating_an_existing_id_fails_naming_it_and_keeps_the_first()
    {
        await Registry.CreateAsync(Run("r-dup", T0));

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Registry.CreateAsync(Run("r-dup", T0.AddDays(1)) with { Name = "second" }));

        Assert.Contains("'r-dup'", e.Message);
        Assert.Contains("already exists", e.Message);
        Assert.Equal("run r-dup", (await Registry.GetAsync("r-dup"))!.Name);
    }

    [Fact]
    public async Task List_is_newest_first_then_by_id_filters_by_state_and_clamps_the_limit()
    {
        await Registry.CreateAsync(Run("a", T0, RunLifecycle.Queued));
        await Registry.CreateAsync(Run("b", T0.AddSeconds(1), RunLifecycle.Running));
        await Registry.CreateAsync(Run("d", T0.AddSeconds(2), RunLifecycle.Running));
        await Registry.CreateAsync(Run("c", T0.AddSeconds(2), RunLifecycle.Completed));
        await Registry.CreateAsync(Run("e", T0.AddSeconds(3), RunLifecycle.Failed));

        async Task<string[]> Ids(IReadOnlyCollection<RunLifecycle>? states = null, int limit = 100) =>
            [.. (await Registry.ListAsync(states, limit)).Select(r => r.Id)];

        Assert.Equal(["e", "c", "d", "b", "a"], await Ids());
        Assert.Equal(["e", "c", "d", "b", "a"], await Ids([]));
        Assert.Equal(["d", "b"], await Ids([RunLifecycle.Running]));
        Assert.Equal(["c", "d", "b"], await Ids([RunLifecycle.Running, RunLifecycle.Completed, RunLifecycle.Running]));
        Assert.Empty(await Ids([RunLifecycle.Stopped]));
        Assert.Equal(["e", "c"], await Ids(limit: 2));
        Assert.Equal(["e"], await Ids(limit: 0));
        Assert.Equal(["e"], await Ids(limit: -5));
        Assert.Equal(5, (await Ids(limit: int.MaxValue)).Length);
        Assert.Equal(["d"], await Ids([RunLifecycle.Running], limit: 1));
    }

    [Fact]
    public async Task A_state_change_stamps_updated_and_keeps_the_error()
    {
        await Registry.CreateAsync(Run("r-1", T0));
        Clock.Now = new DateTimeOffset(2025, 7, 1, 8, 0, 0, 123, TimeSpan.Zero);

        Assert.True(await Registry.SetStateAsync("r-1", RunLifecycle.Failed, "out of memory"));

        var failed = await Registry.GetAsync("r-1");
        Assert.Equal(RunLifecycle.Failed, failed!.State);
        Assert.Equal("out of memory", failed.Error);
        Assert.Equal(Clock.Now, failed.Updated);
        Assert.Equal(T0, failed.Created);

        Clock.Now = Clock.Now.AddSeconds(10);
        Assert.True(await Registry.SetStateAsync("r-1", RunLifecycle.Running));
        var running = await Registry.GetAsync("r-1");
        Assert.Equal(RunLifecycle.Running, running!.State);
        Assert.Equal("", running.Error);
        Assert.Equal(Clock.Now, running.Updated);

        Assert.False(await Registry.SetStateAsync("nope", RunLifecycle.Stopped));
    }

    [Fact]
    public async Task Progress_and_resumes_are_recorded()
    {
        await Registry.CreateAsync(Run("r-1", T0) with { Resumes = 1 });
        Clock.Now = Clock.Now.AddMinutes(3);

        await Registry.SetProgressAsync("r-1", "seg", 12, 100, 4);
        await Registry.AddResumeAsync("r-1");
        await Registry.AddResumeAsync("r-1");

        var run = await Registry.GetAsync("r-1");
        Assert.Equal(("seg", 12, 100, 4), (run!.Stage, run.Step, run.MaxSteps, run.Workers));
        Assert.Equal(3, run.Resumes);
        Assert.Equal(Clock.Now, run.Updated);
        Assert.Equal(RunLifecycle.Queued, run.State);
    }

    [Fact]
    public async Task Updates_of_an_unknown_run_fail_naming_it()
    {
        foreach (var update in new Func<Task>[]
        {
            () => Registry.SetProgressAsync("ghost", "cam", 1, 2, 1),
            () => Registry.AddResumeAsync("ghost"),
            () => Registry.SetStageAsync("ghost", new StageRecord("cam", "CAM", false, 1, "", new Dictionary<string, double>())),
            () => Registry.AddArtifactAsync("ghost", new ArtifactRecord("log", "run.log")),
        })
        {
            var e = await Assert.ThrowsAsync<InvalidOperationException>(update);
            Assert.Contains("'ghost'", e.Message);
        }

        Assert.Empty(await Registry.StagesAsync("ghost"));
        Assert.Empty(await Registry.ArtifactsAsync("ghost"));
    }

    [Fact]
    public async Task A_stage_is_upserted_and_its_metrics_come_back_bit_for_bit()
    {
        await Registry.CreateAsync(Run("r-1", T0));
        var metrics = new Dictionary<string, double>
        {
            ["mIoU"] = 0.1 + 0.2,
            ["pi"] = Math.PI,
            ["third"] = 1.0 / 3,
            ["tiny"] = double.Epsilon,
            ["huge"] = double.MaxValue,
            ["negative"] = -1.2345678901234567e-300,
            ["zero"] = 0,
            ["nan"] = double.NaN,
            ["inf"] = double.PositiveInfinity,
            ["Größe ✓"] = 42,
        };
        await Registry.SetStageAsync("r-1", new StageRecord("cam", "CAM training", false, 12.345678901234567, "", new Dictionary<string, double> { ["mIoU"] = 0.5 }));
        await Registry.SetStageAsync("r-1", new StageRecord("crf", "CRF labels", true, 0.25, "reused from r-0", new Dictionary<string, double>()));
        await Registry.SetStageAsync("r-1", new StageRecord("cam", "CAM training (again)", true, 98.76543210987654, "ünïcode note", metrics));

        var stages = await Registry.StagesAsync("r-1");

        Assert.Equal(["cam", "crf"], stages.Select(s => s.Stage));
        var cam = stages[0];
        Assert.Equal(("CAM training (again)", true, "ünïcode note"), (cam.Title, cam.Reused, cam.Note));
        Assert.Equal(BitConverter.DoubleToInt64Bits(98.76543210987654), BitConverter.DoubleToInt64Bits(cam.Seconds));
        Assert.Equal(metrics.Keys.Order(), cam.Metrics.Keys.Order());
        foreach (var (key, value) in metrics)
        {
            Assert.Equal(BitConverter.DoubleToInt64Bits(value), BitConverter.DoubleToInt64Bits(cam.Metrics[key]));
        }

        var crf = stages[1];
        Assert.Equal(("CRF labels", true, 0.25, "reused from r-0"), (crf.Title, crf.Reused, crf.Seconds, crf.Note));
        Assert.Empty(crf.Metrics);
    }

    [Fact]
    public async Task Artifacts_are_kept_once_in_the_order_first_recorded()
    {
        await Registry.CreateAsync(Run("r-1", T0));
        await Registry.CreateAsync(Run("r-2", T0));

        await Registry.AddArtifactAsync("r-1", new ArtifactRecord("checkpoint", "checkpoints/cam.pt"));
        await Registry.AddArtifactAsync("r-1", new ArtifactRecord("labels", "labels/2007_000032.png"));
        await Registry.AddArtifactAsync("r-1", new ArtifactRecord("checkpoint", "checkpoints/cam.pt"));
        await Registry.AddArtifactAsync("r-1", new ArtifactRecord("overlay", "checkpoints/cam.pt"));
        await Registry.AddArtifactAsync("r-2", new ArtifactRecord("checkpoint", "checkpoints/cam.pt"));

        Assert.Equal(
            [new("checkpoint", "checkpoints/cam.pt"), new("labels", "labels/2007_000032.png"), new ArtifactRecord("overlay", "checkpoints/cam.pt")],
            await Registry.ArtifactsAsync("r-1"));
        Assert.Single(await Registry.ArtifactsAsync("r-2"));
    }

    [Fact]
    public async Task Everything_is_still_there_after_the_registry_is_opened_again()
    {
        await Registry.CreateAsync(Run("r-1", T0) with { Name = "persistent ✓" });
        await Registry.SetStateAsync("r-1", RunLifecycle.Running);
        await Registry.SetProgressAsync("r-1", "crf", 3, 9, 2);
        await Registry.AddResumeAsync("r-1");
        await Registry.SetStageAsync("r-1", new StageRecord("cam", "CAM", false, 1.5, "", new Dictionary<string, double> { ["mIoU"] = 0.4321 }));
        await Registry.AddArtifactAsync("r-1", new ArtifactRecord("report", "report.md"));
        var before = await Registry.GetAsync("r-1");

        // the host restarts: the old registry goes away, a new one opens the same store
        await Registry.DisposeAsync();
        registry = null;
        registry = await RunRegistry.OpenAsync(Connection, Clock);

        Assert.Equal(before, await Registry.GetAsync("r-1"));
        Assert.Equal(RunLifecycle.Running, before!.State);
        Assert.Equal(0.4321, Assert.Single(await Registry.StagesAsync("r-1")).Metrics["mIoU"]);
        Assert.Equal([new ArtifactRecord("report", "report.md")], await Registry.ArtifactsAsync("r-1"));
        Assert.Equal([SqlRunRegistry.SchemaVersion], await Registry.SchemaVersionsAsync());
    }

    [Fact]
    public async Task Concurrent_updates_from_several_tasks_all_land()
    {
        const int Tasks = 8;
        const int Rounds = 15;
        await Registry.CreateAsync(Run("shared", T0));

        await Task.WhenAll(Enumerable.Range(0, Tasks).Select(t => Task.Run(async () =>
        {
            await Registry.CreateAsync(Run($"own-{t}", T0.AddSeconds(t)));
            for (var i = 0; i < Rounds; i++)
            {
                await Registry.AddResumeAsync("shared");
                await Registry.SetProgressAsync("shared", $"s{t}", i, Rounds, t);
                await Registry.SetStageAsync("shared", new StageRecord($"s{t}", "stage", i % 2 == 0, i, "", new Dictionary<string, double> { ["i"] = i }));
                await Registry.AddArtifactAsync("shared", new ArtifactRecord("log", $"logs/{t}/{i}.log"));
                await Registry.SetStateAsync($"own-{t}", i % 2 == 0 ? RunLifecycle.Running : RunLifecycle.Paused);
                Assert.NotNull(await Registry.GetAsync("shared"));
            }
        })));

        var shared = await Registry.GetAsync("shared");
        Assert.Equal(Tasks * Rounds, shared!.Resumes);
        Assert.Equal(Tasks, (await Registry.StagesAsync("shared")).Count);
        Assert.All(await Registry.StagesAsync("shared"), s => Assert.Equal(Rounds - 1, s.Metrics["i"]));
        Assert.Equal(Tasks * Rounds, (await Registry.ArtifactsAsync("shared")).Count);
        Assert.Equal(Tasks + 1, (await Registry.ListAsync()).Count);
    }

    [Fact]
    public async Task Initializing_again_or_from_several_hosts_at_once_is_harmless()
    {
        await Registry.CreateAsync(Run("r-1", T0));
        await Registry.InitializeAsync();
        await Registry.InitializeAsync();
        Assert.NotNull(await Registry.GetAsync("r-1"));
        Assert.Equal([SqlRunRegistry.SchemaVersion], await Registry.SchemaVersionsAsync());

        // four hosts start at once on a new, empty store
        var fresh = await CreateStoreAsync();
        var hosts = Enumerable.Range(0, 4).Select(_ => RunRegistry.Open(fresh)).ToList();
        try
        {
            await Task.WhenAll(hosts.Select(h => Task.Run(() => h.InitializeAsync())));
            await hosts[0].CreateAsync(Run("r-2", T0));
            Assert.NotNull(await hosts[3].GetAsync("r-2"));
            Assert.Equal([SqlRunRegistry.SchemaVersion], await hosts[1].SchemaVersionsAsync());
        }
        finally
        {
            foreach (var h in hosts)
            {
                await h.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_disposed_registry_refuses_calls()
    {
        var other = RunRegistry.Open(Connection);
        await other.DisposeAsync();
        await other.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => other.GetAsync("r-1"));
    }
}
