using System.Net;
using Akka.Actor;
using EcsNet.Cluster.Hosting;
using EcsNet.Data;
using EcsNet.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace EcsNet.Host.Tests;

/// <summary>The node composition of ecsnet-host and `ecsnet node`: settings sources and health endpoints.</summary>
public sealed class NodeHostTests
{
    [Fact]
    public async Task ReadinessFollowsClusterMembershipWhileLivenessFollowsTheActorSystem()
    {
        await using var app = NodeHost.Build(Array.Empty<string>(), new NodeHostSettings
        {
            Roles = new[] { "worker" },
            Configure = o => o.JoinSelfWithoutSeeds = false,
        });
        await app.StartAsync();
        var url = app.Urls.Single();
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(url + NodeHost.LivePath)).StatusCode);
        // not a cluster member yet: not ready for traffic
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync(url + NodeHost.ReadyPath)).StatusCode);

        var cluster = Akka.Cluster.Cluster.Get(app.Services.GetRequiredService<ActorSystem>());
        await cluster.JoinAsync(cluster.SelfAddress);
        // Akka.HealthCheck's readiness probe is an actor fed by cluster events: it learns of the join a moment after
        // JoinAsync returns, so ask again until it says ready (a busy machine can take a while)
        var ready = await HttpPolling.GetUntil(http, url + NodeHost.ReadyPath, HttpStatusCode.OK, TimeSpan.FromSeconds(20));
        Assert.True(ready.Status == HttpStatusCode.OK, $"readiness still {ready.Status} ({ready.Body}) 20 s after the node joined itself");
        await app.StopAsync();
    }

    [Fact]
    public async Task ASettingsFileConfiguresTheNodeAndExplicitSettingsWin()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("node.json"), """
            { "EcsNet": { "Node": { "Roles": [ "preprocess" ], "JobSlots": 2, "StableAfter": "00:00:05", "JoinSelfWithoutSeeds": false } } }
            """);
        await using var app = NodeHost.Build(new[] { "--EcsNet:Node:JobEntityIdleTimeout=00:00:07" },
            new NodeHostSettings { ConfigFile = dir.File("node.json"), Hostname = "127.0.0.1", Port = 0 });
        var options = app.Services.GetRequiredService<EcsNetNodeOptions>();
        Assert.Equal(new[] { "preprocess" }, options.EffectiveRoles);
        Assert.Equal((2, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(7)), (options.JobSlots, options.StableAfter, options.JobEntityIdleTimeout));
        await app.StartAsync();
        var system = app.Services.GetRequiredService<ActorSystem>();
        Assert.Equal(TimeSpan.FromSeconds(5), system.Settings.Config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        await app.StopAsync();
    }

    [Fact]
    public void AMissingSettingsFileIsNamed()
    {
        var e = Assert.Throws<BadInputException>(() => NodeHost.Build(Array.Empty<string>(), new NodeHostSettings { ConfigFile = "/nonexistent/node.json" }));
        Assert.Equal("/nonexistent/node.json: node settings file not found", e.Message);
    }
}
