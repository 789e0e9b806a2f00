using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.Wire;
using Grpc.Core;

namespace EcsNet.AllReduce.Tests.Ring;

/// <summary>Dead, stalled and mismatched peers make collectives fail fast with errors that name the peer.</summary>
public sealed class RingFailureTests
{
    /// <summary>Far longer than any failure here takes; only there so that a bug fails the test instead of hanging it.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static async Task<PeerFailedException> FailsAsync(Task collective)
    {
        var e = await Assert.ThrowsAsync<PeerFailedException>(() => collective.WaitAsync(Bound));
        return e;
    }

    [Fact]
    public async Task A_stalled_peer_fails_the_others_within_the_timeout_naming_it()
    {
        // rank 2 waits on rank 1 for 1 s; rank 0 would wait longer, so it learns of the failure from rank 2's abort
        await using var ring = await LocalRing.StartAsync(3, r => LocalRing.Fast with { PeerTimeout = TimeSpan.FromSeconds(r == 2 ? 1 : 10) });
        var a = new float[1000];
        var b = new float[1000];
        var rank0 = ring.Rings[0].AllReduceAsync(a);
        var rank2 = ring.Rings[2].AllReduceAsync(b);   // rank 1 never joins this collective

        var seen2 = await FailsAsync(rank2);
        var seen0 = await FailsAsync(rank0);

        Assert.Equal(1, seen2.Rank);
        Assert.Contains("rank 1", seen2.Message);
        Assert.True(seen2.Message.Contains("sent nothing for 1 s"), seen2.Message);
        Assert.Equal(1, seen0.Rank);
        Assert.Contains("rank 1", seen0.Message);
        Assert.Equal(ring.Servers[1].Address, seen0.Address);
        // the ring stays failed: the next collective is refused at once
        var again = await FailsAsync(ring.Rings[2].AllReduceAsync(b));
        Assert.Contains("already failed", again.Message);
    }

    [Fact]
    public async Task A_dead_peer_fails_the_others_naming_it()
    {
        await using var ring = await LocalRing.StartAsync(3, LocalRing.Fast with { PeerTimeout = TimeSpan.FromSeconds(20) });
        var buffers = Enumerable.Range(0, 3).Select(_ => new float[5000]).ToArray();
        await ring.AllAsync((rank, r) => rank.AllReduceAsync(buffers[r])).WaitAsync(Bound);

        // rank 1 goes away: its ring and its server close
        await ring.Rings[1].DisposeAsync();
        await ring.Servers[1].DisposeAsync();

        var seen0 = await FailsAsync(ring.Rings[0].AllReduceAsync(buffers[0]));
        // rank 0's failure must not reach rank 2 as a failure of rank 0's: give any such signal time to arrive
        await Task.Delay(300);
        var seen2 = await FailsAsync(ring.Rings[2].AllReduceAsync(buffers[2]));
        Assert.Equal(1, seen0.Rank);
        Assert.Equal(1, seen2.Rank);
        Assert.Contains("rank 1", seen0.Message);
        Assert.Contains("rank 1", seen2.Message);
    }

    [Fact]
    public async Task A_rank_failing_mid_collective_is_not_blamed_by_its_predecessor()
    {
        // rank 0 is inside a collective, waiting for rank 2, when its successor (rank 1) dies. Rank 0 fails
        // naming rank 1; that must not look to rank 2 (rank 0's predecessor) like a failure of rank 0.
        await using var ring = await LocalRing.StartAsync(3, LocalRing.Fast with { PeerTimeout = TimeSpan.FromSeconds(20) });
        var buffers = Enumerable.Range(0, 3).Select(_ => new float[5000]).ToArray();
        await ring.AllAsync((rank, r) => rank.AllReduceAsync(buffers[r])).WaitAsync(Bound);

        var waiting = ring.Rings[0].AllReduceAsync(buffers[0]);
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);
        await ring.Rings[1].DisposeAsync();
        await ring.Servers[1].DisposeAsync();
        var seen0 = await FailsAsync(waiting);
        Assert.True(seen0.Rank == 1, seen0.Message);

