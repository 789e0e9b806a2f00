using EcsNet.Control.Registry;
using EcsNet.Testing;
using Npgsql;

namespace EcsNet.Control.Tests.Registry;

/// <summary>The registry contract on SQLite files (one per test, in a folder the registry creates).</summary>
public sealed class SqliteRunRegistryTests : RunRegistryContract
{
    private readonly TempDir dir = new();

    protected override Task<string> CreateStoreAsync() =>
        Task.FromResult("sqlite:" + dir.File(Path.Combine("runs-" + Guid.NewGuid().ToString("N")[..8], RunRegistry.DefaultFileName)));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        dir.Dispose();
    }

    [Fact]
    public async Task The_file_is_in_write_ahead_log_mode()
    {
        await Registry.CreateAsync(new RunRecord { Id = "r", Name = "r", State = RunLifecycle.Queued, ExperimentJson = "{}", RunDir = "r", Created = DateTimeOffset.UnixEpoch });

        var file = ((SqliteRunRegistry)Registry).Path;
        Assert.True(File.Exists(file));
        Assert.True(File.Exists(file + "-wal"));
    }
}

/// <summary>The registry contract on a real PostgreSQL server (one database per test).</summary>
[Collection(PostgresServer.Collection)]
public sealed class PostgresRunRegistryTests(PostgresServer server) : RunRegistryContract
{
    protected override Task<string> CreateStoreAsync() => server.CreateDatabaseAsync("registry_" + Guid.NewGuid().ToString("N")[..12]);

    [Fact]
    public void A_keyword_connection_string_opens_postgres()
    {
        Assert.IsType<PostgresRunRegistry>(Registry);
        Assert.StartsWith($"postgres 127.0.0.1:{server.Port}/registry_", Registry.Description);
    }

    [Fact]
    public async Task A_url_reaches_the_same_database()
    {
        await Registry.CreateAsync(new RunRecord { Id = "r", Name = "r", State = RunLifecycle.Queued, ExperimentJson = "{}", RunDir = "r", Created = DateTimeOffset.UnixEpoch });
        var database = new NpgsqlConnectionStringBuilder(Connection).Database!;

        await using var byUrl = await RunRegistry.OpenAsync(server.Url(database));

        Assert.Equal("r", (await byUrl.GetAsync("r"))!.Id);
    }

    [Fact]
    public async Task A_wrong_password_is_a_clear_error_without_the_password()
    {
        const string Wrong = "not-the-password-7431";
        await using var registry = RunRegistry.Open(server.Url("postgres", Wrong));

        var e = await Assert.ThrowsAsync<RegistryUnavailableException>(() => registry.GetAsync("r-1"));

        Assert.StartsWith($"run registry (postgres 127.0.0.1:{server.Port}/postgres): cannot read run r-1: ", e.Message);
        Assert.Contains("password authentication failed", e.Message);
        Assert.DoesNotContain(Wrong, e.Message);
        Assert.DoesNotContain(server.Password, e.Message);
    }
}
