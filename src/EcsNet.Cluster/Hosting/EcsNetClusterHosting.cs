using System.Globalization;
using Akka;
using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Cluster.Hosting.SBR;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Hosting;
using EcsNet.Cluster.Discovery;
using Akka.Remote.Hosting;
using EcsNet.Cluster.Jobs;
using EcsNet.Cluster.Serialization;
using EcsNet.Labels.Jobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace EcsNet.Cluster.Hosting;

/// <summary>
/// Configuration as code for an EcsNet node (Akka.Hosting): <see cref="AddEcsNetCluster"/> is the one call a
/// host makes; the <c>WithEcsNet…</c> steps it composes can also be used one by one (tests, other hosts).
/// Settings without a typed Akka.Hosting option (split-brain resolver timing, the CPU-work dispatcher,
/// coordinated-shutdown phase timeouts) are the only HOCON.
/// </summary>
public static class EcsNetClusterHosting
{
    /// <summary>Id of the dispatcher that runs per-image jobs: its own threads, one per job slot.</summary>
    public const string JobDispatcher = "ecsnet.job-dispatcher";

    /// <summary>
    /// Binds <see cref="EcsNetNodeOptions"/> from <paramref name="configuration"/> (section
    /// <see cref="EcsNetNodeOptions.Section"/>), applies <paramref name="configure"/>, validates, and adds the
    /// actor system (<see cref="WithEcsNetNode"/>, then the training actors: <see cref="EcsNetTrainingHosting.WithEcsNetTraining"/>
    /// with <see cref="EcsNetTrainingOptions"/> from section <see cref="EcsNetTrainingOptions.Section"/>), health checks,
    /// the options and an <see cref="IImageJobRunner"/> that runs jobs on the cluster. <paramref name="configureAkka"/>
    /// adds to the actor system after the EcsNet steps (test settings).
    /// </summary>
    public static IServiceCollection AddEcsNetCluster(this IServiceCollection services, IConfiguration configuration,
        Action<EcsNetNodeOptions>? configure = null, Action<AkkaConfigurationBuilder, IServiceProvider>? configureAkka = null,
        Action<EcsNetTrainingOptions>? configureTraining = null)
    {
        var options = new EcsNetNodeOptions();
        configuration.GetSection(EcsNetNodeOptions.Section).Bind(options);
        configure?.Invoke(options);
        options.Validate();
        services.AddSingleton(options);
        var training = new EcsNetTrainingOptions();
        configuration.GetSection(EcsNetTrainingOptions.Section).Bind(training);
        configureTraining?.Invoke(training);
        training.Validate();
        services.AddSingleton(training);
        if (options.Has(ClusterRoles.Worker))
            services.AddSingleton<INodeShutdownTask, WorkerDrainTask>();
        services.AddHealthChecks();
        services.AddSingleton<IImageJobRunner>(sp => new ShardedImageJobRunner(sp.GetRequiredService<ActorSystem>(), options.RunnerSettings()));
        services.AddAkka(options.SystemName, (akka, sp) =>
        {
            akka.WithEcsNetNode(options, sp);
            akka.WithEcsNetTraining(options, training);
            configureAkka?.Invoke(akka, sp);
        });
        return services;
    }

    /// <summary>Every step below, in order.</summary>
    public static AkkaConfigurationBuilder WithEcsNetNode(this AkkaConfigurationBuilder akka, EcsNetNodeOptions options,
        IServiceProvider? services = null) =>
        akka.WithEcsNetLogging()
            .WithEcsNetRemoting(options)
            .WithEcsNetClustering(options)
            .WithEcsNetSerialization()
            .WithJobDispatcher(options)
            .WithImageJobRegions(options)
            .WithEcsNetShutdown(options, services?.GetServices<INodeShutdownTask>())
            .WithEcsNetHealthChecks();

    /// <summary>Akka's log goes through Microsoft.Extensions.Logging, so the host's logging settings apply to it.</summary>
    public static AkkaConfigurationBuilder WithEcsNetLogging(this AkkaConfigurationBuilder akka) =>
        akka.ConfigureLoggers(loggers =>
        {
            loggers.LogLevel = LogLevel.InfoLevel;
            loggers.ClearLoggers();
            loggers.AddLoggerFactory();
        })
        // the standard-out logger that Akka uses before the logger above starts and after it stops: warnings only,
        // so a command's stdout (tables, JSON) stays its own
        .AddHocon("akka.stdout-loglevel = WARNING", HoconAddMode.Prepend);

