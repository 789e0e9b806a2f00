using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;
using Xunit;

namespace EcsNet.Testing;

/// <summary>
/// A real, throw-away PostgreSQL server for tests (docs/CONTROL.md, "How the tests run PostgreSQL"): Debian's
/// <c>postgresql</c> package's initdb and pg_ctl make a cluster in a temporary folder that listens on a free
/// loopback port (and a socket in the folder), with fsync off; stopped and deleted on dispose. PostgreSQL will not
/// run as root, so under root the folder belongs to the <c>postgres</c> system user and the server runs as that user
/// (runuser). Missing binaries are installed with apt-get when the tests run as root.
/// </summary>
public sealed partial class PostgresServer : IAsyncLifetime
{
    /// <summary>The name of the xunit collection that holds the server: <c>[Collection(PostgresServer.Collection)]</c>.</summary>
    public const string Collection = "postgres server";

    /// <summary>The superuser the cluster is made with.</summary>
    public const string User = "ecsnet";

    private const string SystemUser = "postgres";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private string root = "";
    private string bin = "";
    private bool asSystemUser;
    private bool started;

    /// <summary>The superuser's password (TCP logins use SCRAM; the socket trusts local users).</summary>
    public string Password { get; } = "pg-" + Guid.NewGuid().ToString("N")[..16];

    public string Host => "127.0.0.1";

    public int Port { get; private set; }

    /// <summary>Connection string of the server's own <c>postgres</c> database (a superuser login).</summary>
    public string ConnectionString { get; private set; } = "";

    private string DataDir => Path.Combine(root, "data");

    private string SocketDir => Path.Combine(root, "socket");

    private string LogFile => Path.Combine(root, "server.log");

