using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using EcsNet.Data;
using EcsNet.Labels.Propagation;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet bench random-walk`: times the sparse-step random walk at PSA's size (56×56 grid, 448 feature channels,
/// radius 5, β 8, t 256, 21 CAM channels), end to end from features to walked scores, the workload of the
/// random_walk.py peer (docs/BENCHMARKS.md, "Peers"; docs/BENCHMARKS-randomwalk.md).
/// </summary>
public static class BenchRandomWalkCommand
{
    /// <summary>What one benchmark run is asked to do.</summary>
    public sealed record Settings(int Grid, int Channels, int CamChannels, RandomWalkOptions Walk, int Runs, int Warmup,
        string? Inputs, string? SaveOutput);

    /// <summary>Medians over runs (ms), bytes allocated by one run, process peak working set.</summary>
    public sealed record Result(int Grid, int Nodes, int Channels, int CamChannels, int Radius, int Beta, long Steps,
        int Pairs, int Threads, int Runs, string Inputs, double MedianMs, double MinMs, double MaxMs,
        double BuildMedianMs, double PropagateMedianMs, double CpuMsPerRun, long AllocatedBytesPerRun,
        long PeakWorkingSetBytes, double OutputChecksum);

    public static Command Build(CliIo io)
    {
        var grid = new Option<int>("--grid") { Description = "Side of the square feature grid (PSA: 448/8 = 56).", DefaultValueFactory = _ => 56 };
        var channels = new Option<int>("--channels") { Description = "Feature channels (PSA: 64+128+256 = 448).", DefaultValueFactory = _ => 448 };
        var camChannels = new Option<int>("--cam-channels") { Description = "Score channels walked (background + 20 classes = 21).", DefaultValueFactory = _ => 21 };
        var radius = new Option<int>("--radius") { Description = "Pair radius on the grid (PSA 5).", DefaultValueFactory = _ => 5 };
        var beta = new Option<int>("--beta") { Description = "Affinity power β (PSA 8).", DefaultValueFactory = _ => 8 };
        var logt = new Option<int>("--logt") { Description = "log2 of the number of steps (PSA 8: t = 256).", DefaultValueFactory = _ => 8 };
        var threads = new Option<int>("--threads") { Description = "Threads for the walk; 0 = all cores.", DefaultValueFactory = _ => 0 };
        var runs = new Option<int>("--runs") { Description = "Timed runs; the median is reported.", DefaultValueFactory = _ => 5 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed runs first.", DefaultValueFactory = _ => 1 };
        var inputs = new Option<string?>("--inputs")
        {
            Description = "Folder with features.npy (C×N float32) and cam.npy (K×N float32), e.g. dumped from the Python peer's " +
                          "seeds, instead of this program's own seeded uniform inputs.",
        };
        var save = new Option<string?>("--save-output") { Description = "Write the walked scores (K×N float32) to this .npy file." };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON instead of a table." };

        var command = new Command("random-walk",
            "Time the sparse random walk (features → A^β → row-normalised T → t steps on the CAMs) at PSA's size; " +
            "reports the median time and memory.")
        {
            grid, channels, camChannels, radius, beta, logt, threads, runs, warmup, inputs, save, json,
        };
        command.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            var settings = new Settings(parse.GetValue(grid), parse.GetValue(channels), parse.GetValue(camChannels),
                new RandomWalkOptions
                {
                    Radius = parse.GetValue(radius), Beta = parse.GetValue(beta), LogT = parse.GetValue(logt),
                    Threads = parse.GetValue(threads),
                },
                parse.GetValue(runs), parse.GetValue(warmup), parse.GetValue(inputs), parse.GetValue(save));
            var result = Measure(settings, ct);
            if (parse.GetValue(json))
                io.Out.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
            else
                Print(io, result);
            return Task.FromResult(EcsNetCli.ExitOk);
        }));
        return command;
    }

    public static Result Measure(Settings s, CancellationToken ct = default)
    {
        s.Walk.Validate();
        if (s.Grid < 1 || s.Channels < 1 || s.CamChannels < 1 || s.Runs < 1 || s.Warmup < 0)
            throw new BadInputException("bench random-walk",
                $"grid {s.Grid}, channels {s.Channels}, cam channels {s.CamChannels}, runs {s.Runs}, warmup {s.Warmup}: must be positive (warmup ≥ 0)");
        int n = s.Grid * s.Grid;
        float[] features, cam;
        int channels = s.Channels, camChannels = s.CamChannels;
        string source;
        if (s.Inputs is { } dir)
        {
            var f = NpyFile.Read(Path.Combine(dir, "features.npy"));
            var c = NpyFile.Read(Path.Combine(dir, "cam.npy"));
            if (f.Shape.Length != 2 || f.Shape[1] != n)
                throw new BadInputException(Path.Combine(dir, "features.npy"),
                    $"shape ({string.Join(", ", f.Shape)}) is not (channels, {n}) for a {s.Grid}x{s.Grid} grid");
            if (c.Shape.Length != 2 || c.Shape[1] != n)
                throw new BadInputException(Path.Combine(dir, "cam.npy"),
                    $"shape ({string.Join(", ", c.Shape)}) is not (channels, {n}) for a {s.Grid}x{s.Grid} grid");
            (features, channels) = (f.Data, (int)f.Shape[0]);
            (cam, camChannels) = (c.Data, (int)c.Shape[0]);
            source = dir;
        }
        else
        {
            // Uniform [0, 1) like the peer's default_rng(0)/(1).random(dtype=float32); same distribution, not the
            // same numbers (use --inputs for an output-level comparison).
            features = Uniform(new Random(0), channels * n);
            cam = Uniform(new Random(1), camChannels * n);
            source = "seeded uniform (System.Random 0 / 1)";
        }

        float[] output = Array.Empty<float>();
        var total = new List<double>();
        var build = new List<double>();
        var propagate = new List<double>();
        long allocated = 0;
        using var process = Process.GetCurrentProcess();
        TimeSpan cpuStart = TimeSpan.Zero;
        for (int r = 0; r < s.Warmup + s.Runs; r++)
        {
            if (r == s.Warmup)
            {
                process.Refresh();
                cpuStart = process.TotalProcessorTime;
            }
            ct.ThrowIfCancellationRequested();
            // untimed: free the previous run's arrays so the peak working set reflects one run, not the GC's backlog
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long before = GC.GetTotalAllocatedBytes(precise: true);
            var t0 = Stopwatch.GetTimestamp();
            var transition = RandomWalkTransition.FromFeatures(features, channels, s.Grid, s.Grid, s.Walk);
            var t1 = Stopwatch.GetTimestamp();
            output = transition.Propagate(cam, camChannels, s.Walk.Steps, s.Walk.Threads);
            var t2 = Stopwatch.GetTimestamp();
            allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
            if (r < s.Warmup)
                continue;
            build.Add(Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
            propagate.Add(Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds);
            total.Add(Stopwatch.GetElapsedTime(t0, t2).TotalMilliseconds);
        }
        if (s.SaveOutput is { } path)
            NpyFile.Write(path, output, camChannels, n);

        process.Refresh();
        // CPU time of all threads over the timed runs: on a shared machine wall time includes waiting for a core.
        double cpuMs = (process.TotalProcessorTime - cpuStart).TotalMilliseconds / s.Runs;
        int pairs = AffinityPairs.Create(s.Walk.Radius, s.Grid, s.Grid).PairCount;
        return new Result(s.Grid, n, channels, camChannels, s.Walk.Radius, s.Walk.Beta, s.Walk.Steps, pairs,
            s.Walk.Threads > 0 ? s.Walk.Threads : Environment.ProcessorCount, s.Runs, source,
            Median(total), total.Min(), total.Max(), Median(build), Median(propagate), cpuMs, allocated,
            process.PeakWorkingSet64, output.Sum(v => (double)v));
    }

    private static void Print(CliIo io, Result r)
    {
        var table = new Table().AddColumn("measure").AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("problem", $"{r.Grid}x{r.Grid} grid (N = {r.Nodes}), {r.Channels} feature ch, {r.CamChannels} CAM ch");
        table.AddRow("walk", $"radius {r.Radius} ({r.Pairs} pairs), β {r.Beta}, t {r.Steps}, {r.Threads} threads");
        table.AddRow("inputs", Markup.Escape(r.Inputs));
        table.AddRow($"total, median of {r.Runs}", $"{r.MedianMs:F1} ms (min {r.MinMs:F1}, max {r.MaxMs:F1})");
        table.AddRow("  affinities + transition", $"{r.BuildMedianMs:F1} ms");
        table.AddRow("  t propagation steps", $"{r.PropagateMedianMs:F1} ms");
        table.AddRow("CPU time per run (all threads)", $"{r.CpuMsPerRun:F1} ms");
        table.AddRow("allocated per run", $"{r.AllocatedBytesPerRun / 1048576.0:F2} MiB");
        table.AddRow("process peak working set", $"{r.PeakWorkingSetBytes / 1048576.0:F1} MiB");
        table.AddRow("output checksum (sum)", $"{r.OutputChecksum:F3}");
        io.Console.Write(table);
    }

    private static float[] Uniform(Random rng, int count)
    {
        var a = new float[count];
        for (int i = 0; i < count; i++)
            a[i] = rng.NextSingle();
        return a;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        int m = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
    }
}
