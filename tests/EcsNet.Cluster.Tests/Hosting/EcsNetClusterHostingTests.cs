using Akka.Actor;
using Akka.Cluster;
using EcsNet.Cluster.Hosting;
using EcsNet.Data;
using EcsNet.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace EcsNet.Cluster.Tests.Hosting;

public sealed class EcsNetClusterHostingTests(ITestOutputHelper output)
{
    [Fact]
    public void OptionsBindFromConfigurationKeys()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["EcsNet:Node:Roles:0"] = "worker",
            ["EcsNet:Node:Roles:1"] = "preprocess",
            ["EcsNet:Node:Seeds:0"] = "akka.tcp://ecsnet@10.0.0.5:4053",
            ["EcsNet:Node:Port"] = "4060",
            ["EcsNet:Node:HeartbeatInterval"] = "00:00:00.250",
            ["EcsNet:Node:JobSlots"] = "3",
            ["EcsNet:Node:JobTimeout"] = "00:05:00",
        }).Build();
        var options = new EcsNetNodeOptions();
        configuration.GetSection(EcsNetNodeOptions.Section).Bind(options);
        options.Validate();
        Assert.Equal(new[] { "worker", "preprocess" }, options.EffectiveRoles);
        Assert.Equal(new[] { "akka.tcp://ecsnet@10.0.0.5:4053" }, options.Seeds);
        Assert.Equal((4060, 3), (options.Port, options.EffectiveJobSlots));
        Assert.Equal(TimeSpan.FromMilliseconds(250), options.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromMinutes(5), options.JobTimeout);
        // nothing set: every role, one job slot per core but one
        Assert.Equal(ClusterRoles.All, new EcsNetNodeOptions().EffectiveRoles);
        Assert.Equal(Math.Max(1, Environment.ProcessorCount - 1), new EcsNetNodeOptions().EffectiveJobSlots);
    }

    [Theory]
    [InlineData("Roles", "EcsNet:Node:Roles: unknown role 'trainer'")]
    [InlineData("Seeds", "EcsNet:Node:Seeds:0: 'ecsnet@host' is not a node address")]
    [InlineData("SeedSystem", "EcsNet:Node:Seeds:0: 'akka.tcp://other@10.0.0.5:4053' names actor system 'other'")]
    [InlineData("Port", "EcsNet:Node:Port: 70000 is not a port")]
    [InlineData("Pause", "EcsNet:Node:AcceptableHeartbeatPause: 00:00:00.1000000 is shorter than the heartbeat interval")]
    [InlineData("Tries", "EcsNet:Node:JobMaxTries: must be ≥ 1, got 0")]
    public void BadOptionsNameTheirKey(string which, string expected)
    {
        var options = new EcsNetNodeOptions();
        switch (which)
        {
            case "Roles": options.Roles = new[] { "trainer" }; break;
            case "Seeds": options.Seeds = new[] { "ecsnet@host" }; break;
            case "SeedSystem": options.Seeds = new[] { "akka.tcp://other@10.0.0.5:4053" }; break;
            case "Port": options.Port = 70000; break;
            case "Pause": options.AcceptableHeartbeatPause = TimeSpan.FromMilliseconds(100); break;
            case "Tries": options.JobMaxTries = 0; break;
        }
        var e = Assert.Throws<BadInputException>(options.Validate);
        Assert.StartsWith(expected, e.Message);
    }

    [Fact]
    public async Task TheNodeRunsWithTheConfiguredFailureDetectorResolverDispatcherAndSerialization()
    {
        await using var node = await InProcessNode.StartAsync(output, new[] { ClusterRoles.Preprocess }, o =>
        {
            o.JobSlots = 3;
            o.StableAfter = TimeSpan.FromSeconds(4);
            o.ShutdownHandOffTimeout = TimeSpan.FromSeconds(12);
        });
        var config = node.System.Settings.Config;
        var cluster = node.Cluster;
        Assert.Equal(new[] { ClusterRoles.Preprocess }, cluster.SelfRoles);
        Assert.Equal(TimeSpan.FromMilliseconds(500), cluster.Settings.FailureDetectorConfig.GetTimeSpan("heartbeat-interval"));
        Assert.Equal(TimeSpan.FromMilliseconds(1500), cluster.Settings.FailureDetectorConfig.GetTimeSpan("acceptable-heartbeat-pause"));
        Assert.Equal("keep-majority", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.Equal(TimeSpan.FromSeconds(4), config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        Assert.Equal(TimeSpan.FromSeconds(4), cluster.DowningProvider.DownRemovalMargin);
        Assert.Equal(3, config.GetInt($"{EcsNetClusterHosting.JobDispatcher}.dedicated-thread-pool.thread-count"));
        var shutdown = CoordinatedShutdown.Get(node.System);
        Assert.Equal(TimeSpan.FromSeconds(12), shutdown.Timeout(CoordinatedShutdown.PhaseClusterShardingShutdownRegion));
        Assert.Equal(TimeSpan.FromSeconds(20), shutdown.Timeout(CoordinatedShutdown.PhaseBeforeClusterShutdown));
        // port 0 became a real port
        Assert.NotEqual(0, node.Address.Port);
    }

    [Fact]
    public async Task ShutdownTasksRunWhenTheHostStopsAndTheNodeLeaves()
    {
        var task = new RecordingShutdownTask();
        var node = await InProcessNode.StartAsync(output, new[] { ClusterRoles.Worker }, services: s => s.AddSingleton<INodeShutdownTask>(task));
        await node.Cluster.JoinAsync(node.Address);
        var system = node.System;
        await node.DisposeAsync();
        Assert.True(task.Ran);
        Assert.True(system.WhenTerminated.IsCompleted);
        Assert.IsType<CoordinatedShutdown.ClrExitReason>(CoordinatedShutdown.Get(system).ShutdownReason);
    }

    [Fact]
    public async Task NodesThatDiscoverEachOtherFormOneClusterWithoutSeeds()
    {
        int a = FreePorts.Loopback(), b = FreePorts.Loopback();
        void Discovered(EcsNetNodeOptions o, int port)
        {
            o.Port = port;
            o.Discovery = new EcsNetDiscoveryOptions
            {
                Method = "config", Endpoints = new[] { $"127.0.0.1:{a}", $"127.0.0.1:{b}" }, RequiredContactPoints = 2,
                StableMargin = TimeSpan.FromSeconds(1), LookupInterval = TimeSpan.FromMilliseconds(300),
            };
        }
        await using var first = await InProcessNode.StartAsync(output, new[] { ClusterRoles.Worker }, o => Discovered(o, b));
        // alone, with two contact points required, it waits instead of starting a cluster of its own
        await Task.Delay(2500);
        Assert.NotEqual(MemberStatus.Up, first.Cluster.SelfMember.Status);
        await using var second = await InProcessNode.StartAsync(output, new[] { ClusterRoles.Preprocess }, o => Discovered(o, a));
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (first.Cluster.State.Members.Count(m => m.Status == MemberStatus.Up) < 2 || second.Cluster.SelfMember.Status != MemberStatus.Up)
            await Task.Delay(200, limit.Token);
        Assert.Equal(new[] { first.Address, second.Address }.OrderBy(x => x.Port), first.Cluster.State.Members.Select(m => m.Address).OrderBy(x => x.Port));
    }

    [Fact]
    public async Task WithKubernetesDiscoveryOutsideAPodANodeDoesNotJoinItself()
    {
        await using var node = await InProcessNode.StartAsync(output, new[] { ClusterRoles.Worker }, o =>
        {
            o.JoinSelfWithoutSeeds = true;
            o.Discovery = new EcsNetDiscoveryOptions
            {
                Method = "kubernetes", PodLabelSelector = "app.kubernetes.io/name=ecsnet,app.kubernetes.io/instance=test", Namespace = "ecsnet",
            };
        });
        // not in a pod (no service account, no API server): the lookups fail, once logged, and the node does not form a cluster of its own
        await Task.Delay(2000);
        Assert.NotEqual(MemberStatus.Up, node.Cluster.SelfMember.Status);

        var both = new EcsNetNodeOptions { Seeds = new[] { "akka.tcp://ecsnet@10.0.0.5:4053" }, Discovery = { Method = "kubernetes" } };
        Assert.StartsWith("EcsNet:Node:Seeds: give seeds or discovery", Assert.Throws<BadInputException>(both.Validate).Message);
        var dns = new EcsNetNodeOptions { Discovery = { Method = "dns" } };
        Assert.StartsWith("EcsNet:Node:Discovery:Method: 'dns' is not a discovery method", Assert.Throws<BadInputException>(dns.Validate).Message);
        var empty = new EcsNetNodeOptions { Discovery = { Method = "config" } };
        Assert.StartsWith("EcsNet:Node:Discovery:Endpoints: no endpoints", Assert.Throws<BadInputException>(empty.Validate).Message);
    }

    [Fact]
    public async Task WithoutSeedsANodeJoinsItself()
    {
        await using var node = await InProcessNode.StartAsync(output, new[] { ClusterRoles.Worker }, o => o.JoinSelfWithoutSeeds = true);
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (node.Cluster.SelfMember.Status != MemberStatus.Up)
            await Task.Delay(100, limit.Token);
        Assert.Single(node.Cluster.State.Members);
    }
}