    /// <summary>Creates an empty database and returns its connection string.</summary>
    /// <param name="name">Lower-case letters, digits and underscores, at most 63 characters.</param>
    public async Task<string> CreateDatabaseAsync(string name)
    {
        if (!DatabaseName().IsMatch(name))
        {
            throw new ArgumentException($"'{name}' is not a plain PostgreSQL database name ([a-z_][a-z0-9_]*, 63 at most)", nameof(name));
        }

        await using (var connection = new NpgsqlConnection(ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(ConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary><c>postgres://</c> URL of a database of this server, with the given password.</summary>
    public string Url(string database, string? password = null) =>
        $"postgres://{User}:{Uri.EscapeDataString(password ?? Password)}@{Host}:{Port}/{database}";

    public async Task InitializeAsync()
    {
        bin = FindBinaries() ?? InstallBinaries();
        asSystemUser = Environment.IsPrivilegedProcess;
        // under root the server user must reach the folder, so it goes to /tmp, not to a private TMPDIR
        var tempRoot = asSystemUser ? "/tmp" : Path.GetTempPath();
        root = Path.Combine(tempRoot, "ecsnet-pg-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            Directory.CreateDirectory(root);
            Directory.CreateDirectory(SocketDir);
            var passwordFile = Path.Combine(root, "password");
            await File.WriteAllTextAsync(passwordFile, Password + "\n");
            if (asSystemUser)
            {
                Check(Exec("chown", ["-R", $"{SystemUser}:{SystemUser}", root], TimeSpan.FromSeconds(30)), "chown");
            }

            Check(ExecServerTool("initdb", ["-D", DataDir, "-U", User, "--pwfile", passwordFile, "-E", "UTF8", "--no-locale",
                "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"], TimeSpan.FromMinutes(2)), "initdb");
            File.Delete(passwordFile);
            await StartAsync();
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (started)
        {
            ExecServerTool("pg_ctl", ["-D", DataDir, "stop", "-m", "immediate", "-w", "-t", "30"], TimeSpan.FromSeconds(60));
            started = false;
        }

        if (root.Length > 0)
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }

        return Task.CompletedTask;
    }

    /// <summary>Starts the server on a free port (another, up to three times, when the port was taken meanwhile) and waits until it answers.</summary>
    private async Task StartAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            Port = FreePorts.Loopback();
            var options = $"-c listen_addresses={Host} -p {Port} -k '{SocketDir}' -c fsync=off -c synchronous_commit=off " +
                "-c full_page_writes=off -c max_connections=100";
            var result = ExecServerTool("pg_ctl", ["-D", DataDir, "-l", LogFile, "-w", "-t", ((int)StartTimeout.TotalSeconds).ToString(),
                "-o", options, "start"], StartTimeout + TimeSpan.FromSeconds(30));
            if (result.Code == 0)
            {
                started = true;
                break;
            }

            var log = LogTail();
            if (attempt < 3 && log.Contains("could not bind", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            throw new InvalidOperationException($"PostgreSQL did not start (pg_ctl exit {result.Code}): {result.Output}\nserver log:\n{log}");
        }

        ConnectionString = new NpgsqlConnectionStringBuilder
        {
            Host = Host,
            Port = Port,
            Username = User,
            Password = Password,
            Database = "postgres",
            Timeout = 5,
        }.ConnectionString;

        // pg_ctl -w already waited for the socket; make sure TCP logins work too, within the same bound
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await using var connection = new NpgsqlConnection(ConnectionString);
                await connection.OpenAsync();
                return;
            }
            catch (NpgsqlException) when (deadline.Elapsed < StartTimeout)
            {
                await Task.Delay(200);
            }
            catch (NpgsqlException e)
            {
                throw new InvalidOperationException($"PostgreSQL on {Host}:{Port} accepts no connections after {StartTimeout.TotalSeconds:0} s: {e.Message}\nserver log:\n{LogTail()}", e);
            }
        }
    }

    private string LogTail()
    {
        try
        {
            var lines = File.ReadAllLines(LogFile);
            return string.Join('\n', lines.TakeLast(30));
        }
        catch (IOException e)
        {
            return "(no log: " + e.Message + ")";
        }
    }

    /// <summary>The newest installed server's bin folder: Debian's /usr/lib/postgresql/VERSION/bin, else initdb on PATH.</summary>
    private static string? FindBinaries()
    {
        const string Debian = "/usr/lib/postgresql";
        if (Directory.Exists(Debian))
        {
            var newest = Directory.GetDirectories(Debian)
                .Where(d => File.Exists(Path.Combine(d, "bin", "initdb")))
                .OrderByDescending(d => decimal.TryParse(Path.GetFileName(d), System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 0)
                .FirstOrDefault();
            if (newest is not null)
            {
                return Path.Combine(newest, "bin");
            }
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")));
    }

    private static string InstallBinaries()
    {
        DebianPackages.Require(() => FindBinaries() is not null, "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)", "postgresql");
        return FindBinaries()!;
    }

    /// <summary>Runs a server program from <see cref="bin"/>, as the postgres system user under root.</summary>
    private (int Code, string Output) ExecServerTool(string tool, IReadOnlyList<string> args, TimeSpan timeout)
    {
        var program = Path.Combine(bin, tool);
        return asSystemUser
            ? Exec("runuser", ["-u", SystemUser, "--", program, .. args], timeout)
            : Exec(program, args, timeout);
    }

    private static void Check((int Code, string Output) result, string what)
    {
        if (result.Code != 0)
        {
            throw new InvalidOperationException($"{what} failed (exit {result.Code}):\n{Tail(result.Output)}");
        }
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : "..." + text[^4000..];

    /// <summary>Runs a program to its end (killed after <paramref name="timeout"/>) and returns its exit code and output.</summary>
    private static (int Code, string Output) Exec(string program, IReadOnlyList<string> args, TimeSpan timeout, IReadOnlyDictionary<string, string>? env = null)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {program}");
        var output = new StringBuilder();
        var gate = new object();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (gate) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (gate) { output.AppendLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (gate)
            {
                return (124, $"{program} ran past {timeout.TotalSeconds:0} s and was stopped\n{output}");
            }
        }

        process.WaitForExit();
        lock (gate)
        {
            return (process.ExitCode, output.ToString());
        }
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex DatabaseName();
}