    /// <summary>Listens on <see cref="EcsNetNodeOptions.Hostname"/>:<see cref="EcsNetNodeOptions.Port"/>.</summary>
    public static AkkaConfigurationBuilder WithEcsNetRemoting(this AkkaConfigurationBuilder akka, EcsNetNodeOptions options) =>
        akka.WithRemoting(new RemoteOptions
        {
            HostName = options.Hostname,
            Port = options.Port,
            PublicHostName = options.PublicHostname,
        });

    /// <summary>
    /// Roles, seeds, the keep-majority split-brain resolver and the tightened failure detector. With the
    /// defaults a killed node is unreachable after about 2–3 s and removed about <see cref="EcsNetNodeOptions.StableAfter"/>
    /// + 1 s later. Without seeds the node joins itself (if <see cref="EcsNetNodeOptions.JoinSelfWithoutSeeds"/>).
    /// </summary>
    public static AkkaConfigurationBuilder WithEcsNetClustering(this AkkaConfigurationBuilder akka, EcsNetNodeOptions options)
    {
        akka.WithClustering(new ClusterOptions
        {
            Roles = options.EffectiveRoles.ToArray(),
            SeedNodes = options.Seeds,
            AppVersion = options.AppVersion ?? SoftwareVersion,
            SplitBrainResolver = new KeepMajorityOption(),
            FailureDetector = new PhiAccrualFailureDetectorOptions
            {
                HeartbeatInterval = options.HeartbeatInterval,
                AcceptableHeartbeatPause = options.AcceptableHeartbeatPause,
            },
        });
        // No typed options for these (Akka.Cluster.Hosting 1.5): Prepend makes them win over the defaults.
        akka.AddHocon($"""
            akka.cluster.split-brain-resolver.stable-after = {Ms(options.StableAfter)}
            akka.cluster.down-removal-margin = {Ms(options.DownRemovalMargin ?? options.StableAfter)}
            """, HoconAddMode.Prepend);
        if (options.Seeds.Length > 0 && options.SeedJoinTimeout > TimeSpan.Zero)
            akka.AddHocon($"akka.cluster.shutdown-after-unsuccessful-join-seed-nodes = {Ms(options.SeedJoinTimeout)}", HoconAddMode.Prepend);
        if (options.Discovery.Enabled)
            akka.WithEcsNetDiscovery(options);
        else if (options.Seeds.Length == 0 && options.JoinSelfWithoutSeeds)
            akka.AddStartup((system, _) =>
            {
                var cluster = Akka.Cluster.Cluster.Get(system);
                cluster.Join(cluster.SelfAddress);
            });
        return akka;
    }

    /// <summary>
    /// Cluster formation by discovery (<see cref="DiscoveryJoiner"/>): Kubernetes pods by label selector through the
    /// Kubernetes API, or a fixed list of endpoints.
    /// </summary>
    public static AkkaConfigurationBuilder WithEcsNetDiscovery(this AkkaConfigurationBuilder akka, EcsNetNodeOptions options) =>
        akka.AddStartup((system, _) => system.ActorOf(Props.Create(() => new DiscoveryJoiner(options.Discovery, INodeDiscovery.Create(options.Discovery))), "discovery-joiner"));

    /// <summary>
    /// One protobuf serializer (<see cref="ClusterMessageSerializer"/>) bound to every EcsNet message type, and
    /// strict serialization: a type with no binding is refused with an error instead of silently going out as
    /// JSON. Akka's own messages keep their own serializers.
    /// </summary>
    public static AkkaConfigurationBuilder WithEcsNetSerialization(this AkkaConfigurationBuilder akka) =>
        akka.WithCustomSerializer(ClusterMessageSerializer.Name, ClusterMessageSerializer.BoundTypes, system => new ClusterMessageSerializer(system))
            .WithStrictSerialization();

    /// <summary>
    /// The dispatcher for CPU-heavy jobs: a dedicated pool of <see cref="EcsNetNodeOptions.EffectiveJobSlots"/>
    /// threads (Akka.NET docs, "Dispatchers": ForkJoinDispatcher), one message at a time per actor. Blocking the
    /// default dispatcher with seconds-long CRFs would delay the cluster's heartbeats until the node looks dead.
    /// </summary>
    public static AkkaConfigurationBuilder WithJobDispatcher(this AkkaConfigurationBuilder akka, EcsNetNodeOptions options) =>
        akka.AddHocon($$"""
            {{JobDispatcher}} {
              type = ForkJoinDispatcher
              throughput = 1
              dedicated-thread-pool {
                thread-count = {{options.EffectiveJobSlots}}
                threadtype = background
              }
            }
            """, HoconAddMode.Prepend);

