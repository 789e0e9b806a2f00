using System.CommandLine;
using EcsNet.Control.Hosting;
using EcsNet.Data;
using Microsoft.Extensions.DependencyInjection;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet serve`: a node host with the control API — by default the embedded cluster with every role (the
/// training coordinator, worker actors, the job and sample entities), the gRPC control API, the run registry,
/// metrics and reports. docs/CONTROL.md.
/// </summary>
public static class ServeCommand
{
    public const string Name = "serve";
    public const string ControlPrefix = "control api: ";

    public static Command Build(CliIo io)
    {
        var node = new NodeCliOptions(portName: "--cluster-port");
        var port = new Option<int>("--port") { Description = "Port of the gRPC control API (0: any free port).", DefaultValueFactory = _ => 4060 };
        var bind = new Option<string>("--bind") { Description = "Address the control API listens on (0.0.0.0: every interface).", DefaultValueFactory = _ => "127.0.0.1" };
        var tokenFile = new Option<string?>("--token-file") { Description = "File whose first line is the API token (at least 16 characters). Or EcsNet__Control__Token in the environment." };
        var runs = new Option<string>("--runs") { Description = "Folder of the runs (one sub-folder each; storage every node sees).", DefaultValueFactory = _ => "runs" };
        var registry = new Option<string?>("--registry")
        {
            Description = "Run registry: a SQLite file (default: <runs>/registry.db) or PostgreSQL (postgres://user:pass@host:5432/db, or Host=...;Database=...).",
        };
        var tlsCert = new Option<string?>("--tls-cert") { Description = "PEM certificate file: the control API speaks TLS (with --tls-key)." };
        var tlsKey = new Option<string?>("--tls-key") { Description = "PEM private key file of --tls-cert." };
        var noResume = new Option<bool>("--no-resume") { Description = "Leave runs interrupted by the last stop paused instead of going on with them." };
        var command = new Command(Name, "Run a cluster node with the control API (default: every role, an embedded one-process cluster that " +
                                        "other nodes may join) until SIGTERM or Ctrl-C. Clients: ecsnet submit, runs, watch, scale, pause, resume, stop, artifacts, report.")
        {
            port, bind, tokenFile, runs, registry, tlsCert, tlsKey, noResume,
        };
        node.AddTo(command);
        command.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            if (parse.GetValue(port) is < 0 or > 65535)
                throw new BadInputException("--port", $"{parse.GetValue(port)} is not a port (0..65535)");
            var settings = node.Settings(parse, control =>
            {
                control.Port = parse.GetValue(port);
                control.Hostname = parse.GetValue(bind)!;
                if (parse.GetValue(tokenFile) is { } f) control.TokenFile = f;
                control.RunsDir = parse.GetValue(runs)!;
                if (parse.GetValue(registry) is { } r) control.Registry = r;
                if (parse.GetValue(tlsCert) is { } c) control.TlsCertificateFile = c;
                if (parse.GetValue(tlsKey) is { } k) control.TlsKeyFile = k;
                if (parse.GetValue(noResume)) control.ResumeInterrupted = false;
            });
            return NodeCommand.RunAsync(io, settings, app => ControlPrefix + app.Services.GetRequiredService<ControlEndpoints>().ControlUrl, ct);
        }));
        return command;
    }
}
