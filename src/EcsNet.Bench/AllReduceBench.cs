using System.Diagnostics;
using EcsNet.AllReduce;

namespace EcsNet.Bench;

/// <summary>One size of the all-reduce benchmark (times are the max over ranks of one iteration).</summary>
/// <param name="TinySeconds">
/// Per iteration, the one-float all-reduce that opens it, the minimum over ranks (the last rank to arrive waits for the
/// collective alone): the latency α of the cost model in docs/SCALING.md.
/// </param>
public sealed record AllReduceBenchResult(int SizeMiB, int WorldSize, bool Correct, IReadOnlyList<double> Seconds, double CpuSeconds = double.NaN,
    IReadOnlyList<double>? TinySeconds = null)
{
    /// <summary>
    /// Bytes all ranks together put on the wire during the timed iterations: each rank sends 2(N−1)/N of the
    /// buffer per all-reduce (the barrier and the gathering of times are a few bytes and not counted).
    /// </summary>
    public double BytesSent => WorldSize < 2 ? 0 : Seconds.Count * (double)WorldSize * SizeMiB * (1 << 20) * 2 * (WorldSize - 1) / WorldSize;

    /// <summary>
    /// CPU time (user + system) of all rank processes during the timed iterations per GB sent: the figure
    /// that bounds bus bandwidth when the machine's cores are busy (busbw ≤ cores / (N · CPU-s per GB)).
    /// Each rank measures its whole process, so the figure assumes one rank per process (as `ecsnet bench
    /// allreduce` runs them); in-process ranks would each count the shared process.
    /// </summary>
    public double CpuSecondsPerGB => BytesSent > 0 ? CpuSeconds / (BytesSent / 1e9) : double.NaN;

    public double MedianSeconds => Median(Seconds);

    /// <summary>Median time of a one-float all-reduce (NaN when not measured).</summary>
    public double TinyMedianSeconds => TinySeconds is { Count: > 0 } tiny ? Median(tiny) : double.NaN;

    public double MinSeconds => Seconds.Min();

    public double MaxSeconds => Seconds.Max();

    /// <summary>Algorithm bandwidth in GB/s (1e9 B/s): bytes / time.</summary>
    public double AlgBandwidth => SizeMiB * (double)(1 << 20) / MedianSeconds / 1e9;

    /// <summary>Bus bandwidth in GB/s: algbw × 2(N−1)/N, the nccl-tests convention (ring traffic per rank).</summary>
    public double BusBandwidth => AlgBandwidth * 2 * (WorldSize - 1) / WorldSize;

    private static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}

/// <summary>
/// The all-reduce benchmark, with the protocol of the gloo peer (gloo_allreduce.py, described in docs/BENCHMARKS.md,
/// "Peers") so the two can be compared: per size a correctness check (each rank contributes rank+1), warm-up iterations,
/// then iterations of barrier → time one all-reduce (SUM) → max over ranks; the median is reported.
/// Iterations per size: max(R, min(101, R·64/size_MiB)), like the peer. The barrier is a one-float
/// all-reduce; the per-rank times are gathered by a small all-reduce outside the timed region. An optional
/// untimed settling pass over the sizes comes first (JIT tiering, thread pool and TCP windows in steady state).
/// </summary>
public static class AllReduceBench
{
    public static int Iterations(int sizeMiB, int runs) => Math.Max(runs, Math.Min(101, runs * 64 / Math.Max(1, sizeMiB)));

    public static async Task<IReadOnlyList<AllReduceBenchResult>> RunAsync(
        ICollective collective, IReadOnlyList<int> sizesMiB, int runs = 11, int warmup = 2, int settleMiB = 0, CancellationToken cancellationToken = default)
    {
        var results = new List<AllReduceBenchResult>();
        var world = collective.WorldSize;
        var token = new float[1];
        var times = new double[2 * world];
        if (settleMiB > 0)
        {
            // steady state first: a training job all-reduces for hours, so the JIT's tiering, the thread pool
            // and the sockets' windows have long settled; untimed, the same sizes, settleMiB of each
            foreach (var mib in sizesMiB.Distinct())
            {
                var data = new float[mib * (1 << 20) / sizeof(float)];
                for (var i = 0; i < Math.Max(1, settleMiB / mib); i++)
                    await collective.AllReduceAsync(data, ReduceOp.Sum, cancellationToken: cancellationToken);
            }
        }
        foreach (var mib in sizesMiB)
        {
            var data = new float[mib * (1 << 20) / sizeof(float)];
            Array.Fill(data, collective.Rank + 1f);
            await collective.AllReduceAsync(data, ReduceOp.Sum, cancellationToken: cancellationToken);
            var expect = world * (world + 1) / 2f;
            var correct = data[0] == expect && data[^1] == expect;
            Array.Fill(data, 1f / world);
            for (var i = 0; i < warmup; i++)
                await collective.AllReduceAsync(data, ReduceOp.Sum, cancellationToken: cancellationToken);

            var seconds = new List<double>();
            var tiny = new List<double>();
            var cpuStart = ProcessCpuSeconds();
            for (var i = 0; i < Iterations(mib, runs); i++)
            {
                // the barrier is itself a one-float all-reduce: timed too, it gives the latency per collective
                var barrier = Stopwatch.GetTimestamp();
                await collective.AllReduceAsync(token, ReduceOp.Sum, cancellationToken: cancellationToken);
                var barrierElapsed = Stopwatch.GetElapsedTime(barrier).TotalSeconds;
                var start = Stopwatch.GetTimestamp();
                await collective.AllReduceAsync(data, ReduceOp.Sum, cancellationToken: cancellationToken);
                var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
                Array.Clear(times);
                times[collective.Rank] = elapsed;
                times[world + collective.Rank] = barrierElapsed;
                await collective.AllReduceAsync(times, ReduceOp.Sum, cancellationToken);
                seconds.Add(times.AsSpan(0, world).ToArray().Max());
                tiny.Add(times.AsSpan(world).ToArray().Min());
            }
            var cpu = new[] { ProcessCpuSeconds() - cpuStart };
            await collective.AllReduceAsync(cpu, ReduceOp.Sum, cancellationToken);
            results.Add(new AllReduceBenchResult(mib, world, correct, seconds, cpu[0], tiny));
        }
        return results;
    }

    private static double ProcessCpuSeconds()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime.TotalSeconds;
    }
}
