using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.Json;
using EcsNet.AllReduce;
using EcsNet.AllReduce.DataParallel;
using EcsNet.AllReduce.Rendezvous;
using EcsNet.AllReduce.Ring;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Core.Weights;
using EcsNet.Data;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// Data-parallel `train-cam` (docs/BENCHMARKS-allreduce.md, "Data-parallel CAM training").
/// <list type="bullet">
/// <item><c>--workers N</c>: this process starts a coordinator on 127.0.0.1 (a free port) and N child
/// processes <c>ecsnet train-cam &lt;the same arguments&gt; --coordinator URL --world N --rank r</c>, one per
/// rank (the parent trains nothing itself; it shows rank 0's progress and watches the children). If a child
/// dies, the others fail their next collective naming it; the parent then reports which rank was lost
/// first and stops every child within a bounded grace time.</item>
/// <item><c>--coordinator URL --world N [--rank r]</c>: this process is one rank of a job at an existing
/// coordinator (`ecsnet coordinator`), e.g. one per machine. Every rank must be given the same training
/// options and see the same run folder (shared storage): rank 0 writes checkpoints and logs, every rank
/// resumes from them.</item>
/// </list>
/// </summary>
internal static class TrainCamCluster
{
    /// <summary>Rank 0 prints one per step when started by a parent: "ECSNET-PROGRESS step max text".</summary>
    public const string ProgressPrefix = "ECSNET-PROGRESS ";

    public enum RunMode
    {
        SingleProcess,
        LocalWorkers,
        Rank,
    }

    /// <summary>The options of the data-parallel modes.</summary>
    public sealed class Options
    {
        public Option<int?> Workers { get; } = new("--workers")
        {
            Description = "Train data-parallel with N local processes (N >= 2): a coordinator on 127.0.0.1 and N child train-cam ranks " +
                          "with these options. The global batch stays --batch; N must divide it.",
        };

        public Option<string?> Coordinator { get; } = new("--coordinator")
        {
            Description = "Join the data-parallel job at this coordinator URL (http://host:port) as one rank; needs --world. " +
                          "Every rank runs train-cam with the same options and the same --out folder (shared storage).",
        };

        public Option<int?> World { get; } = new("--world") { Description = "Ranks of the data-parallel job (with --coordinator)." };

        public Option<int> Rank { get; } = new("--rank") { Description = "Rank to claim with --coordinator (-1: any free rank).", DefaultValueFactory = _ => -1 };

        public Option<string> Bind { get; } = new("--bind")
        {
            Description = "Address this rank's peer server listens on (with --coordinator; other ranks dial it).",
            DefaultValueFactory = _ => "127.0.0.1",
        };

        public Option<double> JoinTimeout { get; } = new("--join-timeout")
        {
            Description = "Seconds to wait for all ranks to join before failing.",
            DefaultValueFactory = _ => 120,
        };

        public Option<int> BucketKib { get; } = new("--bucket-kib")
        {
            Description = "Gradient bucket cap in KiB (default 25600, DDP's 25 MiB; the first bucket is 1 MiB as in DDP).",
            DefaultValueFactory = _ => 25 << 10,
        };

        /// <summary>Set by the --workers parent: rank 0 prints machine-readable progress lines.</summary>
        public Option<bool> ProgressLines { get; } = new("--progress-lines") { Description = "Print one progress line per step for a parent process.", Hidden = true };

        /// <summary>
        /// Fault injection for tests and drills: "RANK:STEP" makes that rank's process kill itself (SIGKILL, no
        /// clean-up) right after finishing STEP, as a crashed machine would.
        /// </summary>
        public Option<string?> KillAt { get; } = new("--test-kill") { Description = "RANK:STEP: that rank kills its own process after STEP (failure drills).", Hidden = true };

        /// <summary>Peer timeout 120 s by default: rank 0 may spend a while writing a checkpoint while the others wait.</summary>
        public RingCliOptions Ring { get; } = new(TimeSpan.FromSeconds(120));

        public void AddTo(Command command)
        {
            foreach (var o in new Option[] { Workers, Coordinator, World, Rank, Bind, JoinTimeout, BucketKib, ProgressLines, KillAt })
                command.Options.Add(o);
            Ring.AddTo(command);
        }

