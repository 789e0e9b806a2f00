using Akka.Hosting;
using EcsNet.Cluster.Hosting;
using EcsNet.Control.Hosting;
using EcsNet.Data;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;

namespace EcsNet.Host;

/// <summary>What <c>ecsnet node</c> (or a test) sets on top of the configuration; null keeps the configured value.</summary>
public sealed record NodeHostSettings
{
    /// <summary>A JSON settings file in appsettings shape (<c>{"EcsNet": {"Node": {...}}}</c>).</summary>
    public string? ConfigFile { get; init; }

    public IReadOnlyList<string>? Roles { get; init; }
    public IReadOnlyList<string>? Seeds { get; init; }
    public string? Hostname { get; init; }
    public int? Port { get; init; }

    /// <summary>Where the health endpoints and /metrics listen; port 0 takes a free port.</summary>
    public string HealthUrl { get; init; } = "http://127.0.0.1:0";

    /// <summary>Further changes to the node options (tests).</summary>
    public Action<EcsNetNodeOptions>? Configure { get; init; }

    /// <summary>Least severe log level written (the embedded cluster of a CLI command keeps to warnings, on stderr).</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>Logs as one JSON object a line (with scopes: run id, node), for log collectors.</summary>
    public bool JsonLogs { get; init; }

    /// <summary>Changes to the training options (workers, devices, timeouts).</summary>
    public Action<EcsNetTrainingOptions>? ConfigureTraining { get; init; }

    /// <summary>
    /// Serve the control API (<c>ecsnet serve</c>): its options from the <c>EcsNet:Control</c> section, then this
    /// change. Null: no control API (a plain node).
    /// </summary>
    public Action<ControlOptions>? Control { get; init; }
}

/// <summary>
/// The node composition shared by the ecsnet-host executable and <c>ecsnet node</c>: an ASP.NET Core host with the
/// EcsNet Akka.NET node, its health endpoints and its Prometheus metrics (<see cref="NodeMetrics"/>). Stopping the host (SIGTERM, Ctrl-C) leaves the cluster
/// gracefully (Akka.Hosting runs CoordinatedShutdown).
/// </summary>
public static class NodeHost
{
    /// <summary>Liveness: the actor system runs.</summary>
    public const string LivePath = "/healthz/live";

    /// <summary>Readiness: this node is an Up member of the cluster.</summary>
    public const string ReadyPath = "/healthz/ready";

    public static WebApplication Build(string[] args, NodeHostSettings settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        if (settings.ConfigFile is { } file)
        {
            if (!File.Exists(file))
                throw new BadInputException(file, "node settings file not found");
            builder.Configuration.AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false);
        }
        if (settings.Control is null)
            builder.WebHost.UseUrls(settings.HealthUrl);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        // logs on stderr (stdout is the command's own output: tables, JSON), at the settings' level whatever the configuration says
        builder.Logging.ClearProviders();
        builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        // structured logs for log shippers: one JSON object a line, with the scopes (run id, node) as fields
        // (AddJsonConsole also makes the JSON formatter the console's)
        if (settings.JsonLogs)
            builder.Logging.AddJsonConsole(json =>
            {
                json.IncludeScopes = true;
                json.UseUtcTimestamp = true;
                json.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        builder.Logging.AddFilter<Microsoft.Extensions.Logging.Console.ConsoleLoggerProvider>(level => level >= settings.LogLevel);
        builder.Services.AddEcsNetCluster(builder.Configuration, options =>
        {
            if (settings.Roles is { } roles) options.Roles = roles.ToArray();
            if (settings.Seeds is { } seeds) options.Seeds = seeds.ToArray();
            if (settings.Hostname is { } host) options.Hostname = host;
            if (settings.Port is { } port) options.Port = port;
            settings.Configure?.Invoke(options);
        }, configureAkka: (akka, _) =>
        {
            // Akka keeps its own level: at shutdown, after the host's loggers are gone, it prints to stdout at it
            if (settings.LogLevel >= LogLevel.Warning)
                akka.ConfigureLoggers(loggers =>
                {
                    loggers.LogLevel = Akka.Event.LogLevel.WarningLevel;
                    loggers.ClearLoggers();
                    loggers.AddLoggerFactory();
                });
        }, configureTraining: settings.ConfigureTraining);
        builder.Services.AddEcsNetMetrics();
        if (settings.Control is { } configureControl)
        {
            // after the node: the control plane's start waits for the actor system's
            var control = builder.Configuration.GetSection(ControlOptions.Section).Get<ControlOptions>() ?? new ControlOptions();
            configureControl(control);
            builder.AddEcsNetControl(control, settings.HealthUrl);
        }
        var app = builder.Build();
        app.MapEcsNetHealthChecks();
        app.MapEcsNetMetrics();
        if (settings.Control is not null)
            app.MapEcsNetControl();
        return app;
    }

    /// <summary>Maps <see cref="LivePath"/> and <see cref="ReadyPath"/> to Akka.Hosting's liveness and readiness checks.</summary>
    public static IEndpointRouteBuilder MapEcsNetHealthChecks(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapHealthChecks(LivePath, new HealthCheckOptions { Predicate = r => r.Tags.Contains("liveness") });
        endpoints.MapHealthChecks(ReadyPath, new HealthCheckOptions { Predicate = r => r.Tags.Contains("ready") });
        return endpoints;
    }
}
