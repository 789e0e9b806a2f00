using Akka.Actor;
using EcsNet.Data;

namespace EcsNet.Cluster.Hosting;

/// <summary>
/// Everything that shapes one EcsNet node, bound from configuration section <see cref="Section"/>
/// (appsettings.json, environment variables such as <c>EcsNet__Node__Port=4053</c>, command-line
/// <c>--EcsNet:Node:Port=4053</c>) and then from the <c>ecsnet node</c> options. Every figure has a default that
/// works for a single machine; the failure-detection figures are tuned so that a killed node is removed from
/// the cluster in well under 10 s (measured: tests/EcsNet.Cluster.Tests).
/// </summary>
public sealed class EcsNetNodeOptions
{
    public const string Section = "EcsNet:Node";

    /// <summary>Actor system name; every node of one cluster uses the same (it is part of each node's address).</summary>
    public string SystemName { get; set; } = "ecsnet";

    /// <summary>This node's roles (<see cref="ClusterRoles"/>). Empty: all of them (the embedded default).</summary>
    public string[] Roles { get; set; } = Array.Empty<string>();

    /// <summary>Address the node listens on and, unless <see cref="PublicHostname"/> is set, tells the others.
    /// Use the same spelling everywhere (127.0.0.1 is not localhost to Akka).</summary>
    public string Hostname { get; set; } = "127.0.0.1";

    /// <summary>Port of the node; 0 takes any free port (fine for every node but a seed, whose port others must know).</summary>
    public int Port { get; set; }

    /// <summary>Address other nodes reach this one at, when it differs from <see cref="Hostname"/> (a container,
    /// a Kubernetes pod's DNS name); null: <see cref="Hostname"/>.</summary>
    public string? PublicHostname { get; set; }

    /// <summary>Seed nodes to join, e.g. <c>akka.tcp://ecsnet@10.0.0.5:4053</c>. None: the node forms a cluster of
    /// its own (or waits to be joined in code when <see cref="JoinSelfWithoutSeeds"/> is off).</summary>
    public string[] Seeds { get; set; } = Array.Empty<string>();

    /// <summary>Without seeds, join itself at start (a one-node cluster others can join). Off: stay out until
    /// code calls <c>Cluster.JoinAsync</c> (tests that join nodes on port 0).</summary>
    public bool JoinSelfWithoutSeeds { get; set; } = true;

    /// <summary>Version of the software this node runs; during a rolling update new shards go to the nodes of the
    /// newest version (Akka.NET docs, "Cluster Sharding", app-version). Null: the EcsNet.Cluster assembly's version,
    /// the same for every EcsNet process whatever executable hosts it (Akka's own default is the entry assembly's
    /// version, which differs between ecsnet, ecsnet-host and a test host, and would send every shard to one of them).</summary>
    public string? AppVersion { get; set; }

    /// <summary>A node that has not joined any seed after this gives up and stops (its host then exits with an
    /// error) instead of waiting forever; zero: keep trying.</summary>
    public TimeSpan SeedJoinTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How often nodes send each other heartbeats (Akka default 1 s).</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Heartbeats may pause this long before a node counts as unreachable (Akka default 3 s). Too short
    /// marks a node that is only busy or in a long GC as unreachable.</summary>
    public TimeSpan AcceptableHeartbeatPause { get; set; } = TimeSpan.FromMilliseconds(1500);

