using System.CommandLine;
using Akka.Actor;
using EcsNet.Cluster;
using EcsNet.Cluster.Hosting;
using EcsNet.Data;
using EcsNet.Host;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet node`: one Akka.NET cluster node (EcsNet.Host's composition) that runs until SIGTERM or Ctrl-C, then
/// leaves the cluster gracefully. Prints <see cref="StartedPrefix"/> with its address once it listens.
/// </summary>
public static class NodeCommand
{
    public const string Name = "node";
    public const string StartedPrefix = "node started: ";

    public static Command Build(CliIo io)
    {
        var roles = new Option<string>("--roles")
        {
            Description = "Comma-separated roles of this node: coordinator, worker, preprocess (default: all three). " +
                          "coordinator: the training coordinator singleton (runs, the gRPC rendezvous of each training, the pipeline's " +
                          "inference steps); worker: one worker actor per device (--device / --workers); preprocess: the training " +
                          "samples and the per-image jobs of the crf, aff (la/ha maps) and rw stages (no LibTorch).",
            DefaultValueFactory = _ => string.Join(",", ClusterRoles.All),
        };
        var seeds = new Option<string[]>("--seed")
        {
            Description = "Seed node to join, e.g. akka.tcp://ecsnet@10.0.0.5:4053 (repeatable). None: this node starts a new cluster.",
            AllowMultipleArgumentsPerToken = true,
        };
        var hostname = new Option<string?>("--hostname") { Description = "Address to listen on and be reached at (default 127.0.0.1)." };
        var port = new Option<int?>("--port") { Description = "Port to listen on (default 0: any free port; a seed needs a fixed one)." };
        var config = new Option<string?>("--config")
        {
            Description = $"JSON settings file, appsettings shape: {{\"EcsNet\": {{\"Node\": {{...}}, \"Training\": {{...}}}}}} with the keys of " +
                          $"{nameof(EcsNetNodeOptions)} (failure detector, job slots and timeouts, shutdown timeouts) and {nameof(EcsNetTrainingOptions)} " +
                          "(devices, threads, sample and worker timeouts). Options given here win over the file.",
        };
        var devices = new Option<string[]>("--device")
        {
            Description = "A worker node's devices, one worker actor each: cpu, cuda or cuda:N (repeatable; the CUDA build for GPUs). " +
                          "Default: --workers CPU workers.",
            AllowMultipleArgumentsPerToken = true,
        };
        var workers = new Option<int?>("--workers") { Description = "CPU worker actors of a worker node when no --device is given (default 1)." };
        var health = new Option<string>("--health-url")
        {
            Description = $"Where the health endpoints ({NodeHost.LivePath}, {NodeHost.ReadyPath}) listen (port 0: any free port).",
            DefaultValueFactory = _ => "http://127.0.0.1:0",
        };
        var command = new Command(Name, "Run a cluster node until SIGTERM or Ctrl-C, then leave the cluster gracefully (running jobs finish, " +
                                        "shards are handed off).")
        {
            roles, seeds, hostname, port, devices, workers, config, health,
        };
        command.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var roleList = ClusterRoles.Parse(parse.GetValue(roles)!, "--roles");
            if (roleList.Length == 0)
                throw new BadInputException("--roles", "no role given; the roles are " + string.Join(", ", ClusterRoles.All));
            var seedList = (parse.GetValue(seeds) ?? Array.Empty<string>())
                .SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
            foreach (var seed in seedList)
                EcsNetNodeOptions.CheckSeed(seed, "--seed", new EcsNetNodeOptions().SystemName);
            if (parse.GetValue(port) is { } p && p is < 0 or > 65535)
                throw new BadInputException("--port", $"{p} is not a port (0..65535)");
            var deviceList = (parse.GetValue(devices) ?? Array.Empty<string>())
                .SelectMany(d => d.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                .Select(d => EcsNet.Core.Runtime.Devices.Normalize(d, "--device")).ToArray();
            if (parse.GetValue(workers) is { } w && w is < 0 or > 64)
                throw new BadInputException("--workers", $"{w} is outside 0..64");
            var url = parse.GetValue(health)!;
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "http")
                throw new BadInputException("--health-url", $"'{url}' is not an http:// URL");

            await using var app = NodeHost.Build(Array.Empty<string>(), new NodeHostSettings
            {
                ConfigFile = parse.GetValue(config),
                Roles = roleList,
                Seeds = seedList.Length > 0 ? seedList : null,
                Hostname = parse.GetValue(hostname),
                Port = parse.GetValue(port),
                HealthUrl = url,
                ConfigureTraining = t =>
                {
                    if (deviceList.Length > 0) t.Devices = deviceList;
                    if (parse.GetValue(workers) is { } n) t.Workers = n;
                },
            });
            await app.StartAsync(ct);
            var system = app.Services.GetRequiredService<ActorSystem>();
            var cluster = Akka.Cluster.Cluster.Get(system);
            var self = cluster.SelfAddress;
            io.Out.WriteLine($"{StartedPrefix}{self} roles {string.Join(",", roleList)} pid {Environment.ProcessId} health {string.Join(",", app.Urls)}{NodeHost.ReadyPath}");
            io.Out.Flush();
            bool up = false;
            cluster.RegisterOnMemberUp(() =>
            {
                up = true;
                io.Out.WriteLine($"node {self} is up in the cluster ({cluster.State.Members.Count} members)");
                io.Out.Flush();
            });

            await app.WaitForShutdownAsync(ct);
            if (CoordinatedShutdown.Get(system).ShutdownReason is CoordinatedShutdown.ClusterJoinUnsuccessfulReason)
                throw new BadInputException("--seed", $"could not join {string.Join(", ", seedList)} (is a seed node running there?)");
            io.Out.WriteLine(up ? $"node {self} left the cluster" : $"node {self} stopped before it joined");
            return EcsNetCli.ExitOk;
        }));
        return command;
    }
}
