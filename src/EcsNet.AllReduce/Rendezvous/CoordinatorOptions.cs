namespace EcsNet.AllReduce.Rendezvous;

/// <summary>Settings of the rendezvous coordinator (docs/METHOD.md §7). Every figure can be set from the CLI.</summary>
public sealed record CoordinatorOptions
{
    /// <summary>Workers to wait for before the first generation forms (the job's world size).</summary>
    public int WorldSize { get; init; } = 1;

    /// <summary>Fewest workers a later generation may have after losses (below it the job waits for joiners).</summary>
    public int MinWorldSize { get; init; } = 1;

    /// <summary>How often workers renew their lease.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A worker whose last heartbeat is older than this is lost (a frozen process keeps its TCP stream open,
    /// so the watch stream alone cannot tell). A process that dies is noticed at once: its watch stream closes.
    /// </summary>
    public TimeSpan LeaseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a barrier waits for the last member before it fails naming the missing ranks.</summary>
    public TimeSpan BarrierTimeout { get; init; } = TimeSpan.FromMinutes(10);

    public void Validate()
    {
        if (WorldSize < 1)
            throw new ArgumentOutOfRangeException(nameof(WorldSize), WorldSize, "world size must be at least 1");
        if (MinWorldSize < 1 || MinWorldSize > WorldSize)
            throw new ArgumentOutOfRangeException(nameof(MinWorldSize), MinWorldSize, $"minimum world size must be in [1, {WorldSize}]");
        if (HeartbeatInterval <= TimeSpan.Zero || LeaseTimeout <= HeartbeatInterval)
            throw new ArgumentOutOfRangeException(nameof(LeaseTimeout), LeaseTimeout, "the lease must be longer than the heartbeat interval");
        if (BarrierTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(BarrierTimeout), BarrierTimeout, "barrier timeout must be positive");
    }
}
