using EcsNet.AllReduce.Rendezvous;
using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.Tests.Ring;

namespace EcsNet.AllReduce.Tests.Rendezvous;

/// <summary>A coordinator and rank sessions in this process, on 127.0.0.1, for the membership tests.</summary>
internal static class LocalJob
{
    /// <summary>Only there so that a bug fails a test instead of hanging it.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Quick heartbeats but a long lease: on a busy test machine a live rank's heartbeats can be late by seconds,
    /// and these tests decide themselves who is lost.
    /// </summary>
    public static readonly CoordinatorOptions Steady = new()
    {
        HeartbeatInterval = TimeSpan.FromMilliseconds(200),
        LeaseTimeout = TimeSpan.FromSeconds(60),
        BarrierTimeout = TimeSpan.FromSeconds(20),
    };

    /// <summary>A peer timeout far longer than any test here: a collective that fails promptly did not wait for it.</summary>
    public static readonly RingOptions Patient = LocalRing.Fast with { PeerTimeout = TimeSpan.FromSeconds(120) };

    public static Task<RankSession> StartAsync(CoordinatorHost host, RingOptions? ring = null) =>
        RankSession.StartAsync(new WorkerOptions { Coordinator = host.Address, Ring = ring ?? Patient });

    public static async Task<RankSession[]> StartAsync(CoordinatorHost host, int count, RingOptions? ring = null)
    {
        var sessions = new RankSession[count];
        for (var i = 0; i < count; i++)
            sessions[i] = await StartAsync(host, ring);
        return sessions;
    }

    public static async Task DisposeAllAsync(IEnumerable<RankSession> sessions)
    {
        foreach (var session in sessions)
            await session.DisposeAsync();
    }

    /// <summary>Polls <paramref name="probe"/> until it gives a value (bounded by <see cref="Bound"/>).</summary>
    public static async Task<T> WaitFor<T>(Func<T?> probe)
    {
        using var limit = new CancellationTokenSource(Bound);
        while (true)
        {
            if (probe() is { } value)
                return value;
            await Task.Delay(20, limit.Token);
        }
    }

    /// <summary>Runs a blocking call on a thread of its own (the training loop's collectives block their thread).</summary>
    public static Task<T> OnThread<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try { done.SetResult(work()); }
            catch (Exception e) { done.SetException(e); }
        }) { IsBackground = true };
        thread.Start();
        return done.Task;
    }
}
