using System.CommandLine;
using EcsNet.Cluster;
using EcsNet.Cluster.Hosting;
using EcsNet.Control.Hosting;
using EcsNet.Data;
using EcsNet.Host;

namespace EcsNet.Cli;

/// <summary>The options of a cluster node, shared by <c>ecsnet node</c> and <c>ecsnet serve</c>.</summary>
internal sealed class NodeCliOptions
{
    public NodeCliOptions(string portName)
    {
        Port = new Option<int?>(portName) { Description = "Cluster (Akka remoting) port to listen on (default 0: any free port; a seed needs a fixed one)." };
    }

    public Option<string> Roles { get; } = new("--roles")
    {
        Description = "Comma-separated roles of this node: coordinator, worker, preprocess (default: all three). " +
                      "coordinator: the training coordinator singleton (runs, the gRPC rendezvous of each training, the pipeline's " +
                      "inference steps); worker: one worker actor per device (--device / --workers); preprocess: the training " +
                      "samples and the per-image jobs of the crf, aff (la/ha maps) and rw stages (no LibTorch).",
        DefaultValueFactory = _ => string.Join(",", ClusterRoles.All),
    };

    public Option<string[]> Seeds { get; } = new("--seed")
    {
        Description = "Seed node to join, e.g. akka.tcp://ecsnet@10.0.0.5:4053 (repeatable). None: this node starts a new cluster.",
        AllowMultipleArgumentsPerToken = true,
    };

    public Option<string?> Hostname { get; } = new("--hostname") { Description = "Address to listen on and be reached at (default 127.0.0.1)." };

    public Option<int?> Port { get; }

    public Option<string?> Config { get; } = new("--config")
    {
        Description = $"JSON settings file, appsettings shape: {{\"EcsNet\": {{\"Node\": {{...}}, \"Training\": {{...}}, \"Control\": {{...}}}}}} with the keys of " +
                      $"{nameof(EcsNetNodeOptions)} (failure detector, job slots and timeouts, shutdown timeouts), {nameof(EcsNetTrainingOptions)} " +
                      $"(devices, threads, sample and worker timeouts) and {nameof(ControlOptions)} (serve). Options given here win over the file.",
    };

    public Option<string[]> Devices { get; } = new("--device")
    {
        Description = "A worker node's devices, one worker actor each: cpu, cuda or cuda:N (repeatable; the CUDA build for GPUs). " +
                      "Default: --workers CPU workers.",
        AllowMultipleArgumentsPerToken = true,
    };

    public Option<int?> Workers { get; } = new("--workers") { Description = "CPU worker actors of a worker node when no --device is given (default 1)." };

    public Option<string> Health { get; } = new("--health-url")
    {
        Description = $"Where the health endpoints ({NodeHost.LivePath}, {NodeHost.ReadyPath}) listen (port 0: any free port).",
        DefaultValueFactory = _ => "http://127.0.0.1:0",
    };

    public Option<bool> JsonLogs { get; } = new("--log-json") { Description = "Log one JSON object a line on stderr, with the run id and node as fields (for log collectors)." };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Roles, Seeds, Hostname, Port, Devices, Workers, Config, Health, JsonLogs })
            command.Options.Add(o);
    }

    /// <summary>The host settings these options say, each checked (a bad one is named in a one-line error).</summary>
    public NodeHostSettings Settings(ParseResult parse, Action<ControlOptions>? control = null)
    {
        var roleList = ClusterRoles.Parse(parse.GetValue(Roles)!, "--roles");
        if (roleList.Length == 0)
            throw new BadInputException("--roles", "no role given; the roles are " + string.Join(", ", ClusterRoles.All));
        var seedList = (parse.GetValue(Seeds) ?? Array.Empty<string>())
            .SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
        foreach (var seed in seedList)
            EcsNetNodeOptions.CheckSeed(seed, "--seed", new EcsNetNodeOptions().SystemName);
        if (parse.GetValue(Port) is { } p && p is < 0 or > 65535)
            throw new BadInputException(Port.Name, $"{p} is not a port (0..65535)");
        var deviceList = (parse.GetValue(Devices) ?? Array.Empty<string>())
            .SelectMany(d => d.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(d => EcsNet.Core.Runtime.Devices.Normalize(d, "--device")).ToArray();
        if (parse.GetValue(Workers) is { } w && w is < 0 or > 64)
            throw new BadInputException("--workers", $"{w} is outside 0..64");
        var url = parse.GetValue(Health)!;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "http")
            throw new BadInputException("--health-url", $"'{url}' is not an http:// URL");
        return new NodeHostSettings
        {
            ConfigFile = parse.GetValue(Config),
            Roles = roleList,
            Seeds = seedList.Length > 0 ? seedList : null,
            Hostname = parse.GetValue(Hostname),
            Port = parse.GetValue(Port),
            HealthUrl = url,
            ConfigureTraining = t =>
            {
                if (deviceList.Length > 0) t.Devices = deviceList;
                if (parse.GetValue(Workers) is { } n) t.Workers = n;
            },
            Control = control,
            JsonLogs = parse.GetValue(JsonLogs),
        };
    }
}
