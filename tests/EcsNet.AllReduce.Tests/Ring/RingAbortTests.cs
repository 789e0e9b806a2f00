using System.Diagnostics;
using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.Wire;
using Grpc.Core;

namespace EcsNet.AllReduce.Tests.Ring;

/// <summary>
/// Aborting a ring from outside (the rendezvous lost a member), rings of two generations side by side on the
/// same peer servers, and a successor that leaves the ring between collectives.
/// </summary>
public sealed class RingAbortTests
{
    /// <summary>Only there so that a bug fails the test instead of hanging it.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>Far longer than any test here may take: a collective that fails must not have waited for it.</summary>
    private static readonly RingOptions Patient = LocalRing.Fast with { PeerTimeout = TimeSpan.FromSeconds(120) };

    [Fact]
    public async Task Abort_fails_a_collective_blocked_on_a_silent_peer_at_once_naming_it()
    {
        await using var ring = await LocalRing.StartAsync(3, Patient);
        // rank 2 is "frozen": its streams stay open, but it never takes part in the collective
        var rank0 = ring.Rings[0].AllReduceAsync(new float[5000]);
        var rank1 = ring.Rings[1].AllReduceAsync(new float[5000]);
        await Task.Delay(300);
        Assert.False(rank0.IsCompleted);
        Assert.False(rank1.IsCompleted);

        var clock = Stopwatch.StartNew();
        // only rank 0 is told; rank 1 hears of it through the abort message on the ring
        ring.Rings[0].Abort("rank 2 was lost: frozen in a test", blamedRank: 2);
        var seen0 = await Assert.ThrowsAsync<PeerFailedException>(() => rank0.WaitAsync(Bound));
        var seen1 = await Assert.ThrowsAsync<PeerFailedException>(() => rank1.WaitAsync(Bound));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed.TotalSeconds:0.0} s against a 120 s peer timeout");

        foreach (var seen in new[] { seen0, seen1 })
        {
            Assert.Equal(2, seen.Rank);
            Assert.Equal(ring.Servers[2].Address, seen.Address);
            Assert.Contains("generation 1 aborted", seen.Message);
            Assert.Contains("frozen in a test", seen.Message);
        }
        Assert.Same(seen0, ring.Rings[0].Failure);
        var again = await Assert.ThrowsAsync<PeerFailedException>(() => ring.Rings[0].AllReduceAsync(new float[4]).WaitAsync(Bound));
        Assert.Contains("already failed", again.Message);
    }

    [Fact]
    public async Task Aborting_one_generation_leaves_the_next_one_on_the_same_servers_working()
    {
        await using var first = await LocalRing.StartAsync(2, Patient, generation: 1);
        var members = first.Rings[0].Members;
        var second = first.Servers.Select((s, r) => RingAllReduce.Join(s, 2, r, members, Patient)).ToArray();
        try
        {
            // generation 1 is stuck: rank 1 never takes part
            var stuck = first.Rings[0].AllReduceAsync(new float[1000]);

            // generation 2 works beside it
            var buffers = new[] { new[] { 1f, 2f }, new[] { 10f, 20f } };
            await Task.WhenAll(second.Select((g, r) => g.AllReduceAsync(buffers[r]))).WaitAsync(Bound);
            Assert.All(buffers, b => Assert.Equal(new[] { 11f, 22f }, b));

            foreach (var old in first.Rings)
                old.Abort("generation 2 replaced it");
            var e = await Assert.ThrowsAsync<PeerFailedException>(() => stuck.WaitAsync(Bound));
            Assert.Contains("generation 2 replaced it", e.Message);
            Assert.Equal(-1, e.Rank);
            foreach (var old in first.Rings)
                await old.DisposeAsync();

            // neither the abort nor the disposal touched generation 2
            Assert.All(second, g => Assert.Null(g.Failure));
            buffers = new[] { new[] { 3f }, new[] { 4f } };
            await Task.WhenAll(second.Select((g, r) => g.AllReduceAsync(buffers[r]))).WaitAsync(Bound);
            Assert.All(buffers, b => Assert.Equal(7f, b[0]));
        }
        finally
        {
            foreach (var g in second)
                await g.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_successor_that_leaves_between_collectives_fails_only_the_next_collective()
    {
        await using var ring = await LocalRing.StartAsync(3, Patient);
        var buffers = Enumerable.Range(0, 3).Select(r => new[] { r + 1f }).ToArray();
        await ring.AllAsync((g, r) => g.AllReduceAsync(buffers[r])).WaitAsync(Bound);
        Assert.All(buffers, b => Assert.Equal(6f, b[0]));

        // rank 1 is done with this ring (it moved to another generation, or left): it closes its end. Rank 0, its
        // predecessor, had nothing left to send it, so nothing has failed: a collective still finishing there
        // (ranks finish one after the other) must not be cut short.
        await ring.Rings[1].DisposeAsync();
        await Task.Delay(1000);
        Assert.Null(ring.Rings[0].Failure);

        // the next collective needs rank 1, and rank 0 says so at once
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<PeerFailedException>(() => ring.Rings[0].AllReduceAsync(new float[8]).WaitAsync(Bound));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed.TotalSeconds:0.0} s against a 120 s peer timeout");
        Assert.Equal(1, e.Rank);
        Assert.Contains("closed its stream of generation 1", e.Message);
    }

    [Fact]
    public async Task A_stream_waiting_for_a_generation_the_worker_skipped_is_refused_when_it_moves_past_it()
    {
        await using var servers = await LocalRing.StartAsync(1);
        var server = servers.Servers[0];
        server.AttachTimeout = TimeSpan.FromSeconds(120);
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(server.Address);
        // a peer asks for generation 5, which this worker has not built yet: the stream waits for it
        using var early = RingWire.OpenPull(channel.CreateCallInvoker(), new PullRequest { Generation = 5, ReceiverRank = 1 });
        var waiting = early.ResponseStream.MoveNext(CancellationToken.None);
        await Task.Delay(300);
        Assert.False(waiting.IsCompleted);

        // the worker goes straight to generation 6
        var members = new[] { new RingMember(0, server.Address), new RingMember(1, "http://127.0.0.1:9") };
        await using var skipped = RingAllReduce.Join(server, 6, 0, members, LocalRing.Fast);
        var e = await Assert.ThrowsAsync<RpcException>(() => waiting.WaitAsync(Bound));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("stale generation 5", e.Status.Detail);
        Assert.Contains("generation 6", e.Status.Detail);
    }
}
