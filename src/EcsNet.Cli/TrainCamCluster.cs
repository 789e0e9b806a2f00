using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EcsNet.AllReduce;
using EcsNet.AllReduce.DataParallel;
using EcsNet.AllReduce.Rendezvous;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Training;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Data;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// Data-parallel `train-cam` (docs/ARCHITECTURE.md; docs/BENCHMARKS-allreduce.md, "Data-parallel CAM training").
/// <list type="bullet">
/// <item><c>--workers N</c>: the training runs on an embedded one-process cluster — the training coordinator and N
/// worker actors, each a replica on <c>--device</c>, syncing gradients over the gRPC ring on 127.0.0.1, with their
/// samples made by the sample entities — exactly as on a multi-node cluster.</item>
/// <item><c>--coordinator URL --world N [--rank r]</c>: this process is one rank of a job at an existing
/// coordinator (`ecsnet coordinator`), e.g. one per machine. Every rank must be given the same training
/// options and see the same run folder (shared storage): rank 0 writes checkpoints and logs, every rank
/// resumes from them.</item>
/// </list>
/// </summary>
internal static class TrainCamCluster
{
    public enum RunMode
    {
        SingleProcess,
        EmbeddedCluster,
        Rank,
    }

    /// <summary>The options of the data-parallel modes.</summary>
    public sealed class Options
    {
        public Option<int?> Workers { get; } = new("--workers")
        {
            Description = "Train data-parallel on N worker actors of an embedded cluster in this process (the training coordinator, " +
                          "the workers and the sample entities). The global batch stays --batch, split over them.",
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

        /// <summary>
        /// Fault injection for tests and drills: "RANK:STEP" makes that rank's process kill itself (SIGKILL, no
        /// clean-up) right after finishing STEP, as a crashed machine would.
        /// </summary>
        public Option<string?> KillAt { get; } = new("--test-kill") { Description = "RANK:STEP: that rank kills its own process after STEP (failure drills).", Hidden = true };

        /// <summary>Peer timeout 120 s by default: rank 0 may spend a while writing a checkpoint while the others wait.</summary>
        public RingCliOptions Ring { get; } = new(TimeSpan.FromSeconds(120));

        public void AddTo(Command command)
        {
            foreach (var o in new Option[] { Workers, Coordinator, World, Rank, Bind, JoinTimeout, BucketKib, KillAt })
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
                throw new BadInputException("--workers", "use either --workers N (an embedded cluster) or --coordinator URL (join a job), not both");
            if (parse.GetValue(BucketKib) < 1)
                throw new BadInputException("--bucket-kib", $"{parse.GetValue(BucketKib)} must be at least 1");
            if (workers is { } n)
            {
                if (n < 1 || n > 64)
                    throw new BadInputException("--workers", $"{n} is outside 1..64 (without --workers, train-cam trains in this process)");
                if (n > batch)
                    throw new BadInputException("--workers", $"{n} workers cannot share a global batch of {batch} (each needs at least one image)");
                if (parse.GetValue(KillAt) is not null)
                    throw new BadInputException("--test-kill", "kills a rank process: it goes with --coordinator, not with --workers (the workers are actors of this process)");
                Ring.Read(parse);
                return RunMode.EmbeddedCluster;
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
            Host = o.Ring.Host(parse),
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
            IGroupCollective ring;
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

            // stop when the coordinator drops this worker or goes away (its process died)
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var watch = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested && worker.DroppedReason is null)
                    await Task.Delay(250, stop.Token).ContinueWith(_ => { }, CancellationToken.None);
                stop.Cancel();
            }, CancellationToken.None);

            int killStep = o.KillStep(parse, ring.Rank);
            void Drill(StepReport r)
            {
                if (r.Step == killStep)
                    System.Diagnostics.Process.GetCurrentProcess().Kill();
            }
            TrainingResult result;
            try
            {
                if (ring.Rank == 0)
                    result = await Progress.Run(io, $"train-cam (rank 0 of {world})", (report, ct2) =>
                        CamStage.Train(config, dataset, runDir, new TrainingCallbacks(OnStep: r =>
                        {
                            report(r.Step, r.MaxSteps, StepText(r));
                            Drill(r);
                        }), ct2, placement), stop.Token);
                else
                    result = await Task.Factory.StartNew(() => CamStage.Train(config, dataset, runDir, new TrainingCallbacks(OnStep: Drill),
                        stop.Token, placement), stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
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

    /// <summary><c>--workers N</c>: the training as a run of an embedded cluster with N worker actors.</summary>
    public static async Task<int> RunEmbeddedAsync(CliIo io, ParseResult parse, Options o, ExperimentConfig config, VocDataset dataset,
        string runDir, string device, CancellationToken ct)
    {
        int n = parse.GetValue(o.Workers)!.Value;
        var ring = o.Ring.Read(parse);
        Directory.CreateDirectory(runDir);
        var experiment = Path.GetFullPath(Path.Combine(runDir, CamStage.ConfigFileName));
        ExperimentJson.Write(experiment, config);
        var job = new TrainingJob
        {
            Stage = CamStage.StageName, ExperimentFile = experiment, VocRoot = dataset.Root, Split = dataset.Split, Voc = dataset.Options,
            RunDir = Path.GetFullPath(runDir),
        };
        var spec = new RunSpec
        {
            Run = PipelineCommands.RunId(runDir), Workers = n, Training = TrainingMessages.ToSpec(job), RunDir = job.RunDir,
            Settings = TrainingMessages.ToSettings(new DataParallelTraining
            {
                BucketBytes = (long)parse.GetValue(o.BucketKib) << 10, Compression = ring.Compression, PeerTimeout = ring.PeerTimeout,
                Transport = ring.Transport,
            }),
        };
        await using var cluster = await EmbeddedCluster.StartAsync(io, n, device, ct);
        var status = await cluster.RunAsync(io, $"train-cam ({n} worker{(n == 1 ? "" : "s")})", spec, ct);
        var summary = status.Stages.FirstOrDefault();
        io.Console.MarkupLine($"trained on {n} worker actor{(n == 1 ? "" : "s")}: {Markup.Escape(summary?.Note ?? "")}");
        return EcsNetCli.ExitOk;
    }
}