        public bool IsRoot(ParseResult parse) => parse.GetValue(Rank) == 0;

        /// <summary>Which mode the options ask for, checked against the training config.</summary>
        public RunMode Mode(ParseResult parse, ExperimentConfig config)
        {
            var workers = parse.GetValue(Workers);
            var url = parse.GetValue(Coordinator);
            var batch = config.CamTraining.BatchSize;
            if (workers is not null && url is not null)
                throw new BadInputException("--workers", "use either --workers N (local processes) or --coordinator URL (join a job), not both");
            if (parse.GetValue(BucketKib) < 1)
                throw new BadInputException("--bucket-kib", $"{parse.GetValue(BucketKib)} must be at least 1");
            if (workers is { } n)
            {
                if (n < 2 || n > 64)
                    throw new BadInputException("--workers", $"{n} is outside 2..64 (without --workers, train-cam trains in this process)");
                if (batch % n != 0)
                    throw new BadInputException("--workers", $"{n} ranks do not divide the global batch of {batch} (equal shards are needed for the averaged gradient to be the global batch's)");
                Ring.Read(parse);
                JoinSeconds(parse);
                KillStep(parse, -1);
                return RunMode.LocalWorkers;
            }
            if (url is null)
            {
                if (parse.GetValue(World) is not null)
                    throw new BadInputException("--world", "needs --coordinator");
                return RunMode.SingleProcess;
            }
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
                throw new BadInputException("--coordinator", $"'{url}' is not an http:// URL");
            var world = parse.GetValue(World) ?? throw new BadInputException("--world", "the job's rank count is required with --coordinator");
            if (world < 1 || world > 64)
                throw new BadInputException("--world", $"{world} is outside 1..64");
            if (batch % world != 0)
                throw new BadInputException("--world", $"{world} ranks do not divide the global batch of {batch}");
            var rank = parse.GetValue(Rank);
            if (rank < -1 || rank >= world)
                throw new BadInputException("--rank", $"{rank} is outside -1..{world - 1}");
            if (!System.Net.IPAddress.TryParse(parse.GetValue(Bind), out _))
                throw new BadInputException("--bind", $"'{parse.GetValue(Bind)}' is not an IP address");
            Ring.Read(parse);
            JoinSeconds(parse);
            KillStep(parse, -1);
            return RunMode.Rank;
        }

