using EcsNet.AllReduce.Tests.Ring;

namespace EcsNet.Bench.Tests;

public sealed class AllReduceBenchTests
{
    [Fact]
    public void Bus_bandwidth_and_cpu_per_byte_follow_the_ring_traffic()
    {
        // 3 ranks, 64 MiB, two iterations of 0.5 s and 1.5 s (median 1 s), 2.5 CPU-s in all
        var r = new AllReduceBenchResult(64, 3, true, new[] { 0.5, 1.5 }, 2.5);
        double bytes = 64.0 * (1 << 20);
        Assert.Equal(bytes / 1e9, r.AlgBandwidth, 12);
        Assert.Equal(bytes / 1e9 * 4 / 3, r.BusBandwidth, 12);
        // each rank sends 2(N-1)/N of the buffer per all-reduce: 3 ranks x 4/3 x 64 MiB x 2 iterations
        Assert.Equal(3 * 4.0 / 3 * bytes * 2, r.BytesSent, 3);
        Assert.Equal(2.5 / (8 * bytes / 1e9), r.CpuSecondsPerGB, 12);
        // one rank sends nothing
        Assert.True(double.IsNaN(new AllReduceBenchResult(4, 1, true, new[] { 0.1 }, 0.2).CpuSecondsPerGB));
    }

    [Fact]
    public async Task The_benchmark_reports_cpu_time_and_the_exact_sum_for_two_ranks()
    {
        await using var ring = await LocalRing.StartAsync(2, LocalRing.Fast);
        var results = new IReadOnlyList<AllReduceBenchResult>[2];
        await ring.AllAsync(async (rank, r) => results[r] = await AllReduceBench.RunAsync(rank, new[] { 1 }, runs: 2, warmup: 0, settleMiB: 2));
        for (var r = 0; r < 2; r++)
        {
            var only = Assert.Single(results[r]);
            Assert.True(only.Correct);
            Assert.Equal(101, only.Seconds.Count);   // max(2, min(101, 2·64/1))
            Assert.True(only.CpuSeconds > 0);
        }
        // the per-iteration times and the CPU sum are all-reduced: both ranks report the same figures
        Assert.Equal(results[0][0].Seconds, results[1][0].Seconds);
        Assert.Equal(results[0][0].CpuSeconds, results[1][0].CpuSeconds);
    }
}
