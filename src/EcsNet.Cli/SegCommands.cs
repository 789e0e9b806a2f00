using System.CommandLine;
using EcsNet.Core.Inference;
using EcsNet.Core.Nets;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Data;
using EcsNet.Labels.Evaluation;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>`ecsnet train-seg` and `ecsnet infer-seg` (docs/METHOD.md §5, docs/SEG.md): DeepLab on pseudo labels.</summary>
public static class SegCommands
{
    /// <summary>
    /// The dense CRF used by <c>infer-seg --crf</c>: (image, probabilities [K·H·W], K) → refined probabilities.
    /// The dense CRF (PSA defaults) used by --crf; null would make --crf stop with a clear error.
    /// </summary>
    internal static Func<RgbImage, float[], int, float[]>? DenseCrf { get; set; } =
        (image, probs, labels) => EcsNet.Labels.Crf.DenseCrf.Infer(image, probs, labels);

    public static IEnumerable<Command> Build(CliIo io)
    {
        yield return TrainSeg(io);
        yield return InferSeg(io);
    }

    private static Command TrainSeg(CliIo io)
    {
        var voc = new Option<string>("--voc") { Description = "VOC2012 (or VOCdevkit) folder.", Required = true };
        var labels = new Option<string>("--labels") { Description = "Folder of pseudo-label PNGs named <id>.png (e.g. RUN/rw/labels); they replace the masks.", Required = true };
        var split = new Option<string>("--split") { Description = "Split to train on (train, train_aug, or an id-list file).", DefaultValueFactory = _ => "train" };
        var cpu = ExperimentConfig.SmallCpu;
        var backbone = new Option<BackboneKind?>("--backbone")
        {
            Description = $"small, resnet38 (dilated head), vgg16 (DeepLab-v1 LargeFOV) or resnet18 (dilated head; ImageNet weights installed with the build) (default: the experiment's seg.backbone, else its backbone: {cpu.Seg.BackboneFor(cpu).ToString().ToLowerInvariant()}).",
        };
        var weights = new Option<string?>("--weights") { Description = "ImageNet weights file of the trunk (PyTorch state dict or safetensors); without it (or --trunk-from) the trunk starts from scratch (resnet18: from the ImageNet weights installed with the build)." };
        var trunkFrom = new Option<string?>("--trunk-from") { Description = "Start the trunk from a train-cam run's trained trunk instead of ImageNet weights (CPU runs without ImageNet weights; same trunk kind)." };
        var epochs = new Option<int?>("--epochs") { Description = $"Epochs ({CamCommands.FromExperiment("seg.epochs", cpu.Seg.Epochs)}; docs/METHOD.md §5: 20)." };
        var crop = new Option<int?>("--crop") { Description = $"Crop size ({CamCommands.FromExperiment("seg.crop", cpu.Seg.Crop)}; docs/METHOD.md §5: 321)." };
        var batch = new Option<int?>("--batch") { Description = $"Batch ({CamCommands.FromExperiment("seg.batchSize", cpu.Seg.BatchSize)}; docs/METHOD.md §5: 10)." };
        var seed = new Option<int?>("--seed") { Description = $"Seed of every random choice ({CamCommands.FromExperiment("seg.seed", cpu.Seg.Seed)})." };
        var threads = new Option<int?>("--threads") { Description = $"LibTorch intra-op threads, 0 = LibTorch's own choice ({CamCommands.FromExperiment("seg.threads", cpu.Seg.Threads)})." };
        var onBad = new Option<OnBadSample>("--on-bad-sample") { Description = "fail (default) or skip bad training images, with a count.", DefaultValueFactory = _ => OnBadSample.Fail };
        var output = new Option<string>("--out") { Description = "Run folder: checkpoints, train-log.jsonl, TensorBoard events, experiment.json.", Required = true };
        var cmd = new Command("train-seg", "Train the segmentation network (DeepLab) on pseudo labels; resumes from the run's last checkpoint.")
        {
            voc, labels, split, backbone, weights, CamCommands.NoPretrainedOption, trunkFrom, epochs, crop, batch, seed, threads, onBad, output, CamCommands.PresetOption, CamCommands.ConfigOption, CamCommands.SetOption,
        };
        cmd.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var config = CamCommands.WithPretrained(parse, CamCommands.Config(parse));
            config = config with
            {
                Seg = config.Seg with
                {
                    Backbone = parse.GetValue(backbone) ?? config.Seg.Backbone,
                    Weights = parse.GetValue(weights) ?? config.Seg.Weights,
                    Epochs = parse.GetValue(epochs) ?? config.Seg.Epochs,
                    Crop = parse.GetValue(crop) ?? config.Seg.Crop,
                    BatchSize = parse.GetValue(batch) ?? config.Seg.BatchSize,
                    Seed = parse.GetValue(seed) ?? config.Seg.Seed,
                    Threads = parse.GetValue(threads) ?? config.Seg.Threads,
                    // Outside the pipeline there is no RUN/cam/run: the CAM trunk is used exactly when --trunk-from names one.
                    TrunkFromCam = parse.GetValue(trunkFrom) is not null,
                },
            };
            config.Validate();   // before any file: a rejected option leaves no run folder or experiment.json behind
            if (parse.GetValue(trunkFrom) is null)
                NewRunFolder.CheckWeights(config.Seg.WeightsFor(config), "--weights or the experiment's seg.weights");
            // Weak training: the split's masks are never opened (VocOptions.Masks stays None).
            var dataset = VocDataset.Open(parse.GetValue(voc)!, parse.GetValue(split)!, new VocOptions { OnBadSample = parse.GetValue(onBad) });
            if (dataset.Skipped.Count > 0)
                io.Err.WriteLine($"skipped {dataset.Skipped.Count} bad sample(s):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", dataset.Skipped));
            var result = await NewRunFolder.Run(parse.GetValue(output)!, () => Progress.Run(io, "train-seg", (report, ct2) =>
                SegStage.Train(config, dataset, parse.GetValue(labels)!, parse.GetValue(output)!, parse.GetValue(trunkFrom), new TrainingCallbacks(OnStep: r =>
                    report(r.Step, r.MaxSteps, $"epoch {r.Epoch + 1} lr {r.LearningRate:G3} loss {r.Loss:F4}")), ct2), ct));
            io.Console.MarkupLine($"trained {result.Steps}/{result.MaxSteps} steps (last loss {result.LastLoss:F4}); checkpoint [bold]{Markup.Escape(result.Checkpoint ?? "")}[/]");
            return EcsNetCli.ExitOk;
        }));
        return cmd;
    }

    private static Command InferSeg(CliIo io)
    {
        var run = new Option<string>("--run")
        {
            Description = "Trained segmentation network: the run folder of train-seg, the pipeline's RUN/seg (or RUN, its run root), or one checkpoint folder.",
            Required = true,
        };
        var voc = new Option<string>("--voc") { Description = "VOC2012 (or VOCdevkit) folder.", Required = true };
        var split = new Option<string>("--split") { Description = "Split to label.", DefaultValueFactory = _ => "val" };
        var output = new Option<string>("--out") { Description = "Output folder: <id>.png label maps, overlays/.", Required = true };
        var crf = new Option<bool>("--crf") { Description = "Refine the averaged probabilities with the dense CRF (docs/METHOD.md §3 settings)." };
        var overlays = new Option<string[]>("--overlay") { Description = "Image ids to draw label overlays for (repeatable or comma-separated).", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("infer-seg", "Multi-scale + flip segmentation inference (optional dense CRF): label PNGs, overlays, and mIoU when the split has masks. --set seg.scales=[1.0] etc. override the run's inference options.")
        {
            run, voc, split, output, crf, overlays, CamCommands.OverlaySizeOption, CamCommands.SetOption,
        };
        cmd.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var trained = TrainedRun.Find(parse.GetValue(run)!, SegStage.StageName, "train-seg");
            var runDir = trained.Weights;
            var config = ExperimentFile.Load(null, SegStage.LoadRunConfig(trained.ConfigDir), parse.GetValue(CamCommands.SetOption));
            if (parse.GetValue(crf)) config = config with { Seg = config.Seg with { Crf = true } };
            config = CamCommands.WithOverlaySize(parse, config);
            var crfDelegate = config.Seg.Crf
                ? DenseCrf ?? throw new BadInputException("--crf", "no dense CRF is available in this build")
                : null;
            var dataset = VocDataset.Open(parse.GetValue(voc)!, parse.GetValue(split)!);
            var outDir = parse.GetValue(output)!;
            var ids = (parse.GetValue(overlays) ?? Array.Empty<string>()).SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries)).ToHashSet();
            var report = await Progress.Run(io, "infer-seg", (progress, ct2) =>
            {
                using var model = SegStage.LoadModel(config, runDir);
                return SegInference.Run(model, dataset, outDir, config.Seg, crfDelegate, ids, Path.Combine(outDir, "overlays"),
                    new Progress<(int Done, int Total)>(p => progress(p.Done, p.Total, "")), ct2, config.Overlays);
            }, ct);
            io.Console.MarkupLine($"wrote {report.Images} label PNGs to [bold]{Markup.Escape(outDir)}[/] in {report.Seconds:F1} s{(report.Crf ? " (with CRF)" : "")}");
            if (LabelEvaluation.TryScore(parse.GetValue(voc)!, parse.GetValue(split)!, outDir) is { } score)
                io.Console.MarkupLine($"mIoU on {Markup.Escape(parse.GetValue(split)!)}: {100 * score.MeanIoU:F1} %");
            return EcsNetCli.ExitOk;
        }));
        return cmd;
    }
}
