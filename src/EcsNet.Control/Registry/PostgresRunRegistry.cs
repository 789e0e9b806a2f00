using System.Data.Common;
using Dapper;
using Npgsql;

namespace EcsNet.Control.Registry;

/// <summary>
/// The run registry in a PostgreSQL database, for clusters whose control-plane hosts share it. Connections come from
/// one <see cref="NpgsqlDataSource"/> (its pool); times are <c>timestamptz</c>. Hosts that initialize at once take
/// turns on a transaction-level advisory lock (postgresql.org/docs, "Advisory Locks").
/// </summary>
public sealed class PostgresRunRegistry : SqlRunRegistry
{
    /// <summary>The advisory lock key of the schema transaction ("EcsNetRg" in ASCII).</summary>
    public const long SchemaLockKey = 0x4563734E65745267;

    private readonly NpgsqlDataSource dataSource;
    private readonly string? password;

    /// <summary>A registry on the database of an Npgsql connection string (<c>Host=...;Database=...;Username=...</c>).</summary>
    /// <exception cref="ArgumentException">Not a valid Npgsql connection string (<see cref="RunRegistry.Open"/> checks it first).</exception>
    public PostgresRunRegistry(string connectionString, TimeProvider? time = null)
        : this(new NpgsqlConnectionStringBuilder(connectionString), time)
    {
    }

    private PostgresRunRegistry(NpgsqlConnectionStringBuilder settings, TimeProvider? time) : base(Describe(settings), time)
    {
        password = settings.Password;
        if (string.IsNullOrEmpty(settings.ApplicationName))
        {
            settings.ApplicationName = "ecsnet-registry";
        }

        dataSource = NpgsqlDataSource.Create(settings);
    }

    protected override string TimestampType => "timestamptz";

    protected override string BooleanType => "boolean";

    protected override string DoubleType => "double precision";

    protected override string IdentityKey => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY";

    protected override string? Secret => password;

    /// <summary>How a connection string names its database in messages: <c>postgres host:port/database</c>.</summary>
    internal static string Describe(NpgsqlConnectionStringBuilder settings) =>
        $"postgres {settings.Host}:{settings.Port}/{settings.Database ?? settings.Username}";

    protected override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct) =>
        await dataSource.OpenConnectionAsync(ct);

    // Npgsql writes a DateTimeOffset of offset zero as timestamptz and reads timestamptz back as a UTC DateTime
    // (npgsql.org/doc/types/datetime.html).
    protected override object ToDatabase(DateTimeOffset utc) => utc.ToUniversalTime();

    protected override DateTimeOffset FromDatabase(object value) => value switch
    {
        DateTime t => new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)),
        DateTimeOffset t => t.ToUniversalTime(),
        _ => throw new InvalidCastException($"run registry ({Description}): a time column holds {value.GetType().Name}"),
    };

    protected override Task LockSchemaAsync(DbConnection connection, DbTransaction transaction, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(@key)", new { key = SchemaLockKey }, transaction, cancellationToken: ct));

    protected override ValueTask DisposeCoreAsync() => dataSource.DisposeAsync();
}
