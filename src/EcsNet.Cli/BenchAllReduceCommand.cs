using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EcsNet.AllReduce.Rendezvous;
using EcsNet.Data;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet bench allreduce`: starts a coordinator and N local `ecsnet worker` processes and prints the
/// median bus bandwidth per size, with the protocol of the gloo peer (gloo_allreduce.py; docs/BENCHMARKS.md, "Peers").
/// The tool an operator runs to check a cluster's network, like nccl-tests.
/// </summary>
public static class BenchAllReduceCommand
{
    public static Command Build(CliIo io)
    {
        var world = new Option<int>("--world") { Description = "Worker processes to start (ranks).", DefaultValueFactory = _ => 2 };
        var sizes = new Option<string>("--sizes") { Description = "Buffer sizes in MiB, comma separated.", DefaultValueFactory = _ => "1,4,16,64,256" };
        var runs = new Option<int>("--runs") { Description = "Iterations R; per size max(R, min(101, R*64/MiB)) as the gloo peer.", DefaultValueFactory = _ => 11 };
        var warmup = new Option<int>("--warmup") { Description = "Warm-up iterations per size.", DefaultValueFactory = _ => 2 };
        var settle = new Option<int>("--settle-mib")
        {
            Description = "Before timing, all-reduce each size untimed until this many MiB of it went through, so that the JIT's tiering, " +
                          "the thread pool and the TCP windows are in the steady state of a long training job (0: cold start).",
            DefaultValueFactory = _ => 1024,
        };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON instead of a table." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds the whole run may take before the workers are killed.", DefaultValueFactory = _ => 1200 };
        var ring = new RingCliOptions();
        var command = new Command("allreduce", "All-reduce bus bandwidth of N local worker processes (median per size), over shared memory or gRPC (--transport).");
        foreach (var o in new Option[] { world, sizes, runs, warmup, settle, json, timeout })
            command.Options.Add(o);
        ring.AddTo(command);
        command.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var n = parse.GetValue(world);
            if (n < 1 || n > 64)
                throw new BadInputException("--world", $"{n} is outside 1..64");
            var list = RingCliOptions.Sizes(parse.GetValue(sizes)!, "--sizes");
            if (parse.GetValue(runs) < 1)
                throw new BadInputException("--runs", "must be at least 1");
            if (parse.GetValue(warmup) < 0)
                throw new BadInputException("--warmup", "must not be negative");
            if (parse.GetValue(settle) < 0)
                throw new BadInputException("--settle-mib", "must not be negative");
            ring.Read(parse);
            var args = new List<string> { "--bench-sizes", string.Join(',', list), "--runs", parse.GetValue(runs).ToString(CultureInfo.InvariantCulture),
                                          "--warmup", parse.GetValue(warmup).ToString(CultureInfo.InvariantCulture),
                                          "--settle-mib", parse.GetValue(settle).ToString(CultureInfo.InvariantCulture) };
            args.AddRange(ring.Forward(parse));
            var result = await RunWorkersAsync(io, n, args, TimeSpan.FromSeconds(parse.GetValue(timeout)), ct);

            if (parse.GetValue(json))
            {
                io.Out.WriteLine(result.GetRawText());
                return EcsNetCli.ExitOk;
            }
            var table = new Table().AddColumns("size", "ok", "iters", "median ms", "min ms", "max ms", "algbw GB/s", "busbw GB/s", "CPU s/GB");
            foreach (var s in result.GetProperty("sizes").EnumerateArray())
                table.AddRow($"{s.GetProperty("mib").GetInt32()} MiB", s.GetProperty("ok").GetBoolean() ? "y" : "N",
                    s.GetProperty("iters").GetInt32().ToString(CultureInfo.InvariantCulture),
                    F(s, "median_ms", "0.00"), F(s, "min_ms", "0.00"), F(s, "max_ms", "0.00"), F(s, "algbw_gbps", "0.000"), F(s, "busbw_gbps", "0.000"),
                    s.TryGetProperty("cpu_s_per_gb", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetDouble().ToString("0.00", CultureInfo.InvariantCulture) : "–");
            if (result.TryGetProperty("transport", out var plan))
                io.Console.WriteLine($"transport: {plan.GetString()}");
            io.Console.WriteLine($"world_size={n}  busbw = algbw × 2(N−1)/N = algbw × {2.0 * (n - 1) / n:0.000}");
            io.Console.WriteLine("CPU s/GB: user + system time of all ranks during the timed iterations, per GB they sent");
            io.Console.Write(table);
            return EcsNetCli.ExitOk;
        }));
        return command;
    }

    private static string F(JsonElement e, string name, string format) => e.GetProperty(name).GetDouble().ToString(format, CultureInfo.InvariantCulture);

    /// <summary>Coordinator in this process, N `ecsnet worker` children; returns rank 0's result JSON.</summary>
    internal static async Task<JsonElement> RunWorkersAsync(CliIo io, int n, IEnumerable<string> jobArgs, TimeSpan timeout, CancellationToken ct)
    {
        await using var coordinator = await CoordinatorHost.StartAsync(new CoordinatorOptions { WorldSize = n, LeaseTimeout = TimeSpan.FromSeconds(30) }, cancellationToken: ct);
        using var workers = new LocalWorkers();
        for (var r = 0; r < n; r++)
            workers.Start(new[] { "worker", "--coordinator", coordinator.Address, "--rank", r.ToString(CultureInfo.InvariantCulture),
                                  "--world", n.ToString(CultureInfo.InvariantCulture) }.Concat(jobArgs));
        var finished = await workers.WaitAsync(timeout, ct);
        var failures = Enumerable.Range(0, n).Where(r => workers.ExitCode(r) != 0).ToArray();
        if (!finished || failures.Length > 0)
        {
            foreach (var r in failures)
                io.Err.WriteLine($"worker {r} exited {workers.ExitCode(r)}: {LastLines(workers.Error(r) + workers.Output(r), 5)}");
            foreach (var lost in coordinator.Status().Lost)
                io.Err.WriteLine($"coordinator: lost rank {lost.Rank} ({lost.Address}): {lost.Reason}");
            throw new InvalidOperationException(finished ? "a worker failed" : $"workers did not finish within {timeout.TotalSeconds:0} s");
        }
        var line = Enumerable.Range(0, n)
            .SelectMany(r => workers.Output(r).Split('\n'))
            .FirstOrDefault(l => l.StartsWith(WorkerCommand.ResultPrefix, StringComparison.Ordinal))
            ?? throw new InvalidOperationException("rank 0 printed no result");
        return JsonDocument.Parse(line[WorkerCommand.ResultPrefix.Length..]).RootElement.Clone();
    }

    private static string LastLines(string text, int count) =>
        string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(count));
}