        /// <summary>The step after which <paramref name="rank"/> must kill itself (--test-kill), or 0.</summary>
        public int KillStep(ParseResult parse, int rank)
        {
            if (parse.GetValue(KillAt) is not { } text)
                return 0;
            var parts = text.Split(':');
            if (parts.Length != 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var r) || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var step) || step < 1)
                throw new BadInputException("--test-kill", $"'{text}' is not RANK:STEP");
            return r == rank ? step : 0;
        }

        public TimeSpan JoinSeconds(ParseResult parse)
        {
            var seconds = parse.GetValue(JoinTimeout);
            if (!(seconds > 0))
                throw new BadInputException("--join-timeout", $"{seconds} s must be positive");
            return TimeSpan.FromSeconds(seconds);
        }
    }

    /// <summary>What rank 0 prints at the end (after <see cref="WorkerCommand.ResultPrefix"/>).</summary>
    /// <param name="Buckets">Gradient buckets of the last step, <paramref name="Overlapped"/> of them started during backward.</param>
    /// <param name="WaitMs">Last step: all-reduce wait left after backward returned.</param>
    private sealed record RankResult(int Steps, int MaxSteps, string Checkpoint, bool Completed, int World,
        int Buckets, int Overlapped, double BackwardMs, double WaitMs)
    {
        public string SyncText => FormattableString.Invariant(
            $"last step: {Buckets} gradient buckets, {Overlapped} started during backward; backward {BackwardMs:0} ms, all-reduce wait after it {WaitMs:0} ms");
    }

    /// <summary>One rank of a job: joins the ring, trains its shards, reports a lost peer by rank.</summary>
    public static async Task<int> RunRankAsync(CliIo io, ParseResult parse, Options o, ExperimentConfig config, VocDataset dataset, string runDir, CancellationToken ct)
    {
        var world = parse.GetValue(o.World)!.Value;
        var ringOptions = o.Ring.Read(parse);
        var workerOptions = new WorkerOptions
        {
            Coordinator = parse.GetValue(o.Coordinator)!,
            RequestedRank = parse.GetValue(o.Rank),
            Bind = System.Net.IPAddress.Parse(parse.GetValue(o.Bind)!),
            Ring = ringOptions,
        };
        RankSession worker;
        try
        {
            worker = await RankSession.StartAsync(workerOptions, ct);
        }
        catch (Grpc.Core.RpcException e)
        {
            io.Err.WriteLine($"error: --coordinator: cannot register at {workerOptions.Coordinator}: {e.Status.StatusCode}: {e.Status.Detail}");
            return EcsNetCli.ExitFailure;
        }
        await using (worker)
        {
            RingAllReduce ring;
            try
            {
                ring = await worker.JoinRingAsync(g => g.WorldSize == world, o.JoinSeconds(parse), ct);
            }
            catch (Exception e) when (e is TimeoutException or GroupMembershipException)
            {
                io.Err.WriteLine($"error: rank {Math.Max(-1, parse.GetValue(o.Rank))}: {e.Message}");
                return EcsNetCli.ExitFailure;
            }
            string who = $"rank {ring.Rank} of {ring.WorldSize}";
            var dpOptions = new DataParallelOptions { BucketBytes = (long)parse.GetValue(o.BucketKib) << 10, Compression = ringOptions.Compression };
            using var sync = new DataParallelGradientSync(ring, dpOptions);
            var placement = new TrainingPlacement { Group = new FixedTrainingGroup(sync) };

            // stop when the coordinator drops this worker or goes away (e.g. the --workers parent died)
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var watch = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested && worker.DroppedReason is null)
                    await Task.Delay(250, stop.Token).ContinueWith(_ => { }, CancellationToken.None);
                stop.Cancel();
            }, CancellationToken.None);

            bool lines = parse.GetValue(o.ProgressLines);
            int killStep = o.KillStep(parse, ring.Rank);
            void Drill(StepReport r)
            {
                if (r.Step == killStep)
                    System.Diagnostics.Process.GetCurrentProcess().Kill();
            }
            TrainingResult result;
            try
            {
                if (ring.Rank == 0 && !lines)
                    result = await Progress.Run(io, $"train-cam (rank 0 of {world})", (report, ct2) =>
                        CamStage.Train(config, dataset, runDir, new TrainingCallbacks(OnStep: r =>
                        {
                            report(r.Step, r.MaxSteps, StepText(r));
                            Drill(r);
                        }), ct2, placement), stop.Token);
                else
                    result = await Task.Factory.StartNew(() => CamStage.Train(config, dataset, runDir, new TrainingCallbacks(OnStep: r =>
                        {
                            if (ring.Rank == 0)
                            {
                                io.Out.WriteLine(FormattableString.Invariant($"{ProgressPrefix}{r.Step} {r.MaxSteps} {StepText(r)}"));
                                io.Out.Flush();
                            }
                            Drill(r);
                        }), stop.Token, placement), stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            }
            catch (PeerFailedException e)
            {
                try { await worker.ReportFailureAsync(e, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None); }
                catch (Exception) { /* the coordinator may be gone too */ }
                io.Err.WriteLine($"error: {who}: lost rank {(e.Rank >= 0 ? e.Rank.ToString(CultureInfo.InvariantCulture) : "?")}" +
                                 $"{(e.Address.Length > 0 ? $" ({e.Address})" : "")}: {e.Message}");
                return EcsNetCli.ExitFailure;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested && worker.DroppedReason is { } reason)
            {
                io.Err.WriteLine($"error: {who}: stopped: {reason}");
                return EcsNetCli.ExitFailure;
            }
            finally
            {
                stop.Cancel();
                await watch;
            }
            if (ring.Rank == 0)
            {
                var stats = sync.LastSync;
                var summary = new RankResult(result.Steps, result.MaxSteps, result.Checkpoint ?? "", result.Completed, world,
                    stats?.Buckets ?? 0, stats?.BucketsStartedDuringBackward ?? 0, (stats?.BackwardSeconds ?? 0) * 1e3, (stats?.WaitSeconds ?? 0) * 1e3);
                io.Out.WriteLine(WorkerCommand.ResultPrefix + JsonSerializer.Serialize(summary));
                io.Out.Flush();
                if (!lines)
                {
                    io.Console.MarkupLine($"trained {result.Steps}/{result.MaxSteps} steps on {world} ranks; checkpoint [bold]{Markup.Escape(result.Checkpoint ?? "")}[/]");
                    if (stats is not null)
                        io.Console.WriteLine(summary.SyncText);
                }
            }
            await worker.LeaveAsync(CancellationToken.None);
            return EcsNetCli.ExitOk;
        }
    }

    internal static string StepText(StepReport r) =>
        FormattableString.Invariant($"epoch {r.Epoch + 1} lr {r.LearningRate:G3} loss {r.Loss:F4} (cls {r.Term("Classification"):F4} ce {r.Term("CrossEntropy"):F4})");

    /// <summary>The parent of <c>--workers N</c>: coordinator here, one child process per rank.</summary>
    public static async Task<int> RunLocalAsync(CliIo io, ParseResult parse, Options o, ExperimentConfig config, string runDir, CancellationToken ct)
    {
        int n = parse.GetValue(o.Workers)!.Value;
        var peerTimeout = o.Ring.Read(parse).PeerTimeout;
        var join = o.JoinSeconds(parse);
        var lost = new List<string>();
        await using var coordinator = await CoordinatorHost.StartAsync(
            new CoordinatorOptions { WorldSize = n, LeaseTimeout = TimeSpan.FromSeconds(30) }, System.Net.IPAddress.Loopback, 0, ct);
        coordinator.RankLost += r => { lock (lost) lost.Add($"coordinator: lost rank {r.Rank} ({r.Address}) of generation {r.Generation}: {r.Reason}"); };

        var childArgs = ChildArguments(parse, o, n);
        using var workers = new LocalWorkers();
        Action<int, int, string>? report = null;
        for (var r = 0; r < n; r++)
        {
            var args = childArgs.Concat(new[]
            {
                "--coordinator", coordinator.Address, "--world", n.ToString(CultureInfo.InvariantCulture),
                "--rank", r.ToString(CultureInfo.InvariantCulture), "--progress-lines",
            });
            workers.Start(args, r == 0 ? line => OnRootLine(line, report) : null);
        }

        var outcome = await Progress.Run(io, $"train-cam ({n} workers)", (progress, ct2) =>
        {
            report = progress;
            return Watch(workers, n, peerTimeout, join, ct2).GetAwaiter().GetResult();
        }, ct);

        if (outcome.Failures.Count == 0 && outcome.AllExited)
        {
            var line = workers.Output(0).Split('\n').Select(l => l.TrimEnd('\r'))
                .LastOrDefault(l => l.StartsWith(WorkerCommand.ResultPrefix, StringComparison.Ordinal));
            if (line is not null)
            {
                var result = JsonSerializer.Deserialize<RankResult>(line[WorkerCommand.ResultPrefix.Length..])!;
                io.Console.MarkupLine($"trained {result.Steps}/{result.MaxSteps} steps on {n} worker processes; checkpoint [bold]{Markup.Escape(result.Checkpoint ?? "")}[/]");
                if (result.Buckets > 0)
                    io.Console.WriteLine(result.SyncText);
                return EcsNetCli.ExitOk;
            }
            io.Err.WriteLine($"error: rank 0 exited without a result (run folder {runDir})");
            return EcsNetCli.ExitFailure;
        }

        // which rank went first: the earliest failure; the others' messages name it too
        foreach (var (rank, code) in outcome.Failures)
            io.Err.WriteLine($"rank {rank} exited with code {code}{Signal(code)}: {LastLines(workers.Error(rank) + workers.Output(rank), 4)}");
        lock (lost)
            foreach (var l in lost)
                io.Err.WriteLine(l);
        var first = outcome.Failures.FirstOrDefault();
        io.Err.WriteLine(outcome.Failures.Count > 0
            ? $"error: data-parallel training failed: rank {first.Rank} was lost first (exit code {first.Code}{Signal(first.Code)}); " +
              FormattableString.Invariant($"the other ranks {(outcome.AllExited ? "stopped" : "were killed")} {outcome.StopSeconds:0.0} s later; ") +
              $"the last checkpoint of rank 0 is in {Checkpoints.Latest(runDir) ?? "(none yet)"}; run the same command again to resume"
            : $"error: data-parallel training: workers did not finish (killed)");
        return EcsNetCli.ExitFailure;
    }

    private static string Signal(int code) => code > 128 && code < 160 ? $", killed by signal {code - 128}" : "";

    private static void OnRootLine(string line, Action<int, int, string>? report)
    {
        if (report is null || !line.StartsWith(ProgressPrefix, StringComparison.Ordinal))
            return;
        var parts = line[ProgressPrefix.Length..].Split(' ', 3);
        if (parts.Length >= 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out var step) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var max))
            report(step, max, parts.Length > 2 ? parts[2] : "");
    }

    /// <param name="StopSeconds">From the first failed exit to the last exit (how long the survivors took to stop).</param>
    private sealed record Outcome(List<(int Rank, int Code)> Failures, bool AllExited, double StopSeconds);

    /// <summary>
    /// Waits for every child. After the first non-zero exit the others get the peer timeout plus a margin to
    /// notice and exit on their own (they name the lost rank), then are killed: the parent never hangs on a
    /// lost rank.
    /// </summary>
    private static async Task<Outcome> Watch(LocalWorkers workers, int n, TimeSpan peerTimeout, TimeSpan join, CancellationToken ct)
    {
        var failures = new List<(int Rank, int Code)>();
        var pending = Enumerable.Range(0, n).ToDictionary(r => workers.WaitForExitAsync(r, ct), r => r);
        DateTime? deadline = null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double firstFailure = 0;
        while (pending.Count > 0)
        {
            var wait = Task.WhenAny(pending.Keys);
            if (deadline is { } d)
            {
                var left = d - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || await Task.WhenAny(wait, Task.Delay(left, ct)) != wait)
                {
                    workers.KillAll();
                    foreach (var (task, rank) in pending)
                    {
                        try { await task.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None); } catch (Exception) { }
                        failures.Add((rank, workers.ExitCode(rank)));
                    }
                    return new Outcome(failures, false, clock.Elapsed.TotalSeconds - firstFailure);
                }
            }
            var done = await wait;
            var r = pending[done];
            pending.Remove(done);
            try
            {
                await done;
            }
            catch (OperationCanceledException)
            {
                workers.KillAll();
                throw;
            }
            if (workers.ExitCode(r) != 0)
            {
                if (failures.Count == 0)
                    firstFailure = clock.Elapsed.TotalSeconds;
                failures.Add((r, workers.ExitCode(r)));
                deadline ??= DateTime.UtcNow + peerTimeout + join / 4 + TimeSpan.FromSeconds(10);
            }
        }
        return new Outcome(failures, true, failures.Count > 0 ? clock.Elapsed.TotalSeconds - firstFailure : 0);
    }

    /// <summary>This invocation's arguments without --workers (and with a per-process thread count unless one was given).</summary>
    private static List<string> ChildArguments(ParseResult parse, Options o, int n)
    {
        var args = new List<string> { "train-cam" };
        var tokens = parse.Tokens;
        bool threadsGiven = false;
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            if (t.Type == TokenType.Command)
                continue;
            if (t.Type == TokenType.Option && t.Value == o.Workers.Name)
            {
                if (i + 1 < tokens.Count && tokens[i + 1].Type == TokenType.Argument)
                    i++;
                continue;
            }
            if (t.Type == TokenType.Option && t.Value == "--threads")
                threadsGiven = true;
            args.Add(t.Value);
        }
        if (!threadsGiven)
            args.AddRange(new[] { "--threads", Math.Max(1, Environment.ProcessorCount / n).ToString(CultureInfo.InvariantCulture) });
        return args;
    }

    private static string LastLines(string text, int count) =>
        string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith(ProgressPrefix, StringComparison.Ordinal)).TakeLast(count));
}
