using System.Text.RegularExpressions;
using EcsNet.Data;
using Npgsql;

namespace EcsNet.Control.Registry;

/// <summary>
/// Opens the run registry a connection string names (docs/CONTROL.md, "The run registry"):
/// <list type="bullet">
/// <item><c>sqlite:PATH</c>, or a path ending in <c>.db</c>, <c>.sqlite</c> or <c>.sqlite3</c>: a SQLite file (its folder is created);</item>
/// <item><c>postgres://user:password@host:port/database?option=value</c> (also <c>postgresql://</c>): PostgreSQL;</item>
/// <item>an Npgsql keyword string, <c>Host=...;Port=...;Database=...;Username=...;Password=...</c>: PostgreSQL.</item>
/// </list>
/// Without one, a host keeps the registry in <see cref="DefaultFor"/> its runs folder.
/// </summary>
public static partial class RunRegistry
{
    /// <summary>The file name of the default SQLite registry in the runs folder.</summary>
    public const string DefaultFileName = "registry.db";

    private const string Subject = "registry";

    private const string Forms =
        "expected sqlite:PATH, a file ending in .db or .sqlite, postgres://user:password@host:port/database, or Host=...;Database=...";

    /// <summary>The connection string of the default registry: the SQLite file <c>registry.db</c> in <paramref name="runsDir"/>.</summary>
    public static string DefaultFor(string runsDir)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(runsDir);
        return "sqlite:" + Path.Combine(Path.GetFullPath(runsDir), DefaultFileName);
    }

    /// <summary>The registry <paramref name="connection"/> names, not yet initialized (call <see cref="IRunRegistry.InitializeAsync"/>, or use <see cref="OpenAsync"/>).</summary>
    /// <exception cref="BadInputException">Subject <c>registry</c>: the string is none of the accepted forms (the message never repeats a password).</exception>
    public static SqlRunRegistry Open(string connection, TimeProvider? time = null)
    {
        var text = connection?.Trim() ?? "";
        if (text.Length == 0)
        {
            throw new BadInputException(Subject, "the connection string is empty; " + Forms);
        }

        if (text.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
        {
            return OpenSqlite(text["sqlite:".Length..], time);
        }

        if (Scheme().Match(text) is { Success: true } scheme)
        {
            var name = scheme.Groups[1].Value.ToLowerInvariant();
            return name is "postgres" or "postgresql"
                ? new PostgresRunRegistry(FromUrl(text).ConnectionString, time)
                : throw new BadInputException(Subject, $"unsupported scheme '{name}://'; " + Forms);
        }

        if (text.Contains('='))
        {
            return new PostgresRunRegistry(FromKeywords(text).ConnectionString, time);
        }

        var extension = Path.GetExtension(text).ToLowerInvariant();
        return extension is ".db" or ".sqlite" or ".sqlite3"
            ? OpenSqlite(text, time)
            : throw new BadInputException(Subject, $"'{text}' is not a connection string; " + Forms);
    }

    /// <summary><see cref="Open"/>, then <see cref="IRunRegistry.InitializeAsync"/> (the registry is disposed when that fails).</summary>
    /// <exception cref="RegistryUnavailableException">The database cannot be reached or its schema not created.</exception>
    public static async Task<SqlRunRegistry> OpenAsync(string connection, TimeProvider? time = null, CancellationToken ct = default)
    {
        var registry = Open(connection, time);
        try
        {
            await registry.InitializeAsync(ct);
            return registry;
        }
        catch
        {
            await registry.DisposeAsync();
            throw;
        }
    }

    private static SqliteRunRegistry OpenSqlite(string path, TimeProvider? time)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new BadInputException(Subject, "sqlite: names no file; write sqlite:PATH");
        }

        try
        {
            return new SqliteRunRegistry(path, time);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new BadInputException(Subject, $"cannot use the SQLite file {path}: {e.Message}", e);
        }
    }

    /// <summary>A <c>postgres://</c> URL as Npgsql settings: user and password (percent-decoded), host, port (5432), database, options.</summary>
    internal static NpgsqlConnectionStringBuilder FromUrl(string url)
    {
        const string Shape = "postgres://user:password@host:port/database";
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new BadInputException(Subject, $"not a valid PostgreSQL URL (host or port unreadable); expected {Shape}");
        }

        var database = Uri.UnescapeDataString(uri.AbsolutePath.Trim('/'));
        if (database.Length == 0 || database.Contains('/'))
        {
            throw new BadInputException(Subject, $"the PostgreSQL URL names no database (or a path); expected {Shape}");
        }

        var settings = new NpgsqlConnectionStringBuilder
        {
            Host = uri.DnsSafeHost,
            Port = uri.IsDefaultPort || uri.Port < 0 ? NpgsqlConnection.DefaultPort : uri.Port,
            Database = database,
        };
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':');
            settings.Username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            if (colon >= 0)
            {
                settings.Password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }
        }

        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=');
            var key = Uri.UnescapeDataString(equals < 0 ? pair : pair[..equals]);
            try
            {
                // keywords are case-insensitive, so libpq's sslmode finds Npgsql's "SSL Mode"
                settings[key] = Uri.UnescapeDataString(equals < 0 ? "" : pair[(equals + 1)..]);
            }
            catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException)
            {
                throw new BadInputException(Subject, $"the PostgreSQL URL option '{key}' is unknown or has a bad value");
            }
        }

        return settings;
    }

    /// <summary>An Npgsql keyword string, checked: it must parse and name a host.</summary>
    internal static NpgsqlConnectionStringBuilder FromKeywords(string text)
    {
        NpgsqlConnectionStringBuilder settings;
        try
        {
            settings = new NpgsqlConnectionStringBuilder(text);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException)
        {
            throw new BadInputException(Subject, $"not a valid PostgreSQL connection string ({WithoutPassword(e.Message, text)}); {Forms}");
        }

        return string.IsNullOrWhiteSpace(settings.Host)
            ? throw new BadInputException(Subject, "the PostgreSQL connection string names no Host; " + Forms)
            : settings;
    }

    /// <summary>A parser's message with the keyword string's password value (if it has one) replaced.</summary>
    private static string WithoutPassword(string message, string text)
    {
        foreach (Match m in PasswordValue().Matches(text))
        {
            var value = m.Groups[1].Value.Trim().Trim('"', '\'');
            if (value.Length > 0)
            {
                message = message.Replace(value, "***", StringComparison.Ordinal);
            }
        }

        return message;
    }

    [GeneratedRegex(@"^([A-Za-z][A-Za-z0-9+.\-]*)://")]
    private static partial Regex Scheme();

    [GeneratedRegex(@"(?i)(?:password|pwd)\s*=\s*(""[^""]*""|'[^']*'|[^;]*)")]
    private static partial Regex PasswordValue();
}
