using System.Data.Common;
using System.Globalization;
using Dapper;
using Microsoft.Data.Sqlite;

namespace EcsNet.Control.Registry;

/// <summary>
/// The run registry in a SQLite file (the default: <c>registry.db</c> in the runs folder). Write-ahead logging lets
/// readers go on while one call writes; writers wait for each other up to the busy timeout. Times are stored as
/// Unix milliseconds (UTC), booleans as 0/1.
/// </summary>
public sealed class SqliteRunRegistry : SqlRunRegistry
{
    /// <summary>How long a call waits for another connection's write lock before it fails.</summary>
    public static readonly TimeSpan BusyTimeout = TimeSpan.FromSeconds(30);

    private readonly string connectionString;

    /// <summary>A registry in the file at <paramref name="path"/> (created with its folder when missing).</summary>
    public SqliteRunRegistry(string path, TimeProvider? time = null) : base("sqlite " + System.IO.Path.GetFullPath(path), time)
    {
        Path = System.IO.Path.GetFullPath(path);
        var folder = System.IO.Path.GetDirectoryName(Path);
        if (!string.IsNullOrEmpty(folder))
        {
            Directory.CreateDirectory(folder);
        }

        connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            ForeignKeys = true,
            // Microsoft.Data.Sqlite retries busy and locked statements until this (learn.microsoft.com,
            // "Microsoft.Data.Sqlite database errors"); PRAGMA busy_timeout below makes SQLite itself wait as long.
            DefaultTimeout = (int)BusyTimeout.TotalSeconds,
        }.ToString();
    }

    /// <summary>The database file (absolute).</summary>
    public string Path { get; }

    protected override string TimestampType => "INTEGER";

    protected override string BooleanType => "INTEGER";

    protected override string DoubleType => "REAL";

    protected override string IdentityKey => "INTEGER PRIMARY KEY AUTOINCREMENT";

    protected override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            await connection.OpenAsync(ct);
            await connection.ExecuteAsync(new CommandDefinition(
                $"PRAGMA busy_timeout = {(long)BusyTimeout.TotalMilliseconds}", cancellationToken: ct));
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    protected override object ToDatabase(DateTimeOffset utc) => utc.ToUnixTimeMilliseconds();

    protected override DateTimeOffset FromDatabase(object value) =>
        DateTimeOffset.FromUnixTimeMilliseconds(Convert.ToInt64(value, CultureInfo.InvariantCulture));

    // WAL is a property of the file and stays once set (sqlite.org/wal.html); it cannot change inside a transaction.
    protected override Task PrepareSchemaAsync(DbConnection connection, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition("PRAGMA journal_mode = WAL", cancellationToken: ct));

    protected override ValueTask DisposeCoreAsync()
    {
        // close the pooled handles of this file, so that the file can be moved or deleted after the registry
        using var connection = new SqliteConnection(connectionString);
        SqliteConnection.ClearPool(connection);
        return ValueTask.CompletedTask;
    }
}
