namespace EcsNet.Control.Registry;

/// <summary>Where a run is in its life (the registry's copy; the control API's RunState mirrors it).</summary>
public enum RunLifecycle
{
    Queued = 1,
    Running = 2,
    Pausing = 3,
    Paused = 4,
    Stopping = 5,
    Stopped = 6,
    Completed = 7,
    Failed = 8,
}

/// <summary>One run as the registry keeps it: enough to list it, show it, and go on with it after a host restart.</summary>
public sealed record RunRecord
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required RunLifecycle State { get; init; }

    /// <summary>The submitted experiment (control.v1.Experiment as protobuf JSON), so a restarted host can run it again.</summary>
    public required string ExperimentJson { get; init; }

    /// <summary>The run folder (checkpoints, stage outputs, logs).</summary>
    public required string RunDir { get; init; }

    public required DateTimeOffset Created { get; init; }
    public DateTimeOffset Updated { get; init; }
    public string Stage { get; init; } = "";
    public int Step { get; init; }
    public int MaxSteps { get; init; }
    public int Workers { get; init; }
    public string Error { get; init; } = "";

    /// <summary>Times the run went on from its checkpoints (resume, host restart).</summary>
    public int Resumes { get; init; }
}

/// <summary>A finished stage of a run, with its metrics (mIoU, times, ...).</summary>
public sealed record StageRecord(string Stage, string Title, bool Reused, double Seconds, string Note, IReadOnlyDictionary<string, double> Metrics);

/// <summary>A file a run produced, by kind (checkpoints, labels, overlays, tables, report, logs).</summary>
public sealed record ArtifactRecord(string Kind, string Path);

/// <summary>
/// The run registry: runs, their experiments, states, stage metrics and artifact paths, kept across host restarts
/// in a database (SQLite file by default, PostgreSQL for clusters). Every method is safe to call from several
/// threads; updates of one run are last-writer-wins.
/// </summary>
/// <remarks>
/// Implementations: <see cref="SqliteRunRegistry"/>, <see cref="PostgresRunRegistry"/>, opened by <see cref="RunRegistry.Open"/>.
/// A database that cannot be reached or used raises <see cref="RegistryUnavailableException"/>.
/// </remarks>
public interface IRunRegistry : IAsyncDisposable
{
    /// <summary>Creates or upgrades the schema (idempotent; safe when several hosts start at once).</summary>
    Task InitializeAsync(CancellationToken ct = default);

    /// <summary>Adds a new run; a run with the same id is an error (<see cref="InvalidOperationException"/>).</summary>
    /// <remarks>Times are kept in UTC to the millisecond; an unset <see cref="RunRecord.Updated"/> becomes <see cref="RunRecord.Created"/>.</remarks>
    Task CreateAsync(RunRecord run, CancellationToken ct = default);

    Task<RunRecord?> GetAsync(string id, CancellationToken ct = default);

    /// <summary>Runs newest first, only those in <paramref name="states"/> when given.</summary>
    /// <remarks>Newest is by <see cref="RunRecord.Created"/>, ties by id; no states or an empty collection: every state;
    /// <paramref name="limit"/> is clamped to 1..1000.</remarks>
    Task<IReadOnlyList<RunRecord>> ListAsync(IReadOnlyCollection<RunLifecycle>? states = null, int limit = 100, CancellationToken ct = default);

    /// <summary>Sets the state (and the error, for failures); stamps <see cref="RunRecord.Updated"/>. False: no such run.</summary>
    Task<bool> SetStateAsync(string id, RunLifecycle state, string error = "", CancellationToken ct = default);

    /// <summary>Where the run is: stage, step of max steps, workers.</summary>
    /// <exception cref="InvalidOperationException">No such run (also for the other updates below).</exception>
    Task SetProgressAsync(string id, string stage, int step, int maxSteps, int workers, CancellationToken ct = default);

    /// <summary>Counts one more resume of the run.</summary>
    Task AddResumeAsync(string id, CancellationToken ct = default);

    /// <summary>Records a finished stage (replacing an earlier record of the same stage).</summary>
    Task SetStageAsync(string id, StageRecord stage, CancellationToken ct = default);

    Task<IReadOnlyList<StageRecord>> StagesAsync(string id, CancellationToken ct = default);

    /// <summary>Records an artifact path (relative to the run folder); the same kind and path twice is kept once.</summary>
    Task AddArtifactAsync(string id, ArtifactRecord artifact, CancellationToken ct = default);

    Task<IReadOnlyList<ArtifactRecord>> ArtifactsAsync(string id, CancellationToken ct = default);
}
