using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using EcsNet.Cluster.Hosting;
using EcsNet.Cluster.Messages;
using EcsNet.Labels.Jobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EcsNet.Cluster.Tests;

/// <summary>
/// A cluster node in this process: the same composition as a real node (<see cref="EcsNetClusterHosting.AddEcsNetCluster"/>)
/// on 127.0.0.1 and a free port, not joined until the test says so. Warnings and errors go to the test's output.
/// </summary>
internal sealed class InProcessNode : IAsyncDisposable
{
    private InProcessNode(IHost host, System.Collections.Concurrent.ConcurrentQueue<(DateTime At, string Text)> log)
    {
        Log = log;
        Host = host;
        System = host.Services.GetRequiredService<ActorSystem>();
        Options = host.Services.GetRequiredService<EcsNetNodeOptions>();
    }

    public IHost Host { get; }

    /// <summary>Warnings and errors this node logged, with the time they were logged.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<(DateTime At, string Text)> Log { get; }
    public ActorSystem System { get; }
    public EcsNetNodeOptions Options { get; }
    public Akka.Cluster.Cluster Cluster => Akka.Cluster.Cluster.Get(System);
    public Address Address => Cluster.SelfAddress;
    public IImageJobRunner Runner => Host.Services.GetRequiredService<IImageJobRunner>();

    public static async Task<InProcessNode> StartAsync(ITestOutputHelper? output, string[] roles, Action<EcsNetNodeOptions>? configure = null,
        string? hocon = null, Action<IServiceCollection>? services = null, Action<EcsNetTrainingOptions>? training = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        var log = new System.Collections.Concurrent.ConcurrentQueue<(DateTime, string)>();
        builder.Logging.AddProvider(new TestOutputLogger(output, roles, log));
        services?.Invoke(builder.Services);
        builder.Services.AddEcsNetCluster(new ConfigurationBuilder().Build(), options =>
        {
            options.Roles = roles;
            options.Port = 0;
            options.JoinSelfWithoutSeeds = false;
            configure?.Invoke(options);
        }, (akka, _) =>
        {
            if (hocon is not null)
                akka.AddHocon(hocon, HoconAddMode.Prepend);
        }, training);
        var host = builder.Build();
        await host.StartAsync();
        return new InProcessNode(host, log);
    }

    /// <summary>Starts the nodes and joins them into one cluster (the first joins itself).</summary>
    public static async Task<InProcessNode[]> ClusterAsync(ITestOutputHelper? output, params Spec[] nodes)
    {
        var started = new List<InProcessNode>();
        foreach (var spec in nodes)
            started.Add(await StartAsync(output, spec.Roles, spec.Configure, spec.Hocon, spec.Services, spec.Training));
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        foreach (var node in started)
            await node.Cluster.JoinAsync(started[0].Address, limit.Token);
        return started.ToArray();
    }

    /// <summary>
    /// Waits until the job regions of <paramref name="count"/> nodes are known to the shard coordinator, so that
    /// a run's shards spread over all of them from the start.
    /// </summary>
    public async Task WaitForJobRegionsAsync(int count)
    {
        var region = await ActorRegistry.For(System).GetAsync<EcsNet.Cluster.Jobs.CrfLabelRegion>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var stats = await region.Ask<ClusterShardingStats>(new GetClusterShardingStats(TimeSpan.FromSeconds(3)), TimeSpan.FromSeconds(5));
            if (stats.Regions.Count >= count)
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{stats.Regions.Count} of {count} job regions registered after 60 s");
            await Task.Delay(200);
        }
    }

    /// <summary>
    /// Waits until the training coordinator knows <paramref name="count"/> worker actors: a run starts on the workers
    /// that have said hello and grows as more do, so a test about the first generation's size must not submit before.
    /// </summary>
    public async Task WaitForWorkersAsync(int count)
    {
        var coordinator = await Host.Services.GetRequiredService<IRequiredActor<TrainingCoordinatorKey>>().GetAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var info = await coordinator.Ask<CoordinatorInfo>(new GetCoordinatorInfo(), TimeSpan.FromSeconds(10));
            if (info.Workers >= count)
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"the coordinator knows {info.Workers} of {count} worker actors after 30 s");
            await Task.Delay(50);
        }
    }

    /// <summary>What a node of <see cref="ClusterAsync"/> carries.</summary>
    public sealed record Spec(string[] Roles, Action<EcsNetNodeOptions>? Configure = null, string? Hocon = null, Action<IServiceCollection>? Services = null,
        Action<EcsNetTrainingOptions>? Training = null);

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await Host.StopAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
        }
        Host.Dispose();
    }

    /// <summary>Warnings and errors (and cluster membership news) into the test's output, tagged with the node's roles.</summary>
    private sealed class TestOutputLogger(ITestOutputHelper? output, string[] roles, System.Collections.Concurrent.ConcurrentQueue<(DateTime, string)> log)
        : ILoggerProvider, ILogger
    {
        private readonly string tag = string.Join(",", roles);

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var text = formatter(state, exception);
            if (logLevel >= LogLevel.Warning)
                log.Enqueue((DateTime.UtcNow, text));
            if (output is null)
                return;
            if (logLevel < LogLevel.Warning && !text.Contains("Leader is", StringComparison.Ordinal) && !text.Contains("SBR", StringComparison.Ordinal))
                return;
            try
            {
                output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} [{tag}] {logLevel}: {text}");
            }
            catch (InvalidOperationException)
            {
                // the test has finished; late log lines have nowhere to go
            }
        }

        public void Dispose()
        {
        }
    }
}
