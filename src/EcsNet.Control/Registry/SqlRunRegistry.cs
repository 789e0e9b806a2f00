using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dapper;

namespace EcsNet.Control.Registry;

/// <summary>
/// The run registry over a SQL database with Dapper (docs/CONTROL.md, "The run registry"): the schema, the queries
/// and the error handling shared by <see cref="SqliteRunRegistry"/> and <see cref="PostgresRunRegistry"/>, which
/// give the dialect's column types, time encoding, connections and schema lock. Every call opens its own pooled
/// connection, so one instance serves any number of threads.
/// </summary>
public abstract class SqlRunRegistry : IRunRegistry
{
    /// <summary>The most runs one <see cref="ListAsync"/> returns (larger limits are clamped to it).</summary>
    public const int MaxListLimit = 1000;

    /// <summary>The schema version this code creates and reads (the row count of schema_version when current).</summary>
    public const int SchemaVersion = 1;

    // NaN and infinities are valid metrics; JSON numbers cannot hold them, so they are written as strings.
    private static readonly JsonSerializerOptions MetricsJson = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private const string RunColumns =
        "id AS Id, name AS Name, state AS State, experiment_json AS ExperimentJson, run_dir AS RunDir, created AS Created, " +
        "updated AS Updated, stage AS Stage, step AS Step, max_steps AS MaxSteps, workers AS Workers, error AS Error, resumes AS Resumes";

    private const string InsertRun = """
        INSERT INTO runs (id, name, state, experiment_json, run_dir, created, updated, stage, step, max_steps, workers, error, resumes)
        VALUES (@Id, @Name, @State, @ExperimentJson, @RunDir, @Created, @Updated, @Stage, @Step, @MaxSteps, @Workers, @Error, @Resumes)
        ON CONFLICT (id) DO NOTHING
        """;

    // The stage keeps the position of its first record (seq), so a rerun stage stays where it was in the list.
    // INSERT ... SELECT with ON CONFLICT needs the WHERE clause in SQLite (sqlite.org/lang_upsert.html, "Parsing Ambiguity").
    private const string UpsertStage = """
        INSERT INTO run_stages (run_id, stage, seq, title, reused, seconds, note, metrics_json)
        SELECT @RunId, @Stage, (SELECT COUNT(*) FROM run_stages WHERE run_id = @RunId), @Title, @Reused, @Seconds, @Note, @Metrics
        WHERE EXISTS (SELECT 1 FROM runs WHERE id = @RunId)
        ON CONFLICT (run_id, stage) DO UPDATE SET title = excluded.title, reused = excluded.reused, seconds = excluded.seconds,
            note = excluded.note, metrics_json = excluded.metrics_json
        """;

    private const string InsertArtifact = """
        INSERT INTO run_artifacts (run_id, kind, path)
        SELECT @RunId, @Kind, @Path
        WHERE EXISTS (SELECT 1 FROM runs WHERE id = @RunId)
        ON CONFLICT (run_id, kind, path) DO NOTHING
        """;

    private readonly TimeProvider time;
    private int disposed;

    protected SqlRunRegistry(string description, TimeProvider? time)
    {
        Description = description;
        this.time = time ?? TimeProvider.System;
    }

    /// <summary>Which database this is, for messages and logs: <c>sqlite /runs/registry.db</c>, <c>postgres host:5432/db</c> (never a password).</summary>
    public string Description { get; }

    /// <summary>Column type of a point in time (stored as UTC).</summary>
    protected abstract string TimestampType { get; }

    protected abstract string BooleanType { get; }

    /// <summary>Column type of an IEEE 754 double (8 bytes, so metrics and seconds come back bit for bit).</summary>
    protected abstract string DoubleType { get; }

    /// <summary>Column definition of a generated, increasing primary key.</summary>
    protected abstract string IdentityKey { get; }

    /// <summary>The text to put in place of the password in messages; null when there is none.</summary>
    protected virtual string? Secret => null;