        await Task.Delay(300);
        var seen2 = await FailsAsync(ring.Rings[2].AllReduceAsync(buffers[2]));
        Assert.True(seen2.Rank == 1, seen2.Message);
    }

    [Fact]
    public async Task Mismatched_sizes_are_rejected_on_every_rank()
    {
        await using var ring = await LocalRing.StartAsync(2);
        var small = ring.Rings[0].AllReduceAsync(new float[100]);
        var large = ring.Rings[1].AllReduceAsync(new float[101]);
        var e0 = await FailsAsync(small);
        var e1 = await FailsAsync(large);
        foreach (var e in new[] { e0, e1 })
        {
            Assert.Contains("tensor mismatch", e.Message);
            Assert.Contains("100", e.Message);
            Assert.Contains("101", e.Message);
        }
    }

    [Fact]
    public async Task Mismatched_element_types_are_rejected()
    {
        await using var ring = await LocalRing.StartAsync(2);
        var single = ring.Rings[0].AllReduceAsync(new float[10]);
        var twice = ring.Rings[1].AllReduceAsync(new double[10]);
        var e0 = await FailsAsync(single);
        var e1 = await FailsAsync(twice);
        Assert.All(new[] { e0, e1 }, e =>
        {
            Assert.Contains("float32", e.Message);
            Assert.Contains("float64", e.Message);
        });
    }

    [Fact]
    public async Task A_worker_of_a_stale_generation_is_rejected()
    {
        await using var current = await LocalRing.StartAsync(2, generation: 2);
        await current.AllAsync((rank, r) => rank.AllReduceAsync(new float[8])).WaitAsync(Bound);

        // a leftover ring of generation 1 on worker 0 tries to pull from worker 1, which is in generation 2
        await using var stale = RingAllReduce.Join(current.Servers[0], 1, 0, current.Rings[0].Members, LocalRing.Fast);
        var e = await FailsAsync(stale.AllReduceAsync(new float[8]));
        Assert.Contains("stale generation 1", e.Message);
        Assert.Contains("generation 2", e.Message);
        Assert.Equal(StatusCode.FailedPrecondition, Assert.IsType<RpcException>(e.InnerException).StatusCode);
    }

    [Fact]
    public async Task A_second_worker_claiming_the_same_rank_is_rejected()
    {
        await using var ring = await LocalRing.StartAsync(2);
        await ring.AllAsync((rank, r) => rank.AllReduceAsync(new float[8])).WaitAsync(Bound);

        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(ring.Servers[0].Address);
        var client = channel.CreateCallInvoker();
        using var twin = RingWire.OpenPull(client, new PullRequest { Generation = 1, ReceiverRank = 1 });
        var claimed = await Assert.ThrowsAsync<RpcException>(() => twin.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Bound));
        Assert.Equal(StatusCode.AlreadyExists, claimed.StatusCode);
        Assert.Contains("second worker claims rank 1", claimed.Status.Detail);

        using var stranger = RingWire.OpenPull(client, new PullRequest { Generation = 1, ReceiverRank = 0 });
        var wrong = await Assert.ThrowsAsync<RpcException>(() => stranger.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Bound));
        Assert.Equal(StatusCode.PermissionDenied, wrong.StatusCode);

        // the real ring is unaffected
        var buffers = new[] { new float[] { 1 }, new float[] { 2 } };
        await ring.AllAsync((rank, r) => rank.AllReduceAsync(buffers[r])).WaitAsync(Bound);
        Assert.All(buffers, b => Assert.Equal(3f, b[0]));
    }

    [Fact]
    public void Bad_ring_shapes_are_refused_when_joining()
    {
        var members = new[] { new RingMember(0, "http://127.0.0.1:1"), new RingMember(1, "http://127.0.0.1:2") };
        Assert.Throws<ArgumentOutOfRangeException>(() => RingAllReduce.Join(null, 1, 2, members));
        Assert.Throws<ArgumentException>(() => RingAllReduce.Join(null, 1, 0, members.Reverse().ToArray()));
        Assert.Throws<ArgumentNullException>(() => RingAllReduce.Join(null, 1, 0, members));
        Assert.Throws<ArgumentOutOfRangeException>(() => RingAllReduce.Join(null, 1, 0, members[..1], new RingOptions { ChunkBytes = 10 }));
    }
}
