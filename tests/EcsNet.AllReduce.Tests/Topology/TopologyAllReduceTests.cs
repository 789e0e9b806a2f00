using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.Topology;

namespace EcsNet.AllReduce.Tests.Topology;

public sealed class TopologyAllReduceTests
{
    private static float[] Input(int rank, int length, int seed)
    {
        var random = new Random(seed * 7919 + rank);
        return Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }

    private static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();

    public static IEnumerable<object[]> Layouts()
    {
        // one host; two hosts with two and one ranks; two hosts of two; one rank per host (the plain ring)
        foreach (var hosts in new[] { "a,a", "a,a,a", "a,a,b", "a,b,a,b", "a,b,c" })
            foreach (var length in new[] { 0, 1, 7, 1001, 40_003 })
                yield return new object[] { hosts, length };
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Sum_matches_a_double_sum_and_every_rank_has_the_same_bits(string layout, int length)
    {
        var hosts = layout.Split(',');
        await using var topology = await LocalTopology.StartAsync(hosts);
        var inputs = Enumerable.Range(0, hosts.Length).Select(r => Input(r, length, 1)).ToArray();
        var buffers = inputs.Select(x => (float[])x.Clone()).ToArray();

        await topology.AllAsync((group, r) => group.AllReduceAsync(buffers[r]));

        for (var i = 0; i < length; i++)
        {
            var exact = inputs.Sum(x => (double)x[i]);
            Assert.True(Math.Abs(buffers[0][i] - exact) <= 1e-5, $"element {i}: {buffers[0][i]} vs {exact}");
        }
        for (var r = 1; r < hosts.Length; r++)
            Assert.Equal(Bits(buffers[0]), Bits(buffers[r]));
    }

    [Fact]
    public async Task One_host_sums_in_rank_order_exactly_as_one_process_would()
    {
        // shared memory only: element i is ((x0 + x1) + x2) in float32, the order a single process would add in
        await using var topology = await LocalTopology.StartAsync(["a", "a", "a"]);
        var inputs = Enumerable.Range(0, 3).Select(r => Input(r, 9_999, 3)).ToArray();
        var buffers = inputs.Select(x => (float[])x.Clone()).ToArray();
        await topology.AllAsync((group, r) => group.AllReduceAsync(buffers[r]));
        var expected = Enumerable.Range(0, 9_999).Select(i => inputs[0][i] + inputs[1][i] + inputs[2][i]).ToArray();
        Assert.Equal(Bits(expected), Bits(buffers[2]));
        Assert.Contains("shared memory", topology.Groups[0].Plan);
    }

    [Theory]
    [InlineData("a,a,a")]
    [InlineData("a,a,b,b")]
    public async Task Average_and_float64_and_many_collectives_in_a_row(string layout)
    {
        var hosts = layout.Split(',');
        await using var topology = await LocalTopology.StartAsync(hosts);
        var world = hosts.Length;
        for (var round = 0; round < 5; round++)
        {
            var length = 1 + round * 3_001;
            var inputs = Enumerable.Range(0, world).Select(r => Input(r, length, 10 + round)).ToArray();
            var floats = inputs.Select(x => (float[])x.Clone()).ToArray();
            var doubles = inputs.Select(x => x.Select(v => (double)v).ToArray()).ToArray();
            await topology.AllAsync(async (group, r) =>
            {
                await group.AllReduceAsync(floats[r], ReduceOp.Average);
                await group.AllReduceAsync(doubles[r].AsMemory(), ReduceOp.Sum);
            });
            for (var i = 0; i < length; i += 37)
            {
                Assert.True(Math.Abs(floats[0][i] - inputs.Average(x => (double)x[i])) <= 1e-6, $"round {round}, element {i}");
                Assert.True(Math.Abs(doubles[0][i] - inputs.Sum(x => (double)x[i])) <= 1e-12, $"round {round}, element {i}");
            }
            for (var r = 1; r < world; r++)
            {
                Assert.Equal(Bits(floats[0]), Bits(floats[r]));
                Assert.Equal(doubles[0], doubles[r]);
            }
        }
    }

    [Theory]
    [InlineData("a,a,a", 2)]
    [InlineData("a,b,a,b", 0)]
    [InlineData("a,b,a,b", 3)]
    public async Task Broadcast_copies_the_roots_buffer_everywhere(string layout, int root)
    {
        var hosts = layout.Split(',');
        await using var topology = await LocalTopology.StartAsync(hosts);
        var buffers = Enumerable.Range(0, hosts.Length).Select(r => Input(r, 20_001, 5)).ToArray();
        var expected = (float[])buffers[root].Clone();
        await topology.AllAsync((group, r) => group.BroadcastAsync(buffers[r], root));
        for (var r = 0; r < hosts.Length; r++)
            Assert.Equal(Bits(expected), Bits(buffers[r]));
    }

    [Fact]
    public async Task Fp16_wire_between_hosts_still_leaves_every_rank_bit_identical()
    {
        await using var topology = await LocalTopology.StartAsync(["a", "a", "b", "b"], LocalTopology.Fast with { Compression = WireCompression.Float16 });
        var inputs = Enumerable.Range(0, 4).Select(r => Input(r, 5_003, 6)).ToArray();
        var buffers = inputs.Select(x => (float[])x.Clone()).ToArray();
        await topology.AllAsync((group, r) => group.AllReduceAsync(buffers[r], ReduceOp.Average));
        for (var i = 0; i < 5_003; i += 11)
            Assert.True(Math.Abs(buffers[0][i] - inputs.Average(x => (double)x[i])) <= 2e-3, $"element {i}");
        for (var r = 1; r < 4; r++)
            Assert.Equal(Bits(buffers[0]), Bits(buffers[r]));
    }

    [Fact]
    public async Task A_length_mismatch_fails_every_rank_naming_the_peer()
    {
        await using var topology = await LocalTopology.StartAsync(["a", "a"]);
        var failures = await Task.WhenAll(topology.Groups.Select((group, r) => Task.Run(async () =>
            await Record.ExceptionAsync(() => group.AllReduceAsync(new float[r == 0 ? 10 : 11])))));
        Assert.All(failures, f => Assert.IsType<PeerFailedException>(f));
        var first = (PeerFailedException)failures[0]!;
        Assert.Equal(1, first.Rank);
        Assert.Contains("11", first.Message);
    }

    [Fact]
    public async Task An_abort_reaches_the_hosts_other_ranks_at_once_naming_the_blamed_rank()
    {
        await using var topology = await LocalTopology.StartAsync(["a", "a", "a"], LocalTopology.Fast with { PeerTimeout = TimeSpan.FromMinutes(5) });
        // ranks 0 and 1 wait inside a collective for rank 2, which never joins it; rank 0 is told rank 2 is lost
        var waiting = topology.Groups.Take(2).Select(g => Task.Run(() => g.AllReduceAsync(new float[100_000]))).ToArray();
        await Task.Delay(300);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        topology.Groups[0].Abort("rank 2 was lost", 2);
        foreach (var task in waiting)
        {
            var failure = await Assert.ThrowsAsync<PeerFailedException>(() => task);
            Assert.Equal(2, failure.Rank);
        }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"abort took {clock.Elapsed}");
    }

