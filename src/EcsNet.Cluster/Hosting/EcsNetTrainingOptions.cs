using EcsNet.Data;

namespace EcsNet.Cluster.Hosting;

/// <summary>
/// The training side of a node, bound from configuration section <see cref="Section"/> (appsettings.json,
/// environment variables such as <c>EcsNet__Training__Devices__0=cuda:0</c>, <c>--EcsNet:Training:Workers=2</c>)
/// and from the <c>ecsnet node</c> options. Defaults suit one machine.
/// </summary>
public sealed class EcsNetTrainingOptions
{
    public const string Section = "EcsNet:Training";

    /// <summary>The devices of this node's worker actors, one worker each (<c>cpu</c>, <c>cuda:0</c>, …). Empty: <see cref="Workers"/> CPU workers.</summary>
    public string[] Devices { get; set; } = Array.Empty<string>();

    /// <summary>CPU workers on a <c>worker</c> node when <see cref="Devices"/> is empty.</summary>
    public int Workers { get; set; } = 1;

    /// <summary>LibTorch intra-op threads while a worker trains; 0: the cores divided among this node's workers.</summary>
    public int Threads { get; set; }

    /// <summary>How often a worker tells the coordinator it exists (a coordinator that moved learns of it within this).</summary>
    public TimeSpan HelloInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>A worker not heard from for this long is no longer offered trainings.</summary>
    public TimeSpan WorkerExpiry { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a training waits for a first free worker before it fails.</summary>
    public TimeSpan WorkerWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Fresh starts of a training from its last checkpoint after every member was lost.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Address workers dial the rendezvous at; null: the node's public host name (or host name).</summary>
    public string? RendezvousHost { get; set; }

    /// <summary>Entities of each training set (each a fixed subset of the images, decoded and cached by its node).</summary>
    public int SampleDataShards { get; set; } = 16;

    /// <summary>Shards of the sample region (Akka.NET docs, "Cluster Sharding": about ten times the most preprocess nodes).</summary>
    public int SampleShards { get; set; } = 100;

    /// <summary>A sample not made within this is asked for again (its node may be gone).</summary>
    public TimeSpan SampleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Asks of one sample before training fails naming the image.</summary>
    public int SampleMaxTries { get; set; } = 3;

    /// <summary>A sample entity with nothing to do is passivated (its cached images freed) after this.</summary>
    public TimeSpan SampleIdleTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Largest Akka message, in bytes: a training sample crosses nodes as one (a 448-px crop is 2.4 MB).</summary>
    public int MaxFrameBytes { get; set; } = 32 << 20;

    /// <summary>The workers' devices: <see cref="Devices"/>, or <see cref="Workers"/> times cpu.</summary>
    public IReadOnlyList<string> WorkerDevices => Devices.Length > 0 ? Devices : Enumerable.Repeat("cpu", Workers).ToArray();

    /// <summary>Checks every field; a bad one is a <see cref="BadInputException"/> naming its configuration key.</summary>
    public void Validate()
    {
        static BadInputException Bad(string key, string problem) => new($"{Section}:{key}", problem);
        for (int i = 0; i < Devices.Length; i++)
            EcsNet.Core.Runtime.Devices.Normalize(Devices[i], $"{Section}:{nameof(Devices)}:{i}");
        if (Workers is < 0 or > 64)
            throw Bad(nameof(Workers), $"{Workers} is outside 0..64");
        if (Threads < 0)
            throw Bad(nameof(Threads), $"must be ≥ 0 (0: cores / workers), got {Threads}");
        foreach (var (value, key) in new[] { (HelloInterval, nameof(HelloInterval)), (WorkerExpiry, nameof(WorkerExpiry)), (WorkerWait, nameof(WorkerWait)),
                     (SampleTimeout, nameof(SampleTimeout)), (SampleIdleTimeout, nameof(SampleIdleTimeout)) })
            if (value <= TimeSpan.Zero)
                throw Bad(key, $"must be a positive time span, got {value}");
        if (WorkerExpiry <= HelloInterval)
            throw Bad(nameof(WorkerExpiry), $"{WorkerExpiry} must be longer than the hello interval {HelloInterval}");
        if (MaxAttempts < 1)
            throw Bad(nameof(MaxAttempts), $"must be ≥ 1, got {MaxAttempts}");
        if (SampleDataShards < 1 || SampleShards < 1 || SampleMaxTries < 1)
            throw Bad(nameof(SampleDataShards), $"sample data shards {SampleDataShards}, shards {SampleShards} and tries {SampleMaxTries} must be ≥ 1");
        if (MaxFrameBytes < 1 << 20)
            throw Bad(nameof(MaxFrameBytes), $"{MaxFrameBytes} is below 1 MiB: a training sample would not fit");
    }

    /// <summary>Threads per worker: <see cref="Threads"/>, or the cores shared by the node's workers.</summary>
    public int ThreadsPerWorker => Threads > 0 ? Threads : Math.Max(1, Environment.ProcessorCount / Math.Max(1, WorkerDevices.Count));
}
