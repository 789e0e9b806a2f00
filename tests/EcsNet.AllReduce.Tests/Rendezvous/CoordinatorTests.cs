using EcsNet.AllReduce.Rendezvous;
using EcsNet.AllReduce.Tests.Ring;
using EcsNet.AllReduce.Wire;
using Grpc.Core;
using Grpc.Net.Client;

namespace EcsNet.AllReduce.Tests.Rendezvous;

/// <summary>Rendezvous, generations, barriers and lost-worker detection, all on 127.0.0.1.</summary>
public sealed class CoordinatorTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static readonly CoordinatorOptions Quick = new()
    {
        HeartbeatInterval = TimeSpan.FromMilliseconds(200),
        LeaseTimeout = TimeSpan.FromSeconds(1),
        BarrierTimeout = TimeSpan.FromSeconds(20),
    };

    private static WorkerOptions Worker(CoordinatorHost host, int rank = -1) => new()
    {
        Coordinator = host.Address,
        RequestedRank = rank,
        Ring = LocalRing.Fast with { PeerTimeout = TimeSpan.FromSeconds(2) },
    };

    private static async Task<RankSession[]> StartWorkers(CoordinatorHost host, int count, bool fixedRanks = false)
    {
        var workers = new RankSession[count];
        for (var i = 0; i < count; i++)
            workers[i] = await RankSession.StartAsync(Worker(host, fixedRanks ? i : -1));
        return workers;
    }

    private static async Task DisposeAll(IEnumerable<RankSession> workers)
    {
        foreach (var w in workers)
            await w.DisposeAsync();
    }

    [Fact]
    public async Task Members_carry_their_host_and_ranks_on_one_host_share_memory_while_other_hosts_use_grpc()
    {
        await using var host = await CoordinatorHost.StartAsync(Quick with { WorldSize = 3 });
        var hosts = new[] { "node-a", "node-b", "node-a" };
        var workers = new RankSession[3];
        for (var i = 0; i < 3; i++)
            workers[i] = await RankSession.StartAsync(Worker(host, i) with { Host = hosts[i] });
        try
        {
            var groups = await Task.WhenAll(workers.Select(w => w.JoinRingAsync(timeout: Bound)));
            Assert.Equal(hosts, groups[0].Members.Select(m => m.Host));
            Assert.Contains("2 hosts", groups[1].Plan);
            var buffers = Enumerable.Range(0, 3).Select(r => new float[] { r + 1, 10 * (r + 1) }).ToArray();
            await Task.WhenAll(groups.Select((g, r) => g.AllReduceAsync(buffers[r])));
            Assert.All(buffers, b => Assert.Equal(new float[] { 6, 60 }, b));
        }
        finally
        {
            await DisposeAll(workers);
        }
    }

    [Fact]
    public async Task A_worker_with_another_transport_than_the_job_is_refused_naming_both()
    {
        await using var host = await CoordinatorHost.StartAsync(Quick with { WorldSize = 2 });
        await using var first = await RankSession.StartAsync(Worker(host) with { Ring = LocalRing.Fast with { Transport = EcsNet.AllReduce.Topology.Transport.Grpc } });
        var refused = await Assert.ThrowsAsync<RpcException>(() => RankSession.StartAsync(Worker(host)));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("'auto'", refused.Status.Detail);
        Assert.Contains("'grpc'", refused.Status.Detail);
    }

    [Fact]
    public async Task Workers_get_ranks_a_ring_order_and_a_generation_and_can_all_reduce()
    {
        await using var host = await CoordinatorHost.StartAsync(Quick with { WorldSize = 3 });
        var workers = await StartWorkers(host, 3, fixedRanks: true);
        try
        {
            var rings = await Task.WhenAll(workers.Select(w => w.JoinRingAsync(timeout: Bound)));
            Assert.All(rings, r => Assert.Equal(1, r.Generation));
            Assert.Equal(new[] { 0, 1, 2 }, rings.Select(r => r.Rank));
            Assert.Equal(workers.Select(w => w.Peer.Address), rings[0].Members.Select(m => m.Address));

            var buffers = rings.Select(r => new[] { r.Rank + 1f, 10f * r.Rank }).ToArray();
            await Task.WhenAll(rings.Select((r, i) => r.AllReduceAsync(buffers[i]))).WaitAsync(Bound);
            Assert.All(buffers, b => Assert.Equal(new[] { 6f, 30f }, b));

            await Task.WhenAll(workers.Select(w => w.BarrierAsync(1))).WaitAsync(Bound);
            Assert.Equal(1, host.Status().Current.Number);
        }
        finally
        {
            await DisposeAll(workers);
        }
    }

    [Fact]
    public async Task A_second_worker_claiming_a_held_rank_is_rejected()
    {
        await using var host = await CoordinatorHost.StartAsync(Quick with { WorldSize = 2 });
        await using var first = await RankSession.StartAsync(Worker(host, rank: 0));
        var e = await Assert.ThrowsAsync<RpcException>(() => RankSession.StartAsync(Worker(host, rank: 0)));
        Assert.Equal(StatusCode.AlreadyExists, e.StatusCode);
        Assert.Contains("rank 0 is already held by worker", e.Status.Detail);

        var outside = await Assert.ThrowsAsync<RpcException>(() => RankSession.StartAsync(Worker(host, rank: 5)));
        Assert.Equal(StatusCode.InvalidArgument, outside.StatusCode);
        Assert.Contains("world size is 2", outside.Status.Detail);
    }

    [Fact]
    public async Task A_worker_that_dies_is_reported_lost_and_the_rest_form_a_new_generation()
    {
        await using var host = await CoordinatorHost.StartAsync(Quick with { WorldSize = 3 });
        var lostEvents = new List<LostRank>();
        host.RankLost += lost => { lock (lostEvents) lostEvents.Add(lost); };
        var workers = await StartWorkers(host, 3, fixedRanks: true);
        try
        {
            await Task.WhenAll(workers.Select(w => w.JoinRingAsync(timeout: Bound)));

            // rank 1's process "dies": no Leave, its watch stream and peer server close
            await workers[1].DisposeAsync();

            var survivors = new[] { workers[0], workers[2] };
            var rings = await Task.WhenAll(survivors.Select(w => w.JoinRingAsync(g => g.WorldSize == 2, Bound)));
            Assert.All(rings, r => Assert.Equal(2, r.Generation));
            var generation = survivors[0].Latest!;
            var lost = Assert.Single(generation.Lost);
            Assert.Equal(1, lost.Rank);
            Assert.Equal(workers[1].Peer.Address, lost.Address);
            Assert.Contains("watch stream closed", lost.Reason);

            var status = host.Status();
            Assert.Equal(1, Assert.Single(status.Lost).Rank);
            lock (lostEvents)
                Assert.Equal(1, Assert.Single(lostEvents).Rank);

            // the new generation works
            var buffers = rings.Select(r => new[] { 1f + r.Rank }).ToArray();
            await Task.WhenAll(rings.Select((r, i) => r.AllReduceAsync(buffers[i]))).WaitAsync(Bound);
            Assert.All(buffers, b => Assert.Equal(3f, b[0]));
        }
        finally
        {
            await DisposeAll(new[] { workers[0], workers[2] });
        }
    }

    [Fact]
    public async Task A_frozen_worker_loses_its_lease()
    {
        // a 3 s lease against 200 ms heartbeats: on a busy test machine the live worker's heartbeats can be
        // late by a second, and it must not be the one that loses its lease
        await using var host = await CoordinatorHost.StartAsync(Quick with { WorldSize = 2, LeaseTimeout = TimeSpan.FromSeconds(3) });
        await using var alive = await RankSession.StartAsync(Worker(host));
        // a "frozen" worker: registered, watch stream open, but no heartbeats
        using var channel = GrpcChannel.ForAddress(host.Address);
        var raw = new Coordinator.CoordinatorClient(channel);
        var reply = await raw.RegisterAsync(new RegisterRequest { Address = "http://127.0.0.1:9", RequestedRank = -1 });
        using var watch = raw.Watch(new WatchRequest { WorkerId = reply.WorkerId });

        await alive.JoinRingAsync(g => g.WorldSize == 2, Bound);
        var lost = await WaitFor(() => host.Status().Lost.FirstOrDefault());
        Assert.Equal(reply.WorkerId, lost.WorkerId);
        Assert.Contains("no heartbeat", lost.Reason);

        // the frozen worker, back to life, is told it was dropped
        var gone = await Assert.ThrowsAsync<RpcException>(() => raw.HeartbeatAsync(new HeartbeatRequest { WorkerId = reply.WorkerId }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        Assert.Contains("dropped", gone.Status.Detail);
    }

    [Fact]
    public async Task A_failure_report_drops_the_blamed_rank_and_a_stale_generation_is_refused()
    {
        await using var host = await CoordinatorHost.StartAsync(Quick with { WorldSize = 3, LeaseTimeout = TimeSpan.FromSeconds(20) });
        // rank 2 gives up on rank 1 after 1 s; rank 0 waits longer and so hears of it from rank 2's abort
        var workers = new RankSession[3];
        for (var i = 0; i < 3; i++)
            workers[i] = await RankSession.StartAsync(Worker(host, i) with
            {
                Ring = LocalRing.Fast with { PeerTimeout = TimeSpan.FromSeconds(i == 2 ? 1 : 10) },
            });
        try
        {
            var rings = await Task.WhenAll(workers.Select(w => w.JoinRingAsync(timeout: Bound)));
            // rank 1 stalls: it never calls the collective; the others fail naming it and report it
            var failures = await Task.WhenAll(new[] { 0, 2 }.Select(async r =>
                await Assert.ThrowsAsync<PeerFailedException>(() => rings[r].AllReduceAsync(new float[64]).WaitAsync(Bound))));
            Assert.All(failures, f => Assert.Equal(1, f.Rank));
            await workers[2].ReportFailureAsync(failures[1]);

            var lost = Assert.Single(host.Status().Lost);
            Assert.Equal(1, lost.Rank);
            Assert.Contains("reported by rank 2", lost.Reason);
            Assert.Equal(2, host.Status().Current.Number);

            // rank 0 still in generation 1: its barrier is refused with the current generation named
            var stale = await Assert.ThrowsAsync<RpcException>(() => workers[0].BarrierAsync(7));
            Assert.Equal(StatusCode.FailedPrecondition, stale.StatusCode);
            Assert.Contains("stale generation 1", stale.Status.Detail);
            Assert.Contains("current generation is 2", stale.Status.Detail);

            // the dropped worker learns it is out
            await WaitFor(() => workers[1].DroppedReason);
        }
        finally
        {
            await DisposeAll(workers);
        }
    }

    [Fact]
    public async Task A_barrier_waiting_for_a_lost_rank_fails_instead_of_hanging()
    {
        await using var host = await CoordinatorHost.StartAsync(Quick with { WorldSize = 2 });
        var workers = await StartWorkers(host, 2, fixedRanks: true);
        try
        {
            await Task.WhenAll(workers.Select(w => w.JoinRingAsync(timeout: Bound)));
            var waiting = workers[0].BarrierAsync(3);
            await workers[1].DisposeAsync();
            var e = await Assert.ThrowsAsync<RpcException>(() => waiting.WaitAsync(Bound));
            // Aborted if the barrier was already waiting when rank 1 was lost, FailedPrecondition if it arrived after
            Assert.Contains(e.StatusCode, new[] { StatusCode.Aborted, StatusCode.FailedPrecondition });
            Assert.Contains("rank 1", e.Status.Detail);
        }
        finally
        {
            await workers[0].DisposeAsync();
        }
    }

    [Fact]
    public void Options_and_listen_addresses_are_checked()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new CoordinatorOptions { WorldSize = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new CoordinatorOptions { WorldSize = 2, MinWorldSize = 3 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new CoordinatorOptions { LeaseTimeout = TimeSpan.FromMilliseconds(10) }.Validate());
        Assert.Equal((System.Net.IPAddress.Loopback, 29500), CoordinatorHost.ParseListen("127.0.0.1:29500"));
        Assert.Equal((System.Net.IPAddress.Any, 7000), CoordinatorHost.ParseListen(":7000"));
        Assert.Throws<FormatException>(() => CoordinatorHost.ParseListen("example.org:80"));
    }

    private static async Task<T> WaitFor<T>(Func<T?> probe)
    {
        using var limit = new CancellationTokenSource(Bound);
        while (true)
        {
            if (probe() is { } value)
                return value;
            await Task.Delay(50, limit.Token);
        }
    }
}