    /// <summary>
    /// The three job regions (<see cref="JobRegions"/>): hosted here on a <see cref="ClusterRoles.Preprocess"/> node,
    /// proxies elsewhere. State lives in distributed data (no journal); entities are not remembered — a job is
    /// re-sent by its runner, not restarted by the cluster. Entities passivate themselves when idle, and finish
    /// their running job before a hand-off (<see cref="FinishAndStop"/>).
    /// </summary>
    public static AkkaConfigurationBuilder WithImageJobRegions(this AkkaConfigurationBuilder akka, EcsNetNodeOptions options)
    {
        var extractor = new ImageJobExtractor(options.JobShards);
        if (!options.Has(ClusterRoles.Preprocess))
            return akka.WithShardRegionProxy<CrfLabelRegion>(JobRegions.CrfLabels, ClusterRoles.Preprocess, extractor)
                .WithShardRegionProxy<AffinityMapsRegion>(JobRegions.AffinityMaps, ClusterRoles.Preprocess, extractor)
                .WithShardRegionProxy<PropagationRegion>(JobRegions.Propagation, ClusterRoles.Preprocess, extractor);
        var settings = new ImageJobEntitySettings(JobDispatcher, options.JobEntityIdleTimeout);
        ShardOptions Shards() => new()
        {
            Role = ClusterRoles.Preprocess,
            StateStoreMode = StateStoreMode.DData,
            RememberEntities = false,
            ShouldPassivateIdleEntities = false,
            HandOffStopMessage = FinishAndStop.Instance,
        };
        return akka.WithShardRegion<CrfLabelRegion>(JobRegions.CrfLabels, id => ImageJobEntity.PropsFor(id, settings), extractor, Shards())
            .WithShardRegion<AffinityMapsRegion>(JobRegions.AffinityMaps, id => ImageJobEntity.PropsFor(id, settings), extractor, Shards())
            .WithShardRegion<PropagationRegion>(JobRegions.Propagation, id => ImageJobEntity.PropsFor(id, settings), extractor, Shards());
    }

    /// <summary>
    /// Graceful leave: the host's stop (SIGTERM, Ctrl-C) runs CoordinatedShutdown (Akka.Hosting does), which runs
    /// the <see cref="INodeShutdownTask"/>s in <c>before-cluster-shutdown</c>, hands off this node's shards — each
    /// job entity finishing its running job first — leaves the cluster and stops. The two phases get the
    /// options' timeouts.
    /// </summary>
    public static AkkaConfigurationBuilder WithEcsNetShutdown(this AkkaConfigurationBuilder akka, EcsNetNodeOptions options,
        IEnumerable<INodeShutdownTask>? tasks = null)
    {
        akka.AddHocon($"""
            akka.coordinated-shutdown.phases.before-cluster-shutdown.timeout = {Ms(options.ShutdownTaskTimeout)}
            akka.coordinated-shutdown.phases.cluster-sharding-shutdown-region.timeout = {Ms(options.ShutdownHandOffTimeout)}
            akka.cluster.sharding.handoff-timeout = {Ms(options.ShutdownHandOffTimeout + TimeSpan.FromSeconds(5))}
            """, HoconAddMode.Prepend);
        var list = tasks?.ToList() ?? new List<INodeShutdownTask>();
        if (list.Count == 0)
            return akka;
        return akka.AddStartup((system, _) =>
        {
            var shutdown = CoordinatedShutdown.Get(system);
            foreach (var task in list)
                shutdown.AddTask(CoordinatedShutdown.PhaseBeforeClusterShutdown, task.Name, async () =>
                {
                    using var limit = new CancellationTokenSource(options.ShutdownTaskTimeout);
                    try
                    {
                        await task.RunAsync(system, limit.Token);
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        // one failing task must not keep the node from leaving
                        system.Log.Error(e, "shutdown task {0} failed", task.Name);
                    }
                    return Done.Instance;
                });
        });
    }

    /// <summary>Liveness (the actor system runs) and readiness (this node is an Up cluster member) checks, for
    /// the host's health endpoints.</summary>
    public static AkkaConfigurationBuilder WithEcsNetHealthChecks(this AkkaConfigurationBuilder akka) =>
        akka.WithActorSystemLivenessCheck().WithAkkaClusterReadinessCheck();

    /// <summary>What a <see cref="ShardedImageJobRunner"/> on this node uses.</summary>
    public static ShardedJobRunnerSettings RunnerSettings(this EcsNetNodeOptions options) =>
        new(options.MaxJobsInFlight, options.JobMaxTries, options.JobAcceptTimeout, options.JobTimeout, options.PreprocessNodeWaitTimeout);

    /// <summary>The EcsNet.Cluster assembly's version as major.minor.build (Akka's AppVersion takes three parts).</summary>
    public static string SoftwareVersion => typeof(EcsNetClusterHosting).Assembly.GetName().Version?.ToString(3) ?? "1.0.0";

    private static string Ms(TimeSpan t) => ((long)t.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";
}
