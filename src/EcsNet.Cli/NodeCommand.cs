using System.CommandLine;
using Akka.Actor;
using EcsNet.Cluster;
using EcsNet.Control.Hosting;
using EcsNet.Data;
using EcsNet.Host;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Builder;
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
        var node = new NodeCliOptions(portName: "--port");
        var command = new Command(Name, "Run a cluster node until SIGTERM or Ctrl-C, then leave the cluster gracefully (running jobs finish, " +
                                        "shards are handed off).");
        node.AddTo(command);
        command.SetAction(EcsNetCli.Guard(io, (parse, ct) => RunAsync(io, node.Settings(parse), null, ct)));
        return command;
    }

    /// <summary>
    /// Runs a node host until SIGTERM or Ctrl-C: prints <see cref="StartedPrefix"/> with its address (and what
    /// <paramref name="describe"/> adds once it listens), then whether it came up and left.
    /// </summary>
    internal static async Task<int> RunAsync(CliIo io, NodeHostSettings settings, Func<WebApplication, string>? describe, CancellationToken ct)
    {
        var seedList = settings.Seeds ?? Array.Empty<string>();
        await using var app = NodeHost.Build(Array.Empty<string>(), settings);
        await app.StartAsync(ct);
        var system = app.Services.GetRequiredService<ActorSystem>();
        var cluster = Akka.Cluster.Cluster.Get(system);
        var self = cluster.SelfAddress;
        var health = app.Services.GetService<ControlEndpoints>()?.HttpUrl is { Length: > 0 } http ? http : string.Join(",", app.Urls);
        io.Out.WriteLine($"{StartedPrefix}{self} roles {string.Join(",", settings.Roles ?? ClusterRoles.All)} pid {Environment.ProcessId} " +
                         $"health {health}{NodeHost.ReadyPath}");
        if (describe is not null)
            io.Out.WriteLine(describe(app));
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
    }
}
