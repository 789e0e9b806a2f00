using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using EcsNet.Core.Nets;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Core.Weights;
using EcsNet.Data;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet bench train-cam`: the data-parallel equivalence bar of docs/METHOD.md §7 (N workers end with the
/// weights of one process) on the real trainer. On a synthetic VOC-layout set it runs `ecsnet train-cam` once
/// in one process and once with `--workers N` (N worker actors of an embedded cluster, syncing over the gRPC ring
/// on loopback) for each N, same config, seed and global batch, and prints the max abs difference of the final
/// weights (bar: 1e-5 in fp32).
/// </summary>
public static class BenchTrainCamCommand
{
    public static Command Build(CliIo io)
    {
        var workers = new Option<string>("--workers") { Description = "Worker process counts to compare with one process, comma separated.", DefaultValueFactory = _ => "2,3" };
        var steps = new Option<int>("--steps") { Description = "Training steps of every run.", DefaultValueFactory = _ => 20 };
        var methods = new Option<string>("--methods") { Description = "CAM methods to check, comma separated (cam, ecs).", DefaultValueFactory = _ => "cam,ecs" };
        var batch = new Option<int>("--batch") { Description = "Global batch (every worker count must divide it).", DefaultValueFactory = _ => 6 };
        var crop = new Option<int>("--crop") { Description = "Crop size.", DefaultValueFactory = _ => 64 };
        var images = new Option<int>("--images") { Description = "Synthetic training images.", DefaultValueFactory = _ => 24 };
        var bn = new Option<BatchNormMode>("--batchnorm")
        {
            Description = "camTraining.batchNormMode of the runs: eval (running statistics: exact equivalence) or batch (per-rank statistics: not equivalent).",
            DefaultValueFactory = _ => BatchNormMode.Eval,
        };
        var dropout = new Option<double>("--dropout") { Description = "cam.headDropout of the runs (exercises the per-position dropout masks).", DefaultValueFactory = _ => 0.5 };
        var work = new Option<string?>("--work") { Description = "Folder for the data and the runs (default: a temporary folder, deleted afterwards)." };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var command = new Command("train-cam", "Data-parallel train-cam with N worker actors vs one process: max abs weight difference after the same steps.");
        foreach (var o in new Option[] { workers, steps, methods, batch, crop, images, bn, dropout, work, json, CamCommands.SetOption })
            command.Options.Add(o);
        command.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var counts = RingCliOptions.Sizes(parse.GetValue(workers)!, "--workers");
            var global = parse.GetValue(batch);
            foreach (var n in counts)
                if (n < 1 || n > global)
                    throw new BadInputException("--workers", $"{n} must be between 1 and the global batch of {global}");
            var methodList = parse.GetValue(methods)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(m => Enum.TryParse<CamMethod>(m, true, out var v) ? v : throw new BadInputException("--methods", $"'{m}' is not cam or ecs")).ToArray();
            var stepCount = parse.GetValue(steps);
            if (stepCount < 1)
                throw new BadInputException("--steps", "must be at least 1");
            var imageCount = parse.GetValue(images);
            if (imageCount < global)
                throw new BadInputException("--images", $"{imageCount} images are fewer than the global batch of {global}");

            var root = parse.GetValue(work) ?? Path.Combine(Path.GetTempPath(), "ecsnet-bench-traincam-" + Guid.NewGuid().ToString("N")[..12]);
            bool temporary = parse.GetValue(work) is null;
            var rows = new List<Row>();
            try
            {
                var synth = SyntheticVoc.Generate(Path.Combine(root, "data"), new SynthOptions { TrainImages = imageCount, ValImages = 1, Size = Math.Max(64, parse.GetValue(crop)), Seed = 5 });
                int perEpoch = StepPlan.StepsPerEpoch(imageCount, global);
                var common = new List<string>
                {
                    "camTraining.batchSize=" + global.ToString(CultureInfo.InvariantCulture),
                    "camTraining.crop=" + parse.GetValue(crop).ToString(CultureInfo.InvariantCulture),
                    "camTraining.epochs=" + ((stepCount + perEpoch - 1) / perEpoch).ToString(CultureInfo.InvariantCulture),
                    "camTraining.stopAfterSteps=" + stepCount.ToString(CultureInfo.InvariantCulture),
                    "camTraining.warmupSteps=2",
                    "camTraining.batchNormMode=" + parse.GetValue(bn).ToString().ToLowerInvariant(),
                    "augment.longEdgeMin=" + parse.GetValue(crop).ToString(CultureInfo.InvariantCulture),
                    "augment.longEdgeMax=" + (parse.GetValue(crop) * 5 / 4).ToString(CultureInfo.InvariantCulture),
                    "cam.overlayRates=[1,2]",
                    "cam.headDropout=" + parse.GetValue(dropout).ToString(CultureInfo.InvariantCulture),
                };
                common.AddRange(parse.GetValue(CamCommands.SetOption) ?? Array.Empty<string>());

                foreach (var method in methodList)
                {
                    var name = method.ToString().ToLowerInvariant();
                    async Task<(string Run, double Seconds)> Train(string run, params string[] extra)
                    {
                        var dir = Path.Combine(root, run);
                        var args = new List<string> { "train-cam", "--voc", synth.Root, "--out", dir, "--method", name, "--threads", "1", "--set" };
                        args.AddRange(common);
                        args.AddRange(extra);
                        var output = new StringWriter();
                        var error = new StringWriter();
                        var clock = Stopwatch.StartNew();
                        var code = await EcsNetCli.RunAsync(args.ToArray(), CliIo.ToWriters(output, error), ct);
                        if (code != 0)
                            throw new InvalidOperationException($"train-cam {string.Join(' ', extra)} failed (exit {code}): {error.ToString().Trim()}");
                        return (dir, clock.Elapsed.TotalSeconds);
                    }

                    var (single, singleSeconds) = await Train($"{name}-1");
                    var reference = Weights(single);
                    foreach (var n in counts)
                    {
                        var (dp, seconds) = await Train($"{name}-{n}", "--workers", n.ToString(CultureInfo.InvariantCulture));
                        var weights = Weights(dp);
                        if (weights.Length != reference.Length)
                            throw new InvalidOperationException($"{dp}: {weights.Length} weights, the single-process run has {reference.Length}");
                        var diff = weights.Zip(reference).Max(p => Math.Abs((double)p.First - p.Second));
                        var moved = reference.Zip(Weights(single, initial: true)).Max(p => Math.Abs((double)p.First - p.Second));
                        rows.Add(new Row(name, n, stepCount, global, diff, moved, singleSeconds, seconds));
                    }
                }
            }
            finally
            {
                if (temporary)
                    try { Directory.Delete(root, true); } catch (IOException) { }
            }

            if (parse.GetValue(json))
            {
                io.Out.WriteLine(JsonSerializer.Serialize(rows.Select(r => new
                {
                    method = r.Method, workers = r.Workers, steps = r.Steps, global_batch = r.GlobalBatch,
                    max_abs_weight_diff = r.Diff, max_abs_weight_change = r.Moved, single_seconds = r.SingleSeconds, workers_seconds = r.WorkersSeconds,
                })));
            }
            else
            {
                var table = new Table().AddColumns("method", "N", "steps", "batch", "max |Δw|", "max |w−w0|", "1 proc s", "N workers s");
                foreach (var r in rows)
                    table.AddRow(r.Method, r.Workers.ToString(CultureInfo.InvariantCulture), r.Steps.ToString(CultureInfo.InvariantCulture), r.GlobalBatch.ToString(CultureInfo.InvariantCulture),
                        r.Diff.ToString("E2", CultureInfo.InvariantCulture), r.Moved.ToString("E2", CultureInfo.InvariantCulture),
                        r.SingleSeconds.ToString("0.0", CultureInfo.InvariantCulture), r.WorkersSeconds.ToString("0.0", CultureInfo.InvariantCulture));
                io.Console.Write(table);
            }
            return rows.All(r => r.Diff <= 1e-5) ? EcsNetCli.ExitOk : EcsNetCli.ExitFailure;
        }));
        return command;
    }

    private sealed record Row(string Method, int Workers, int Steps, int GlobalBatch, double Diff, double Moved, double SingleSeconds, double WorkersSeconds);

    /// <summary>The weights of a run's latest checkpoint (or, with <paramref name="initial"/>, of its untrained model).</summary>
    private static float[] Weights(string runDir, bool initial = false)
    {
        var config = CamStage.LoadRunConfig(runDir);
        TorchSharp.torch.manual_seed(config.CamTraining.Seed);
        using var model = CamStage.CreateModel(config);
        if (!initial)
            Checkpoints.LoadWeights(model, runDir);
        return model.parameters().SelectMany(p => p.detach().contiguous().data<float>().ToArray()).ToArray();
    }
}
