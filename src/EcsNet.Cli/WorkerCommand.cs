using System.CommandLine;
using System.Text.Json;
using EcsNet.AllReduce;
using EcsNet.AllReduce.DataParallel;
using EcsNet.AllReduce.Rendezvous;
using EcsNet.Bench;
using EcsNet.Core.Training;
using EcsNet.Data;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet worker`: joins a job at a coordinator and takes part in its collectives. Without a job option it
/// checks each generation it is part of with one all-reduce and waits for the next (until Ctrl-C or until
/// dropped); `--bench-sizes` runs the all-reduce benchmark, `--dataparallel-steps` the data-parallel checks.
/// Rank 0 prints a job's result as one JSON line prefixed with <see cref="ResultPrefix"/>. Training ranks
/// are `ecsnet train-cam … --coordinator URL --world N` processes (<see cref="TrainCamCluster"/>).
/// </summary>
public static class WorkerCommand
{
    public const string ResultPrefix = "ECSNET-RESULT ";

    public static Command Build(CliIo io)
    {
        var coordinator = new Option<string>("--coordinator") { Description = "Coordinator URL, e.g. http://127.0.0.1:29500.", Required = true };
        var device = new Option<string>("--device") { Description = "Device of this replica: cpu or cuda:N.", DefaultValueFactory = _ => "cpu" };
        var rank = new Option<int>("--rank") { Description = "Rank to claim (-1: any; a rank already held is refused).", DefaultValueFactory = _ => -1 };
        var bind = new Option<string>("--bind") { Description = "Address this worker's peer server listens on (peers dial it).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Peer server port (0: any free port).", DefaultValueFactory = _ => 0 };
        var world = new Option<int>("--world") { Description = "Wait for a generation of exactly this many workers (0: any).", DefaultValueFactory = _ => 0 };
        var joinTimeout = new Option<double>("--join-timeout") { Description = "Seconds to wait for a suitable generation.", DefaultValueFactory = _ => 120 };
        var sizes = new Option<string?>("--bench-sizes") { Description = "Run the all-reduce benchmark on these sizes in MiB (e.g. 1,4,16), then leave." };
        var runs = new Option<int>("--runs") { Description = "Benchmark iterations R (per size max(R, min(101, R*64/MiB)), as the gloo peer).", DefaultValueFactory = _ => 11 };
        var warmup = new Option<int>("--warmup") { Description = "Benchmark warm-up iterations per size.", DefaultValueFactory = _ => 2 };
        var settle = new Option<int>("--settle-mib") { Description = "Benchmark: untimed all-reduces of each size, this many MiB of it, before timing (steady state).", DefaultValueFactory = _ => 0 };
        var dpSteps = new Option<int>("--dataparallel-steps") { Description = "Run the data-parallel checks (equivalence training for this many steps, then the overlap timing), then leave." };
        var bucketKib = new Option<int>("--bucket-kib") { Description = "Gradient bucket cap in KiB for the data-parallel checks (default 25600, DDP's 25 MiB).", DefaultValueFactory = _ => 25 << 10 };
        var minBuckets = new Option<int>("--min-buckets") { Description = "Buckets a model gets at least in the data-parallel checks (0: DDP's plain cap).", DefaultValueFactory = _ => new DataParallelOptions().MinBuckets };
        var lastBucketKib = new Option<int>("--last-bucket-kib") { Description = "Cap of the last bucket in KiB in the data-parallel checks (0: none of its own).", DefaultValueFactory = _ => (int)(new DataParallelOptions().LastBucketBytes >> 10) };
        var overlapSteps = new Option<int>("--overlap-steps") { Description = "Timed steps per mode of the overlap measurement (0: skip it).", DefaultValueFactory = _ => 8 };
        var imageSize = new Option<int>("--overlap-image") { Description = "Image side of the overlap measurement's batch.", DefaultValueFactory = _ => 112 };
        var threads = new Option<int>("--threads") { Description = "LibTorch intra-op threads of the data-parallel checks (0: LibTorch's default, one per core).", DefaultValueFactory = _ => 0 };
        var ring = new RingCliOptions();

        var command = new Command("worker", "Join a data-parallel job at a coordinator and take part in its all-reduces (checks and benchmarks). " +
                                          "A training rank is `ecsnet train-cam <options> --coordinator URL --world N` instead.");
        foreach (var o in new Option[] { coordinator, device, rank, bind, port, world, joinTimeout, sizes, runs, warmup, settle, dpSteps, bucketKib, minBuckets, lastBucketKib, overlapSteps, imageSize, threads })
            command.Options.Add(o);
        ring.AddTo(command);
        command.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var url = parse.GetValue(coordinator)!;
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
                throw new BadInputException("--coordinator", $"'{url}' is not an http:// URL");
            if (!System.Net.IPAddress.TryParse(parse.GetValue(bind), out var bindAddress))
                throw new BadInputException("--bind", $"'{parse.GetValue(bind)}' is not an IP address");
            var wanted = parse.GetValue(world);
            var benchSizes = parse.GetValue(sizes) is { } text ? RingCliOptions.Sizes(text, "--bench-sizes") : null;
            var options = new WorkerOptions
            {
                Coordinator = url,
                Device = RingCliOptions.Device(parse.GetValue(device)!),
                RequestedRank = parse.GetValue(rank),
                Bind = bindAddress,
                Port = parse.GetValue(port),
                Ring = ring.Read(parse),
                Host = ring.Host(parse),
            };

            await using var worker = await RankSession.StartAsync(options, ct);
            var timeout = TimeSpan.FromSeconds(parse.GetValue(joinTimeout));
            bool Suitable(GenerationInfo g) => wanted <= 0 || g.WorldSize == wanted;

            if (benchSizes is not null || parse.GetValue(dpSteps) > 0)
            {
                var collective = await worker.JoinRingAsync(Suitable, timeout, ct);
                object result;
                try
                {
                    if (benchSizes is not null)
                        result = BenchJson(collective, await AllReduceBench.RunAsync(collective, benchSizes, parse.GetValue(runs), parse.GetValue(warmup), parse.GetValue(settle), ct));
                    else
                    {
                        if (parse.GetValue(threads) > 0)
                            TorchSharp.torch.set_num_threads(parse.GetValue(threads));
                        result = await DataParallelJson(collective, parse.GetValue(dpSteps), parse.GetValue(overlapSteps), parse.GetValue(imageSize),
                            new DataParallelOptions
                            {
                                BucketBytes = (long)parse.GetValue(bucketKib) << 10, MinBuckets = parse.GetValue(minBuckets),
                                LastBucketBytes = (long)parse.GetValue(lastBucketKib) << 10, Compression = options.Ring.Compression,
                            });
                    }
                }
                catch (PeerFailedException e)
                {
                    try { await worker.ReportFailureAsync(e, ct); } catch (Grpc.Core.RpcException) { }
                    throw;
                }
                if (collective.Rank == 0)
                {
                    io.Out.WriteLine(ResultPrefix + JsonSerializer.Serialize(result));
                    io.Out.Flush();
                }
                await worker.BarrierAsync(long.MaxValue, ct);
                await worker.LeaveAsync(ct);
                return EcsNetCli.ExitOk;
            }

            // no job: check every generation this worker belongs to, until cancelled or dropped
            while (!ct.IsCancellationRequested)
            {
                IGroupCollective collective;
                try
                {
                    collective = await worker.JoinRingAsync(Suitable, null, ct);
                }
                catch (GroupMembershipException e)
                {
                    io.Err.WriteLine($"error: {e.Message}");
                    return EcsNetCli.ExitFailure;
                }
                var probe = new float[] { collective.Rank + 1f };
                try
                {
                    await collective.AllReduceAsync(probe, ReduceOp.Sum, cancellationToken: ct);
                    var expect = collective.WorldSize * (collective.WorldSize + 1) / 2f;
                    io.Out.WriteLine($"generation {collective.Generation}: rank {collective.Rank} of {collective.WorldSize} ({options.Device}), all-reduce check {(probe[0] == expect ? "ok" : $"WRONG ({probe[0]} != {expect})")}");
                }
                catch (PeerFailedException e)
                {
                    io.Err.WriteLine($"generation {collective.Generation}: {e.Message}");
                    try { await worker.ReportFailureAsync(e, ct); } catch (Grpc.Core.RpcException) { }
                }
                io.Out.Flush();
            }
            return EcsNetCli.ExitOk;
        }));
        return command;
    }

    private static object BenchJson(IGroupCollective collective, IReadOnlyList<AllReduceBenchResult> results) => new
    {
        world = results.FirstOrDefault()?.WorldSize ?? 0,
        transport = collective.Plan,
        sizes = results.Select(r => new
        {
            mib = r.SizeMiB,
            ok = r.Correct,
            iters = r.Seconds.Count,
            median_ms = r.MedianSeconds * 1e3,
            min_ms = r.MinSeconds * 1e3,
            max_ms = r.MaxSeconds * 1e3,
            algbw_gbps = r.AlgBandwidth,
            busbw_gbps = r.BusBandwidth,
            cpu_s_per_gb = double.IsFinite(r.CpuSecondsPerGB) ? r.CpuSecondsPerGB : (double?)null,
            tiny_us = double.IsFinite(r.TinyMedianSeconds) ? r.TinyMedianSeconds * 1e6 : (double?)null,
        }).ToArray(),
    };

    private static async Task<object> DataParallelJson(ICollective collective, int steps, int overlapSteps, int imageSize, DataParallelOptions options)
    {
        var weights = await DataParallelCheck.DataParallelAsync(collective, steps, options);
        DataParallelCheck.OverlapResult? overlap = overlapSteps > 0
            ? await DataParallelCheck.OverlapAsync(collective, overlapSteps, imageSize, perRankBatch: 2, options)
            : null;
        return new
        {
            world = collective.WorldSize,
            transport = (collective as IGroupCollective)?.Plan,
            steps,
            weights,
            overlap = overlap is null ? null : new
            {
                parameters = overlap.Parameters,
                buckets = overlap.Buckets,
                buckets_started_in_backward = overlap.Started,
                backward_only_ms = overlap.BackwardOnly * 1e3,
                sync_after_backward_ms = overlap.SyncAfterBackward * 1e3,
                overlapped_ms = overlap.Overlapped * 1e3,
                allreduce_after_backward_ms = overlap.SerialWait * 1e3,
                exposed_wait_ms = overlap.ExposedWait * 1e3,
                hidden_fraction = overlap.HiddenFraction,
            },
        };
    }
}
