using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using EcsNet.AllReduce.Rendezvous;
using EcsNet.Data;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet bench reform`: N `ecsnet worker` processes form a ring and check it with an all-reduce; one is killed
/// (SIGKILL), and the time until every survivor has checked the next generation's ring is reported. The
/// measurement behind docs/SCALING.md's re-form figure.
/// </summary>
public static partial class BenchReformCommand
{
    public static Command Build(CliIo io)
    {
        var world = new Option<int>("--world") { Description = "Worker processes to start.", DefaultValueFactory = _ => 16 };
        var victim = new Option<int>("--kill-rank") { Description = "Rank to kill once the first ring is checked.", DefaultValueFactory = _ => 5 };
        var timeout = new Option<double>("--timeout") { Description = "Seconds each phase may take.", DefaultValueFactory = _ => 300 };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var ring = new RingCliOptions();
        var command = new Command("reform", "Time for N worker processes to form a ring, and to re-form it after one is killed with SIGKILL.");
        foreach (var o in new Option[] { world, victim, timeout, json })
            command.Options.Add(o);
        ring.AddTo(command);
        command.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var n = parse.GetValue(world);
            if (n < 2 || n > 64)
                throw new BadInputException("--world", $"{n} is outside 2..64");
            var kill = parse.GetValue(victim);
            if (kill < 0 || kill >= n)
                throw new BadInputException("--kill-rank", $"{kill} is not a rank of {n}");
            ring.Read(parse);
            var limit = TimeSpan.FromSeconds(parse.GetValue(timeout));

            await using var coordinator = await CoordinatorHost.StartAsync(new CoordinatorOptions { WorldSize = n, LeaseTimeout = TimeSpan.FromSeconds(10) }, cancellationToken: ct);
            using var workers = new LocalWorkers();
            // "generation G: rank R of W (...), all-reduce check ok", as each worker prints it (WorkerCommand)
            var checkedIn = new Dictionary<long, HashSet<int>>();
            var changed = new SemaphoreSlim(0);
            var clock = Stopwatch.StartNew();
            for (var r = 0; r < n; r++)
            {
                var worker = r;
                workers.Start(new[] { "worker", "--coordinator", coordinator.Address, "--rank", r.ToString(CultureInfo.InvariantCulture) }.Concat(ring.Forward(parse)),
                    line =>
                    {
                        var m = CheckLine().Match(line);
                        if (!m.Success)
                            return;
                        lock (checkedIn)
                        {
                            var g = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                            if (!checkedIn.TryGetValue(g, out var set))
                                checkedIn[g] = set = new HashSet<int>();
                            set.Add(worker);
                        }
                        changed.Release();
                    });
            }

            async Task<TimeSpan> WaitForAsync(long generation, int count, string what)
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
                deadline.CancelAfter(limit);
                while (true)
                {
                    lock (checkedIn)
                        if (checkedIn.TryGetValue(generation, out var set) && set.Count >= count)
                            return clock.Elapsed;
                    try
                    {
                        await changed.WaitAsync(deadline.Token);
                    }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                    {
                        throw new TimeoutException($"{what} did not happen within {limit.TotalSeconds:0} s " +
                                                   $"(checked: {string.Join("; ", checkedIn.Select(kv => $"generation {kv.Key}: {kv.Value.Count}"))})");
                    }
                }
            }

            var formed = await WaitForAsync(1, n, $"the first ring of {n} workers");
            var status = coordinator.Status().Current;
            var killedPid = workers.Pid(kill);
            var killedAt = clock.Elapsed;
            workers.Signal(kill, "KILL");
            var reformed = await WaitForAsync(2, n - 1, $"the ring of the {n - 1} survivors");
            var lost = coordinator.Status().Lost.FirstOrDefault();
            var result = new
            {
                world = n,
                transport = parse.GetValue(ring.Transport),
                formed_s = formed.TotalSeconds,
                killed_rank = kill,
                killed_pid = killedPid,
                lost_reason = lost?.Reason,
                reform_s = (reformed - killedAt).TotalSeconds,
                survivors = n - 1,
                generation = status?.Number,
            };
            workers.KillAll();
            if (parse.GetValue(json))
                io.Out.WriteLine(JsonSerializer.Serialize(result));
            else
                io.Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{n} workers formed and checked a ring in {formed.TotalSeconds:0.00} s; after SIGKILL of rank {kill} the {n - 1} survivors " +
                    $"checked the next ring in {result.reform_s:0.000} s (coordinator: {lost?.Reason})"));
            return EcsNetCli.ExitOk;
        }));
        return command;
    }

    [GeneratedRegex(@"^generation (\d+): rank \d+ of \d+ .*all-reduce check ok")]
    private static partial Regex CheckLine();
}