    /// <summary>Opens a new connection (from the driver's pool) for one call; the caller disposes it.</summary>
    protected abstract ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct);

    /// <summary>A UTC time, whole milliseconds, as the parameter value the dialect stores.</summary>
    protected abstract object ToDatabase(DateTimeOffset utc);

    /// <summary>A stored time back (offset zero).</summary>
    protected abstract DateTimeOffset FromDatabase(object value);

    /// <summary>Settings of the database file or session made once before the schema transaction (SQLite: WAL).</summary>
    protected virtual Task PrepareSchemaAsync(DbConnection connection, CancellationToken ct) => Task.CompletedTask;

    /// <summary>Makes hosts that initialize at once take turns inside the schema transaction (PostgreSQL: advisory lock).</summary>
    protected virtual Task LockSchemaAsync(DbConnection connection, DbTransaction transaction, CancellationToken ct) => Task.CompletedTask;

    protected virtual ValueTask DisposeCoreAsync() => ValueTask.CompletedTask;

    /// <summary>The schema, one list of statements per version (version n is element n-1); never edit a released version, add one.</summary>
    private IReadOnlyList<string[]> Migrations() =>
    [
        [
            $"""
            CREATE TABLE IF NOT EXISTS runs (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                state TEXT NOT NULL,
                experiment_json TEXT NOT NULL,
                run_dir TEXT NOT NULL,
                created {TimestampType} NOT NULL,
                updated {TimestampType} NOT NULL,
                stage TEXT NOT NULL DEFAULT '',
                step INTEGER NOT NULL DEFAULT 0,
                max_steps INTEGER NOT NULL DEFAULT 0,
                workers INTEGER NOT NULL DEFAULT 0,
                error TEXT NOT NULL DEFAULT '',
                resumes INTEGER NOT NULL DEFAULT 0)
            """,
            "CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created DESC, id)",
            "CREATE INDEX IF NOT EXISTS runs_by_state ON runs (state)",
            $"""
            CREATE TABLE IF NOT EXISTS run_stages (
                run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                stage TEXT NOT NULL,
                seq BIGINT NOT NULL,
                title TEXT NOT NULL,
                reused {BooleanType} NOT NULL,
                seconds {DoubleType} NOT NULL,
                note TEXT NOT NULL,
                metrics_json TEXT NOT NULL,
                PRIMARY KEY (run_id, stage))
            """,
            $"""
            CREATE TABLE IF NOT EXISTS run_artifacts (
                id {IdentityKey},
                run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                path TEXT NOT NULL,
                UNIQUE (run_id, kind, path))
            """,
        ],
    ];

    public Task InitializeAsync(CancellationToken ct = default)
    {
        const string Operation = "create or upgrade the schema";
        return UseAsync(Operation, async c =>
        {
            await PrepareSchemaAsync(c, ct);
            await using var tx = await c.BeginTransactionAsync(ct);
            await LockSchemaAsync(c, tx, ct);
            await c.ExecuteAsync(Command($"CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied {TimestampType} NOT NULL)", null, tx, ct));
            var current = await c.ExecuteScalarAsync<long?>(Command("SELECT MAX(version) FROM schema_version", null, tx, ct)) ?? 0;
            var migrations = Migrations();
            if (current > migrations.Count)
            {
                throw new RegistryUnavailableException(Description, Operation,
                    $"the database has schema version {current}, newer than this host's {migrations.Count}; upgrade the host");
            }

            for (var version = (int)current + 1; version <= migrations.Count; version++)
            {
                foreach (var statement in migrations[version - 1])
                {
                    await c.ExecuteAsync(Command(statement, null, tx, ct));
                }

                await c.ExecuteAsync(Command("INSERT INTO schema_version (version, applied) VALUES (@version, @applied)",
                    new { version, applied = ToDatabase(Now()) }, tx, ct));
            }

            await tx.CommitAsync(ct);
        }, ct);
    }

    /// <summary>The versions schema_version records, lowest first (one per applied migration).</summary>
    internal Task<IReadOnlyList<long>> SchemaVersionsAsync(CancellationToken ct = default) =>
        UseAsync("read the schema version", async c =>
            (IReadOnlyList<long>)(await c.QueryAsync<long>(Command("SELECT version FROM schema_version ORDER BY version", null, null, ct))).ToList(), ct);

    /// <exception cref="InvalidOperationException">A run with the same id exists (the message names the id).</exception>
    public Task CreateAsync(RunRecord run, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentException.ThrowIfNullOrEmpty(run.Id);
        var created = Truncate(run.Created);
        var row = new
        {
            run.Id,
            Name = run.Name ?? "",
            State = run.State.ToString(),
            ExperimentJson = run.ExperimentJson ?? "",
            RunDir = run.RunDir ?? "",
            Created = ToDatabase(created),
            Updated = ToDatabase(run.Updated == default ? created : Truncate(run.Updated)),
            Stage = run.Stage ?? "",
            run.Step,
            run.MaxSteps,
            run.Workers,
            Error = run.Error ?? "",
            run.Resumes,
        };
        return UseAsync($"create run {run.Id}", async c =>
        {
            if (await c.ExecuteAsync(Command(InsertRun, row, null, ct)) == 0)
            {
                throw new InvalidOperationException($"run registry ({Description}): a run with id '{run.Id}' already exists");
            }
        }, ct);
    }

    public Task<RunRecord?> GetAsync(string id, CancellationToken ct = default) =>
        UseAsync($"read run {id}", async c =>
        {
            var row = await c.QuerySingleOrDefaultAsync<RunRow>(Command($"SELECT {RunColumns} FROM runs WHERE id = @id", new { id }, null, ct));
            return row is null ? null : ToRecord(row);
        }, ct);

    /// <summary>Runs newest first (created, then id); only those in <paramref name="states"/> when it has any; <paramref name="limit"/> clamped to 1..<see cref="MaxListLimit"/>.</summary>
    public Task<IReadOnlyList<RunRecord>> ListAsync(IReadOnlyCollection<RunLifecycle>? states = null, int limit = 100, CancellationToken ct = default)
    {
        var parameters = new DynamicParameters();
        parameters.Add("limit", Math.Clamp(limit, 1, MaxListLimit));
        var filter = "";
        if (states is { Count: > 0 })
        {
            // one parameter per state: Dapper would send a list as an array to Npgsql but expand it for SQLite
            var names = new List<string>();
            foreach (var state in states.Distinct())
            {
                names.Add("@s" + names.Count);
                parameters.Add("s" + (names.Count - 1), state.ToString());
            }

            filter = $"WHERE state IN ({string.Join(", ", names)})";
        }

        return UseAsync("list runs", async c =>
        {
            var rows = await c.QueryAsync<RunRow>(Command($"SELECT {RunColumns} FROM runs {filter} ORDER BY created DESC, id LIMIT @limit", parameters, null, ct));
            return (IReadOnlyList<RunRecord>)rows.Select(ToRecord).ToList();
        }, ct);
    }

    public Task<bool> SetStateAsync(string id, RunLifecycle state, string error = "", CancellationToken ct = default) =>
        UseAsync($"set the state of run {id}", async c =>
            await c.ExecuteAsync(Command("UPDATE runs SET state = @state, error = @error, updated = @now WHERE id = @id",
                new { id, state = state.ToString(), error = error ?? "", now = ToDatabase(Now()) }, null, ct)) > 0, ct);

    /// <exception cref="InvalidOperationException">No such run.</exception>
    public Task SetProgressAsync(string id, string stage, int step, int maxSteps, int workers, CancellationToken ct = default) =>
        UpdateRunAsync($"set the progress of run {id}", id,
            "UPDATE runs SET stage = @stage, step = @step, max_steps = @maxSteps, workers = @workers, updated = @now WHERE id = @id",
            new { id, stage = stage ?? "", step, maxSteps, workers, now = ToDatabase(Now()) }, ct);

    /// <exception cref="InvalidOperationException">No such run.</exception>
    public Task AddResumeAsync(string id, CancellationToken ct = default) =>
        UpdateRunAsync($"count a resume of run {id}", id, "UPDATE runs SET resumes = resumes + 1, updated = @now WHERE id = @id",
            new { id, now = ToDatabase(Now()) }, ct);

    /// <exception cref="InvalidOperationException">No such run.</exception>
    public Task SetStageAsync(string id, StageRecord stage, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(stage);
        var row = new
        {
            RunId = id,
            Stage = stage.Stage ?? "",
            Title = stage.Title ?? "",
            stage.Reused,
            stage.Seconds,
            Note = stage.Note ?? "",
            Metrics = JsonSerializer.Serialize(stage.Metrics ?? new Dictionary<string, double>(), MetricsJson),
        };
        return UpdateRunAsync($"record stage {stage.Stage} of run {id}", id, UpsertStage, row, ct);
    }

    public Task<IReadOnlyList<StageRecord>> StagesAsync(string id, CancellationToken ct = default) =>
        UseAsync($"read the stages of run {id}", async c =>
        {
            var rows = await c.QueryAsync<StageRow>(Command(
                "SELECT stage AS Stage, title AS Title, reused AS Reused, seconds AS Seconds, note AS Note, metrics_json AS Metrics " +
                "FROM run_stages WHERE run_id = @id ORDER BY seq, stage", new { id }, null, ct));
            return (IReadOnlyList<StageRecord>)rows.Select(r => new StageRecord(r.Stage, r.Title, r.Reused, r.Seconds, r.Note,
                JsonSerializer.Deserialize<Dictionary<string, double>>(r.Metrics, MetricsJson) ?? [])).ToList();
        }, ct);

    /// <exception cref="InvalidOperationException">No such run.</exception>
    public Task AddArtifactAsync(string id, ArtifactRecord artifact, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(artifact);
        return UpdateRunAsync($"record an artifact of run {id}", id, InsertArtifact,
            new { RunId = id, Kind = artifact.Kind ?? "", Path = artifact.Path ?? "" }, ct, alreadyThereIsFine: true);
    }

    public Task<IReadOnlyList<ArtifactRecord>> ArtifactsAsync(string id, CancellationToken ct = default) =>
        UseAsync($"read the artifacts of run {id}", async c =>
        {
            var rows = await c.QueryAsync<ArtifactRow>(Command("SELECT kind AS Kind, path AS Path FROM run_artifacts WHERE run_id = @id ORDER BY id",
                new { id }, null, ct));
            return (IReadOnlyList<ArtifactRecord>)rows.Select(r => new ArtifactRecord(r.Kind, r.Path)).ToList();
        }, ct);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 0)
        {
            await DisposeCoreAsync();
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>A time as the registry keeps it: UTC, whole milliseconds (the finest both SQLite's and PostgreSQL's columns hold alike).</summary>
    public static DateTimeOffset Truncate(DateTimeOffset t) => DateTimeOffset.FromUnixTimeMilliseconds(t.ToUnixTimeMilliseconds());

    private DateTimeOffset Now() => Truncate(time.GetUtcNow());

    private static CommandDefinition Command(string sql, object? parameters, DbTransaction? tx, CancellationToken ct) =>
        new(sql, parameters, tx, cancellationToken: ct);

    /// <summary>
    /// Runs a statement about one run; when it changes no row, the run is missing (an error) or, for inserts that keep
    /// what is there (<paramref name="alreadyThereIsFine"/>), the row was already recorded.
    /// </summary>
    private Task UpdateRunAsync(string operation, string id, string sql, object parameters, CancellationToken ct, bool alreadyThereIsFine = false) =>
        UseAsync(operation, async c =>
        {
            if (await c.ExecuteAsync(Command(sql, parameters, null, ct)) > 0)
            {
                return;
            }

            if (alreadyThereIsFine &&
                await c.ExecuteScalarAsync<long>(Command("SELECT COUNT(*) FROM runs WHERE id = @id", new { id }, null, ct)) > 0)
            {
                return;
            }

            throw new InvalidOperationException($"run registry ({Description}): no run '{id}'");
        }, ct);

    private Task UseAsync(string operation, Func<DbConnection, Task> body, CancellationToken ct) =>
        UseAsync(operation, async c =>
        {
            await body(c);
            return true;
        }, ct);

    /// <summary>Opens a connection for one call and turns the driver's errors into <see cref="RegistryUnavailableException"/>.</summary>
    private async Task<T> UseAsync<T>(string operation, Func<DbConnection, Task<T>> body, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        try
        {
            await using var connection = await OpenConnectionAsync(ct);
            return await body(connection);
        }
        catch (DbException e)
        {
            throw new RegistryUnavailableException(Description, operation, Reason(e), e);
        }
    }

    /// <summary>The driver's message with those of its causes (e.g. the socket error under "Failed to connect"), password removed.</summary>
    private string Reason(Exception e)
    {
        var text = e.Message;
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (!text.Contains(inner.Message, StringComparison.Ordinal))
            {
                text += ": " + inner.Message;
            }
        }

        // Drivers do not put passwords in messages; this is the second line of defence. Very short passwords would
        // turn every message into asterisks and are left alone.
        var secret = Secret;
        return secret is { Length: >= 4 } ? text.Replace(secret, "***", StringComparison.Ordinal) : text;
    }

    private RunRecord ToRecord(RunRow r) => new()
    {
        Id = r.Id,
        Name = r.Name,
        State = Enum.Parse<RunLifecycle>(r.State),
        ExperimentJson = r.ExperimentJson,
        RunDir = r.RunDir,
        Created = FromDatabase(r.Created),
        Updated = FromDatabase(r.Updated),
        Stage = r.Stage,
        Step = checked((int)r.Step),
        MaxSteps = checked((int)r.MaxSteps),
        Workers = checked((int)r.Workers),
        Error = r.Error,
        Resumes = checked((int)r.Resumes),
    };

    // Rows as Dapper fills them; integers are long because SQLite returns every INTEGER as a 64-bit value.
    private sealed class RunRow
    {
        public string Id { get; set; } = "";
        public string Name { get; set; } = "";
        public string State { get; set; } = "";
        public string ExperimentJson { get; set; } = "";
        public string RunDir { get; set; } = "";
        public object Created { get; set; } = 0L;
        public object Updated { get; set; } = 0L;
        public string Stage { get; set; } = "";
        public long Step { get; set; }
        public long MaxSteps { get; set; }
        public long Workers { get; set; }
        public string Error { get; set; } = "";
        public long Resumes { get; set; }
    }

    private sealed class StageRow
    {
        public string Stage { get; set; } = "";
        public string Title { get; set; } = "";
        public bool Reused { get; set; }
        public double Seconds { get; set; }
        public string Note { get; set; } = "";
        public string Metrics { get; set; } = "{}";
    }

    private sealed class ArtifactRow
    {
        public string Kind { get; set; } = "";
        public string Path { get; set; } = "";
    }
}
