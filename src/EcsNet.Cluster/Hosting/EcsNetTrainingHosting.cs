using System.Globalization;
using System.Net;
using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using EcsNet.Cluster.Jobs;
using EcsNet.Cluster.Samples;
using EcsNet.Cluster.Training;

namespace EcsNet.Cluster.Hosting;

/// <summary>Registry key of the training coordinator singleton (or its proxy).</summary>
public sealed class TrainingCoordinatorKey;

/// <summary>The worker actors of a node, for the shutdown task and tests.</summary>
public sealed record TrainingWorkers(IReadOnlyList<IActorRef> Workers);

/// <summary>
/// The training side of a node as configuration: the training coordinator singleton on <c>coordinator</c> nodes
/// (a proxy elsewhere), the sample entities on <c>preprocess</c> nodes (a proxy elsewhere), and one worker actor
/// per device on <c>worker</c> nodes.
/// </summary>
public static class EcsNetTrainingHosting
{
    public const string CoordinatorName = "training-coordinator";

    public static AkkaConfigurationBuilder WithEcsNetTraining(this AkkaConfigurationBuilder akka, EcsNetNodeOptions node,
        EcsNetTrainingOptions training)
    {
        // A training sample crosses nodes as one message (Akka.NET docs, "Akka.Remote Configuration": maximum-frame-size).
        akka.AddHocon($"""
            akka.remote.dot-netty.tcp.maximum-frame-size = {training.MaxFrameBytes.ToString(CultureInfo.InvariantCulture)}b
            akka.remote.dot-netty.tcp.send-buffer-size = {(2 * training.MaxFrameBytes).ToString(CultureInfo.InvariantCulture)}b
            akka.remote.dot-netty.tcp.receive-buffer-size = {(2 * training.MaxFrameBytes).ToString(CultureInfo.InvariantCulture)}b
            """, HoconAddMode.Prepend);

        var extractor = new SampleExtractor(training.SampleShards);
        if (node.Has(ClusterRoles.Preprocess))
            akka.WithShardRegion<SampleRegion>(SampleExtractor.TypeName,
                id => SampleEntity.PropsFor(id, EcsNetClusterHosting.JobDispatcher, training.SampleIdleTimeout), extractor,
                new ShardOptions { Role = ClusterRoles.Preprocess, StateStoreMode = StateStoreMode.DData, RememberEntities = false });
        else
            akka.WithShardRegionProxy<SampleRegion>(SampleExtractor.TypeName, ClusterRoles.Preprocess, extractor);

        var singleton = new ClusterSingletonOptions { Role = ClusterRoles.Coordinator, LogSingletonIdentificationFailure = false };
        if (node.Has(ClusterRoles.Coordinator))
        {
            // the pipeline's per-image jobs go to the cluster's job regions (made here, not taken from DI: the DI runner
            // needs this very actor system, which is being configured)
            akka.WithSingleton<TrainingCoordinatorKey>(CoordinatorName, (system, _, _) => TrainingCoordinator.PropsFor(new CoordinatorSettings(
                BindAddress(node.Hostname), training.RendezvousHost ?? node.PublicHostname ?? node.Hostname, training.WorkerWait,
                training.WorkerExpiry, training.MaxAttempts, new ShardedImageJobRunner(system, node.RunnerSettings()))), singleton);
        }
        else
        {
            akka.WithSingletonProxy<TrainingCoordinatorKey>(CoordinatorName, singleton);
        }

        if (node.Has(ClusterRoles.Worker))
            akka.WithActors((system, registry) =>
            {
                var coordinator = registry.Get<TrainingCoordinatorKey>();
                var samples = new ShardedBatchSources(registry.Get<SampleRegion>(),
                    new SampleSourceSettings(training.SampleDataShards, training.SampleTimeout, training.SampleMaxTries));
                var settings = new WorkerSettings(BindAddress(node.Hostname), training.HelloInterval, training.ThreadsPerWorker, samples);
                var workers = training.WorkerDevices
                    .Select((device, i) => system.ActorOf(TrainingWorker.PropsFor(device, coordinator, settings), $"worker-{i}"))
                    .ToList();
                TrainingWorkersByNode.AddOrUpdate(system, new TrainingWorkers(workers));
            });
        return akka;
    }

    /// <summary>The worker actors of a node's actor system (empty when it has none).</summary>
    public static TrainingWorkers WorkersOf(ActorSystem system) =>
        TrainingWorkersByNode.TryGetValue(system, out var workers) ? workers : new TrainingWorkers(Array.Empty<IActorRef>());

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ActorSystem, TrainingWorkers> TrainingWorkersByNode = new();

    /// <summary>An IP to listen on for a configured host name: itself when it is an address, else every interface.</summary>
    private static IPAddress BindAddress(string hostname) =>
        IPAddress.TryParse(hostname, out var ip) ? ip : hostname == "localhost" ? IPAddress.Loopback : IPAddress.Any;
}

/// <summary>
/// Graceful leave of a worker node (SIGTERM): each worker leaves its training after the step in progress — as root it
/// writes a checkpoint first — and the others go on without it; the task ends when every worker is out.
/// </summary>
public sealed class WorkerDrainTask : INodeShutdownTask
{
    public string Name => "leave-training";

    public async Task RunAsync(ActorSystem system, CancellationToken cancellationToken)
    {
        var drains = new List<Task>();
        foreach (var worker in EcsNetTrainingHosting.WorkersOf(system).Workers)
        {
            var draining = await worker.Ask<TrainingWorker.Draining>(TrainingWorker.LeaveAll.Instance, TimeSpan.FromSeconds(5), cancellationToken);
            drains.Add(draining.Done);
        }
        await Task.WhenAll(drains).WaitAsync(cancellationToken);
    }
}