    [Fact]
    public async Task A_rank_that_closes_its_side_mid_collective_is_named()
    {
        await using var topology = await LocalTopology.StartAsync(["a", "a"], LocalTopology.Fast with { PeerTimeout = TimeSpan.FromMinutes(5) });
        // one collective together first, so that both are attached
        await topology.AllAsync((group, r) => group.AllReduceAsync(new float[10]));
        var waiting = Task.Run(() => topology.Groups[0].AllReduceAsync(new float[10]));
        await Task.Delay(200);
        await topology.Groups[1].DisposeAsync();
        var failure = await Assert.ThrowsAsync<PeerFailedException>(() => waiting);
        Assert.Equal(1, failure.Rank);
        Assert.Contains("left", failure.Message);
    }

    [Fact]
    public async Task A_stalled_rank_is_named_after_the_peer_timeout()
    {
        await using var topology = await LocalTopology.StartAsync(["a", "a"], LocalTopology.Fast with { PeerTimeout = TimeSpan.FromSeconds(1) });
        await topology.AllAsync((group, r) => group.AllReduceAsync(new float[10]));
        var failure = await Assert.ThrowsAsync<PeerFailedException>(() => topology.Groups[1].AllReduceAsync(new float[10]));
        Assert.Equal(0, failure.Rank);
        Assert.Contains("no progress", failure.Message);
    }

    [Fact]
    public async Task No_segment_stays_in_the_shared_memory_folder()
    {
        var before = LocalTopology.Segments();
        await using (var topology = await LocalTopology.StartAsync(["a", "a", "a"]))
        {
            await topology.AllAsync((group, r) => group.AllReduceAsync(new float[5000]));
            // attached: the name is gone while the ranks still use the memory
            Assert.Empty(LocalTopology.Segments().Except(before));
            await topology.AllAsync((group, r) => group.AllReduceAsync(new float[5000]));
        }
        // a group that never ran a collective leaves nothing either
        await using (await LocalTopology.StartAsync(["a", "a"])) { }
        Assert.Empty(LocalTopology.Segments().Except(before));
    }

    [Fact]
    public void Shm_refuses_a_generation_that_spans_hosts_naming_them()
    {
        var members = new[] { new RingMember(0, "http://127.0.0.1:1", "cpu", "a"), new RingMember(1, "http://127.0.0.1:2", "cpu", "b") };
        var e = Assert.Throws<InvalidOperationException>(() => GroupCollectives.Join(null, 1, 0, members, new RingOptions { Transport = Transport.Shm }));
        Assert.Contains("a has rank 0", e.Message);
        Assert.Contains("b has rank 1", e.Message);
    }

    [Fact]
    public void Hosts_group_members_and_an_empty_host_is_a_host_of_its_own()
    {
        var members = new[]
        {
            new RingMember(0, "x0", "cpu", "b"), new RingMember(1, "x1", "cpu", "a"), new RingMember(2, "x2", "cpu", "b"),
            new RingMember(3, "x3", "cpu", ""), new RingMember(4, "x4", "cpu", ""),
        };
        var hosts = GroupCollectives.Hosts(members);
        Assert.Equal(new[] { "0,2", "1", "3", "4" }, hosts.Select(h => string.Join(",", h.Select(m => m.Rank))));
    }
}
