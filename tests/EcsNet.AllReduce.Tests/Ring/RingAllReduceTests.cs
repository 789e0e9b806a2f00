using EcsNet.AllReduce.Ring;

namespace EcsNet.AllReduce.Tests.Ring;

public sealed class RingAllReduceTests
{
    private static float[] Input(int rank, int length, int seed)
    {
        var random = new Random(seed * 7919 + rank);
        return Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }

    public static IEnumerable<object[]> Shapes()
    {
        foreach (var world in new[] { 1, 2, 3, 5 })
            foreach (var length in new[] { 0, 1, 2, 4, 7, 1001, 40_003 })
                yield return new object[] { world, length };
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task Sum_matches_a_double_sum_and_every_rank_has_the_same_bits(int world, int length)
    {
        // small chunks so that even modest tensors are cut into several pieces per segment
        var options = LocalRing.Fast with { ChunkBytes = 4096 };
        await using var ring = await LocalRing.StartAsync(world, options);
        var inputs = Enumerable.Range(0, world).Select(r => Input(r, length, 1)).ToArray();
        var buffers = inputs.Select(x => (float[])x.Clone()).ToArray();

        await ring.AllAsync((rank, r) => rank.AllReduceAsync(buffers[r]));

        for (var i = 0; i < length; i++)
        {
            var exact = inputs.Sum(x => (double)x[i]);
            Assert.True(Math.Abs(buffers[0][i] - exact) <= 1e-5, $"element {i}: {buffers[0][i]} vs {exact}");
        }
        for (var r = 1; r < world; r++)
            Assert.Equal(Bits(buffers[0]), Bits(buffers[r]));
    }

    [Theory]
    [InlineData(3, 1001)]
    [InlineData(5, 3)]
    public async Task Average_divides_once_and_repeats_bit_for_bit(int world, int length)
    {
        await using var ring = await LocalRing.StartAsync(world, LocalRing.Fast with { ChunkBytes = 1024 });
        var inputs = Enumerable.Range(0, world).Select(r => Input(r, length, 2)).ToArray();
        var first = inputs.Select(x => (float[])x.Clone()).ToArray();
        var second = inputs.Select(x => (float[])x.Clone()).ToArray();

        await ring.AllAsync((rank, r) => rank.AllReduceAsync(first[r], ReduceOp.Average));
        await ring.AllAsync((rank, r) => rank.AllReduceAsync(second[r], ReduceOp.Average));

        for (var i = 0; i < length; i++)
            Assert.True(Math.Abs(first[0][i] - inputs.Average(x => (double)x[i])) <= 1e-6);
        for (var r = 0; r < world; r++)
        {
            Assert.Equal(Bits(first[0]), Bits(first[r]));
            Assert.Equal(Bits(first[0]), Bits(second[r]));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3 * 1024)]
    [InlineData(1 << 30)]
    public async Task Send_coalescing_does_not_change_the_bits(int flushBytes)
    {
        // FlushBytes 0 flushes every chunk; 3 KiB flushes every few of the 1 KiB chunks; 1 GiB only when the
        // send queue runs dry. Each is checked against the exact sum, across several collectives in a row.
        const int world = 3, length = 10_007;
        await using var ring = await LocalRing.StartAsync(world, LocalRing.Fast with { ChunkBytes = 1024, FlushBytes = flushBytes });
        var inputs = Enumerable.Range(0, world).Select(r => Input(r, length, 4)).ToArray();
        for (var round = 0; round < 3; round++)
        {
            var buffers = inputs.Select(x => (float[])x.Clone()).ToArray();
            await ring.AllAsync((rank, r) => rank.AllReduceAsync(buffers[r]));
            for (var i = 0; i < length; i += 97)
                Assert.True(Math.Abs(buffers[0][i] - inputs.Sum(x => (double)x[i])) <= 1e-5, $"round {round}, element {i}");
            for (var r = 1; r < world; r++)
                Assert.Equal(Bits(buffers[0]), Bits(buffers[r]));
        }
    }

    [Fact]
    public void A_negative_flush_size_is_refused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new RingOptions { FlushBytes = -1 }.Validate());
        Assert.Equal("FlushBytes", e.ParamName);
    }

    [Fact]
    public async Task Float64_buffers_reduce_too()
    {
        await using var ring = await LocalRing.StartAsync(3);
        var buffers = Enumerable.Range(0, 3).Select(r => Enumerable.Range(0, 10).Select(i => (double)(r * 100 + i)).ToArray()).ToArray();
        await ring.AllAsync((rank, r) => rank.AllReduceAsync(buffers[r]));
        for (var i = 0; i < 10; i++)
            Assert.All(buffers, b => Assert.Equal(300 + 3 * i, b[i]));
    }

    [Fact]
    public async Task Float16_wire_is_close_to_exact_and_identical_across_ranks()
    {
        await using var ring = await LocalRing.StartAsync(3, LocalRing.Fast with { Compression = WireCompression.Float16, ChunkBytes = 2048 });
        var inputs = Enumerable.Range(0, 3).Select(r => Input(r, 5000, 3)).ToArray();
        var buffers = inputs.Select(x => (float[])x.Clone()).ToArray();
        await ring.AllAsync((rank, r) => rank.AllReduceAsync(buffers[r], ReduceOp.Average));
        var maxError = Enumerable.Range(0, 5000).Max(i => Math.Abs(buffers[0][i] - inputs.Average(x => (double)x[i])));
        Assert.InRange(maxError, 1e-7, 2e-3); // fp16 rounding happened, and only that much
        for (var r = 1; r < 3; r++)
            Assert.Equal(Bits(buffers[0]), Bits(buffers[r]));
    }

    [Fact]
    public async Task Broadcast_copies_the_roots_bits_exactly()
    {
        await using var ring = await LocalRing.StartAsync(3, LocalRing.Fast with { Compression = WireCompression.Float16 });
        var buffers = Enumerable.Range(0, 3).Select(r => Input(r, 777, 4)).ToArray();
        var root = (float[])buffers[1].Clone();
        root[5] = float.NaN;
        root[6] = 1e-40f; // subnormal survives x + 0 + 0
        buffers[1] = (float[])root.Clone();
        await ring.AllAsync((rank, r) => rank.BroadcastAsync(buffers[r], root: 1));
        Assert.All(buffers, b => Assert.Equal(Bits(root), Bits(b)));
    }

    [Fact]
    public async Task Many_collectives_in_a_row_keep_their_order()
    {
        await using var ring = await LocalRing.StartAsync(2, LocalRing.Fast with { ChunkBytes = 1024 });
        var results = new float[2][][];
        await ring.AllAsync(async (rank, r) =>
        {
            var mine = new float[10][];
            for (var k = 0; k < 10; k++)
            {
                mine[k] = Enumerable.Repeat((float)(k + r), 300 + k).ToArray();
                await rank.AllReduceAsync(mine[k]);
            }
            results[r] = mine;
        });
        for (var k = 0; k < 10; k++)
            Assert.All(results, mine => Assert.All(mine[k], v => Assert.Equal(2 * k + 1, v)));
    }

    internal static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();
}