    /// <summary>Split-brain resolver (keep-majority): how long the set of unreachable nodes must stay the same
    /// before the minority is downed (Akka default 20 s). Removal ≈ unreachable + this + about 1 s.</summary>
    public TimeSpan StableAfter { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Delay between a node's removal and its shards (or a singleton) starting elsewhere; null: equal to
    /// <see cref="StableAfter"/>, what the split-brain resolver needs to be safe (Akka.NET docs, "Split Brain Resolver").</summary>
    public TimeSpan? DownRemovalMargin { get; set; }

    /// <summary>Jobs this node runs at once on its CPU-work dispatcher; 0: one per core but one (at least one), so
    /// that a core stays free for heartbeats, remoting and the GC while every job thread is busy.</summary>
    public int JobSlots { get; set; }

    /// <summary>A job entity with nothing to do is passivated (stopped) after this.</summary>
    public TimeSpan JobEntityIdleTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Shards of each job region; about ten times the most preprocess nodes expected (Akka.NET docs,
    /// "Cluster Sharding"). Every node of a cluster must use the same number.</summary>
    public int JobShards { get; set; } = 100;

    /// <summary>Runner: jobs out at once, the rest waiting at the runner.</summary>
    public int MaxJobsInFlight { get; set; } = 256;

    /// <summary>Runner: sends of one job before the run fails naming it.</summary>
    public int JobMaxTries { get; set; } = 3;

    /// <summary>Runner: a send that no node accepts within this is sent again.</summary>
    public TimeSpan JobAcceptTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Runner: an accepted job that is not answered within this (queued behind up to
    /// <see cref="MaxJobsInFlight"/> others on its node, plus its own run) is sent again. A lost node is noticed by
    /// membership long before this.</summary>
    public TimeSpan JobTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Runner: how long a run waits for a first preprocess node to be up before it fails.</summary>
    public TimeSpan PreprocessNodeWaitTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Leaving (SIGTERM): how long the node's job entities may take to finish the jobs they run before
    /// their shards are handed off anyway (the coordinated-shutdown phase cluster-sharding-shutdown-region).</summary>
    public TimeSpan ShutdownHandOffTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Leaving: how long the node's own shutdown tasks (<see cref="INodeShutdownTask"/>, e.g. finish the
    /// training step and checkpoint) may take (the phase before-cluster-shutdown).</summary>
    public TimeSpan ShutdownTaskTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Cluster formation by discovery (Kubernetes) instead of seeds.</summary>
    public EcsNetDiscoveryOptions Discovery { get; set; } = new();

    /// <summary>The roles this node carries (<see cref="Roles"/>, or all of them).</summary>
    public IReadOnlyList<string> EffectiveRoles => Roles.Length == 0 ? ClusterRoles.All : Roles;

    public bool Has(string role) => EffectiveRoles.Contains(role);

    public int EffectiveJobSlots => JobSlots == 0 ? Math.Max(1, Environment.ProcessorCount - 1) : JobSlots;

    /// <summary>Checks every field; a bad one is a <see cref="BadInputException"/> naming its configuration key.</summary>
    public void Validate()
    {
        static BadInputException Bad(string key, string problem) => new($"{Section}:{key}", problem);
        static void Positive(TimeSpan value, string key)
        {
            if (value <= TimeSpan.Zero)
                throw Bad(key, $"must be a positive time span, got {value}");
        }

        if (string.IsNullOrWhiteSpace(SystemName) || !SystemName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            throw Bad(nameof(SystemName), $"'{SystemName}' must be letters, digits, '-' or '_'");
        ClusterRoles.Check(Roles, $"{Section}:{nameof(Roles)}");
        if (string.IsNullOrWhiteSpace(Hostname))
            throw Bad(nameof(Hostname), "is empty");
        if (Port is < 0 or > 65535)
            throw Bad(nameof(Port), $"{Port} is not a port (0..65535; 0 takes a free one)");
        for (int i = 0; i < Seeds.Length; i++)
            CheckSeed(Seeds[i], $"{Section}:{nameof(Seeds)}:{i}", SystemName);
        if (SeedJoinTimeout < TimeSpan.Zero)
            throw Bad(nameof(SeedJoinTimeout), $"must not be negative (zero: keep trying), got {SeedJoinTimeout}");
        Positive(HeartbeatInterval, nameof(HeartbeatInterval));
        if (AcceptableHeartbeatPause < HeartbeatInterval)
            throw Bad(nameof(AcceptableHeartbeatPause), $"{AcceptableHeartbeatPause} is shorter than the heartbeat interval {HeartbeatInterval}");
        Positive(StableAfter, nameof(StableAfter));
        if (DownRemovalMargin is { } margin && margin < TimeSpan.Zero)
            throw Bad(nameof(DownRemovalMargin), $"must not be negative, got {margin}");
        if (JobSlots < 0)
            throw Bad(nameof(JobSlots), $"must be ≥ 0 (0: one per core), got {JobSlots}");
        Positive(JobEntityIdleTimeout, nameof(JobEntityIdleTimeout));
        if (JobShards < 1)
            throw Bad(nameof(JobShards), $"must be ≥ 1, got {JobShards}");
        if (MaxJobsInFlight < 1)
            throw Bad(nameof(MaxJobsInFlight), $"must be ≥ 1, got {MaxJobsInFlight}");
        if (JobMaxTries < 1)
            throw Bad(nameof(JobMaxTries), $"must be ≥ 1, got {JobMaxTries}");
        Positive(JobAcceptTimeout, nameof(JobAcceptTimeout));
        Positive(JobTimeout, nameof(JobTimeout));
        Positive(PreprocessNodeWaitTimeout, nameof(PreprocessNodeWaitTimeout));
        Positive(ShutdownHandOffTimeout, nameof(ShutdownHandOffTimeout));
        Positive(ShutdownTaskTimeout, nameof(ShutdownTaskTimeout));
        Discovery.Validate($"{Section}:{nameof(Discovery)}");
        if (Discovery.Enabled && Seeds.Length > 0)
            throw Bad(nameof(Seeds), "give seeds or discovery, not both");
    }

    /// <summary>Checks one seed address; <paramref name="subject"/> names where it came from.</summary>
    public static void CheckSeed(string seed, string subject, string systemName)
    {
        Address address;
        try
        {
            address = Address.Parse(seed);
        }
        catch (Exception e) when (e is UriFormatException or ArgumentException or FormatException)
        {
            throw new BadInputException(subject, $"'{seed}' is not a node address like akka.tcp://{systemName}@10.0.0.5:4053");
        }
        if (address.Host is null || address.Port is null or 0)
            throw new BadInputException(subject, $"'{seed}' needs a host and a port, like akka.tcp://{systemName}@10.0.0.5:4053");
        if (address.System != systemName)
            throw new BadInputException(subject, $"'{seed}' names actor system '{address.System}', this node's is '{systemName}'");
    }
}
