using EcsNet.AllReduce.Rendezvous;
using EcsNet.Core.Training;
using static EcsNet.AllReduce.Tests.Rendezvous.LocalJob;

namespace EcsNet.AllReduce.Tests.Rendezvous;

/// <summary>
/// The coordinator as a process hosting it sees it: dropping workers by id, events in order, and the members
/// of each generation when workers join, leave or are lost (ranks 0..n-1, survivors in their old order).
/// </summary>
public sealed class CoordinatorHostTests
{
    [Fact]
    public async Task The_host_drops_workers_by_id_with_one_generation_and_its_reason_everywhere()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 4 });
        var events = new List<string>();
        host.RankLost += l => { lock (events) events.Add($"lost {l.Rank} {l.Reason}"); };
        host.GenerationFormed += g => { lock (events) events.Add($"generation {g.Number} of {g.WorldSize}"); };
        var sessions = await StartAsync(host, 4);
        try
        {
            await Task.WhenAll(sessions.Select(s => s.JoinRingAsync(timeout: Bound)));
            Assert.Equal(new[] { 0, 1, 2, 3 }, sessions.Select(s => s.Ring!.Rank));

            // one node with ranks 1 and 3 became unreachable
            Assert.Equal(2, host.DropWorkers(new[] { sessions[1].WorkerId, sessions[3].WorkerId, "w-unknown" }, "node n2 unreachable"));
            Assert.False(host.DropWorker(sessions[1].WorkerId, "again"));

            var survivors = new[] { sessions[0], sessions[2] };
            var rings = await Task.WhenAll(survivors.Select(s => s.JoinRingAsync(timeout: Bound)));
            Assert.All(rings, r => Assert.Equal(2, r.Generation));
            Assert.Equal(new[] { 0, 1 }, rings.Select(r => r.Rank));
            Assert.Equal(survivors.Select(s => s.Peer.Address), rings[0].Members.Select(m => m.Address));

            var generation = survivors[0].Latest!;
            Assert.Equal(new[] { 1, 3 }, generation.Lost.Select(l => l.Rank).OrderBy(r => r));
            Assert.All(generation.Lost, l => Assert.Equal("node n2 unreachable", l.Reason));
            Assert.Equal(new[] { sessions[1].WorkerId, sessions[3].WorkerId }, generation.Lost.Select(l => l.WorkerId).OrderBy(id => id));
            var status = host.Status();
            Assert.Equal(2, status.Current.Number);
            Assert.Equal(2, status.Lost.Count);
            Assert.All(status.Lost, l => Assert.Equal("node n2 unreachable", l.Reason));

            foreach (var (dropped, rank) in new[] { (sessions[1], 1), (sessions[3], 3) })
            {
                var reason = await WaitFor(() => dropped.DroppedReason);
                Assert.Contains($"rank {rank} of generation 1", reason);
                Assert.Contains("node n2 unreachable", reason);
                var e = await Assert.ThrowsAsync<GroupMembershipException>(() => dropped.JoinRingAsync(timeout: Bound));
                Assert.Contains("node n2 unreachable", e.Message);
            }

            lock (events)
                Assert.Equal(new[] { "generation 1 of 4", "lost 1 node n2 unreachable", "lost 3 node n2 unreachable", "generation 2 of 2" }, events);

            var buffers = rings.Select(r => new[] { r.Rank + 1f }).ToArray();
            await Task.WhenAll(rings.Select((r, i) => r.AllReduceAsync(buffers[i]))).WaitAsync(Bound);
            Assert.All(buffers, b => Assert.Equal(3f, b[0]));
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }

    [Fact]
    public async Task A_drop_needs_a_reason()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady);
        var e = Assert.Throws<ArgumentException>(() => host.DropWorker("w1", " "));
        Assert.Contains("reason", e.Message);
    }

    [Fact]
    public async Task Joiners_and_leavers_form_generations_at_once_and_ranks_keep_their_order()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 2 });
        var sessions = new List<RankSession>(await StartAsync(host, 2));
        try
        {
            await Task.WhenAll(sessions.Select(s => s.JoinRingAsync(timeout: Bound)));

            // scale up: a joiner after the first generation forms the next one without waiting for anybody
            sessions.Add(await StartAsync(host));
            var grown = await Task.WhenAll(sessions.Select(s => s.JoinRingAsync(timeout: Bound)));
            Assert.All(grown, r => Assert.Equal(2, r.Generation));
            Assert.Equal(new[] { 0, 1, 2 }, grown.Select(r => r.Rank));
            Assert.Empty(sessions[0].Latest!.Lost);

            // scale down: rank 1 leaves; the others form generation 3 in their old order, and nobody was "lost"
            await sessions[1].LeaveAsync();
            var rest = new[] { sessions[0], sessions[2] };
            var shrunk = await Task.WhenAll(rest.Select(s => s.JoinRingAsync(timeout: Bound)));
            Assert.All(shrunk, r => Assert.Equal(3, r.Generation));
            Assert.Equal(new[] { 0, 1 }, shrunk.Select(r => r.Rank));
            Assert.Equal(rest.Select(s => s.Peer.Address), shrunk[0].Members.Select(m => m.Address));
            Assert.Empty(sessions[0].Latest!.Lost);
            Assert.Empty(host.Status().Lost);
            Assert.Contains("left the job", await WaitFor(() => sessions[1].DroppedReason));

            var buffers = shrunk.Select(r => new[] { 2f * (r.Rank + 1) }).ToArray();
            await Task.WhenAll(shrunk.Select((r, i) => r.AllReduceAsync(buffers[i]))).WaitAsync(Bound);
            Assert.All(buffers, b => Assert.Equal(6f, b[0]));
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }

    [Fact]
    public async Task Below_the_minimum_world_size_the_survivor_is_told_and_a_joiner_restarts_the_job()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 2, MinWorldSize = 2 });
        var sessions = new List<RankSession>(await StartAsync(host, 2));
        try
        {
            await Task.WhenAll(sessions.Select(s => s.JoinRingAsync(timeout: Bound)));
            Assert.True(host.DropWorker(sessions[0].WorkerId, "device lost"));

            // rank 1 learns its generation is over: generation 2 has no members, and says who was lost
            var over = await WaitFor(() => sessions[1].Latest is { Number: 2 } g ? g : null);
            Assert.Equal(0, over.WorldSize);
            Assert.Equal(-1, over.Rank);
            Assert.Equal("device lost", Assert.Single(over.Lost).Reason);
            var timeout = await Assert.ThrowsAsync<TimeoutException>(() => sessions[1].JoinRingAsync(timeout: TimeSpan.FromMilliseconds(300)));
            Assert.Contains("world size 0", timeout.Message);

            // a joiner brings the job back to its minimum: the survivor keeps rank 0
            sessions.Add(await StartAsync(host));
            var rings = await Task.WhenAll(new[] { sessions[1], sessions[2] }.Select(s => s.JoinRingAsync(timeout: Bound)));
            Assert.All(rings, r => Assert.Equal(3, r.Generation));
            Assert.Equal(sessions[1].Peer.Address, rings[0].Members[0].Address);
            Assert.Equal(new[] { 0, 1 }, rings.Select(r => r.Rank));
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }

    [Fact]
    public async Task Each_worker_sees_every_generation_once_and_in_order()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 1 });
        await using var first = await StartAsync(host);
        var seen = new List<long>();
        first.GenerationAnnounced += g => { lock (seen) seen.Add(g.Number); };
        await first.JoinRingAsync(timeout: Bound);

        // joiners registering at once, from several threads: generations 2..6 form back to back
        var joiners = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Task.Run(() => StartAsync(host))));
        try
        {
            await WaitFor(() => first.Latest is { Number: 6 } g ? g : null);
            await Task.Delay(200);
            lock (seen)
                Assert.Equal(new long[] { 2, 3, 4, 5, 6 }, seen.Where(n => n > 1));
            Assert.Equal(6, first.Latest!.WorldSize);
            Assert.Equal(0, first.Latest.Rank);
            // the joiners keep the order in which they registered, whichever thread ran first
            var order = host.Status().Current.Members.Skip(1).Select(m => m.WorkerId).ToArray();
            Assert.Equal(order.OrderBy(id => int.Parse(id[1..], System.Globalization.CultureInfo.InvariantCulture)), order);
        }
        finally
        {
            await DisposeAllAsync(joiners);
        }
    }
}
