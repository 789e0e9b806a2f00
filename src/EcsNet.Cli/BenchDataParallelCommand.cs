using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EcsNet.Bench;
using EcsNet.AllReduce.DataParallel;
using EcsNet.Data;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet bench dataparallel`: N local worker processes train a small CNN on shards of one global batch;
/// the weights must equal single-process training on the whole batch (max abs difference printed), then
/// the share of all-reduce time hidden behind backward is measured on the small CAM net.
/// </summary>
public static class BenchDataParallelCommand
{
    public static Command Build(CliIo io)
    {
        var world = new Option<int>("--world") { Description = "Worker processes to start (ranks).", DefaultValueFactory = _ => 2 };
        var steps = new Option<int>("--steps") { Description = "SGD steps of the equivalence check.", DefaultValueFactory = _ => 20 };
        var overlapSteps = new Option<int>("--overlap-steps") { Description = "Timed steps per mode of the overlap measurement (0: skip).", DefaultValueFactory = _ => 8 };
        var image = new Option<int>("--overlap-image") { Description = "Image side of the overlap measurement's batch (2 images per rank).", DefaultValueFactory = _ => 112 };
        var threads = new Option<int?>("--threads")
        {
            Description = "LibTorch threads per worker (default: the cores over the workers, at least 1, as a job on one host is set up; 0: LibTorch's default, which oversubscribes the cores).",
        };
        var bucketKib = new Option<int>("--bucket-kib") { Description = "Gradient bucket cap in KiB (default 25600 = DDP's 25 MiB; the first bucket is 1 MiB as in DDP).", DefaultValueFactory = _ => 25 << 10 };
        var minBuckets = new Option<int>("--min-buckets") { Description = $"Buckets a model gets at least: the cap shrinks to its gradient bytes over this, not below 256 KiB (0: DDP's plain cap; default {new DataParallelOptions().MinBuckets}).", DefaultValueFactory = _ => new DataParallelOptions().MinBuckets };
        var lastBucketKib = new Option<int>("--last-bucket-kib") { Description = $"Cap of the last bucket (the first layers) in KiB, all-reduced after backward (0: no separate last bucket; default {new DataParallelOptions().LastBucketBytes >> 10}).", DefaultValueFactory = _ => (int)(new DataParallelOptions().LastBucketBytes >> 10) };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds the whole run may take before the workers are killed.", DefaultValueFactory = _ => 900 };
        var ring = new RingCliOptions();
        var command = new Command("dataparallel", "Data-parallel training across N local processes: equivalence with one process, and backward/all-reduce overlap.");
        foreach (var o in new Option[] { world, steps, overlapSteps, image, bucketKib, minBuckets, lastBucketKib, threads, json, timeout })
            command.Options.Add(o);
        ring.AddTo(command);
        command.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var n = parse.GetValue(world);
            if (n < 1 || n > DataParallelCheck.GlobalBatch)
                throw new BadInputException("--world", $"{n} is outside 1..{DataParallelCheck.GlobalBatch} (the global batch)");
            if (DataParallelCheck.GlobalBatch % n != 0)
                throw new BadInputException("--world", $"{n} does not divide the global batch of {DataParallelCheck.GlobalBatch} (equal shards are needed for equality)");
            var stepCount = parse.GetValue(steps);
            if (stepCount < 1)
                throw new BadInputException("--steps", "must be at least 1");
            ring.Read(parse);
            var args = new List<string>
            {
                "--dataparallel-steps", stepCount.ToString(CultureInfo.InvariantCulture),
                "--overlap-steps", parse.GetValue(overlapSteps).ToString(CultureInfo.InvariantCulture),
                "--overlap-image", parse.GetValue(image).ToString(CultureInfo.InvariantCulture),
                "--threads", (parse.GetValue(threads) ?? Math.Max(1, Environment.ProcessorCount / n)).ToString(CultureInfo.InvariantCulture),
                "--bucket-kib", parse.GetValue(bucketKib).ToString(CultureInfo.InvariantCulture),
                "--min-buckets", parse.GetValue(minBuckets).ToString(CultureInfo.InvariantCulture),
                "--last-bucket-kib", parse.GetValue(lastBucketKib).ToString(CultureInfo.InvariantCulture),
            };
            args.AddRange(ring.Forward(parse));
            var result = await BenchAllReduceCommand.RunWorkersAsync(io, n, args, TimeSpan.FromSeconds(parse.GetValue(timeout)), ct);

            var reference = DataParallelCheck.SingleProcess(stepCount);
            var weights = result.GetProperty("weights").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            if (weights.Length != reference.Length)
                throw new InvalidOperationException($"rank 0 returned {weights.Length} weights, the reference has {reference.Length}");
            var diff = weights.Zip(reference).Max(p => Math.Abs((double)p.First - p.Second));
            var overlap = result.GetProperty("overlap");
            if (parse.GetValue(json))
            {
                io.Out.WriteLine(JsonSerializer.Serialize(new { world = n, steps = stepCount, max_abs_weight_diff = diff, overlap }));
                return EcsNetCli.ExitOk;
            }
            io.Out.WriteLine($"equivalence: {n} processes x {DataParallelCheck.GlobalBatch / n} samples vs 1 process x {DataParallelCheck.GlobalBatch}, " +
                             $"{stepCount} SGD steps: max abs weight difference {diff:E2} ({(diff <= 1e-5 ? "within" : "OUTSIDE")} 1e-5)");
            if (overlap.ValueKind == JsonValueKind.Object)
            {
                double V(string name) => overlap.GetProperty(name).GetDouble();
                io.Out.WriteLine($"overlap (small CAM net, {overlap.GetProperty("parameters").GetInt64()} parameters, {overlap.GetProperty("buckets").GetInt32()} buckets, " +
                                 $"{overlap.GetProperty("buckets_started_in_backward").GetInt32()} started during backward): " +
                                 $"step with backward alone {V("backward_only_ms"):0.0} ms, with backward then all-reduce {V("sync_after_backward_ms"):0.0} ms, " +
                                 $"overlapped {V("overlapped_ms"):0.0} ms; all-reduce after backward {V("allreduce_after_backward_ms"):0.0} ms without overlap, " +
                                 $"{V("exposed_wait_ms"):0.0} ms with it: {V("hidden_fraction") * 100:0}% hidden");
            }
            return diff <= 1e-5 ? EcsNetCli.ExitOk : EcsNetCli.ExitFailure;
        }));
        return command;
    }
}
