using Akka.Actor;
using Akka.Hosting;
using EcsNet.Cluster;
using EcsNet.Cluster.Hosting;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Training;

namespace EcsNet.Host;

/// <summary>
/// The embedded default: a one-node cluster in this process carrying every role — the training coordinator, the
/// sample and job entities, and worker actors — so that a command (or a benchmark) runs through the same actors
/// as a multi-node cluster. It joins itself on a free port of 127.0.0.1; other nodes may join it.
/// </summary>
public sealed class EmbeddedNode : IAsyncDisposable
{
    private readonly WebApplication app;

    private EmbeddedNode(WebApplication app, ActorSystem system, IActorRef coordinator)
    {
        this.app = app;
        System = system;
        Coordinator = coordinator;
    }

    public ActorSystem System { get; }

    /// <summary>The training coordinator singleton (it lives here: this node is the oldest coordinator node).</summary>
    public IActorRef Coordinator { get; }

    /// <summary>Runs per-image jobs on the cluster's preprocess nodes (the sharded runner).</summary>
    public EcsNet.Labels.Jobs.IImageJobRunner Jobs => app.Services.GetRequiredService<EcsNet.Labels.Jobs.IImageJobRunner>();

    /// <summary>This node's cluster address, for nodes that join it (<c>ecsnet node --seed</c>).</summary>
    public Address Address => Akka.Cluster.Cluster.Get(System).SelfAddress;

    /// <param name="workers">Worker actors on <paramref name="device"/> (0: none here, e.g. a seed for worker processes).</param>
    /// <param name="roles">The node's roles (default: all three).</param>
    public static async Task<EmbeddedNode> StartAsync(int workers, string device = "cpu", LogLevel logLevel = LogLevel.Warning,
        IReadOnlyList<string>? roles = null, Action<EcsNetTrainingOptions>? training = null, CancellationToken ct = default)
    {
        var app = NodeHost.Build(Array.Empty<string>(), new NodeHostSettings
        {
            Roles = roles ?? ClusterRoles.All,
            Port = 0,
            LogLevel = logLevel,
            ConfigureTraining = t =>
            {
                t.Devices = Enumerable.Repeat(device, workers).ToArray();
                training?.Invoke(t);
            },
        });
        try
        {
            await app.StartAsync(ct);
            var coordinator = await app.Services.GetRequiredService<IRequiredActor<TrainingCoordinatorKey>>().GetAsync(ct);
            return new EmbeddedNode(app, app.Services.GetRequiredService<ActorSystem>(), coordinator);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>Submits <paramref name="spec"/> and follows it to its end (<see cref="RunClient.RunAsync"/>).</summary>
    public Task<RunStatus> RunAsync(RunSpec spec, Action<RunStatus>? onStatus, CancellationToken ct) =>
        RunClient.RunAsync(System, Coordinator, spec, onStatus, TimeSpan.FromSeconds(30), ct);

    public async ValueTask DisposeAsync()
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await app.StopAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
        }
        await app.DisposeAsync();
    }
}
