using System.CommandLine;
using EcsNet.Core.Nets;
using EcsNet.Core.Runtime;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Evaluation;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>`ecsnet train-cam` (alone, on an embedded cluster, or as one rank of a job) and `ecsnet infer-cam`.</summary>
public static class CamCommands
{
    public static IEnumerable<Command> Build(CliIo io)
    {
        yield return TrainCam(io);
        yield return InferCam(io);
    }

    internal static readonly Option<string?> ConfigOption = new("--config") { Description = "Experiment file (YAML or JSON) with per-stage options; see docs/EXPERIMENTS.md." };
    /// <summary>--no-pretrained: a ResNet-18 trunk starts from scratch instead of the ImageNet weights installed with the build.</summary>
    internal static readonly Option<bool> NoPretrainedOption = new("--no-pretrained")
    {
        Description = "Train a resnet18 trunk from scratch instead of from its ImageNet weights (installed with the build; docs/WEIGHTS.md).",
    };

    internal const string BackboneHelp = "small, resnet38, vgg16 or resnet18 (ImageNet weights installed with the build)";

    /// <summary>Applies --no-pretrained (given: Pretrained = false; absent: the experiment's value).</summary>
    internal static ExperimentConfig WithPretrained(ParseResult parse, ExperimentConfig config) =>
        parse.GetResult(NoPretrainedOption) is not null && parse.GetValue(NoPretrainedOption) ? config with { Pretrained = false } : config;

    internal static readonly Option<string[]> SetOption = new("--set") { Description = "Override any option: path=value, e.g. --set cam.theta=0.7 (repeatable).", AllowMultipleArgumentsPerToken = true };

    internal static readonly Option<int?> OverlaySizeOption = new("--overlay-size")
    {
        Description = "Long edge of the overlay PNGs in pixels: smaller images are enlarged to it, 0 keeps their size " +
                      $"({FromExperiment("overlays.longEdge", OverlayOptions.DefaultLongEdge)}).",
    };

    /// <summary>
    /// Help text for an option whose default comes from the experiment: the built-in CPU experiment's value and the
    /// key that changes it (--config, --set).
    /// </summary>
    internal static string FromExperiment(string key, object value) =>
        $"default: {(value is Enum e ? e.ToString().ToLowerInvariant() : System.Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture))}, the experiment's {key}";

    /// <summary><paramref name="config"/> with --overlay-size applied, checked before anything is written.</summary>
    internal static ExperimentConfig WithOverlaySize(ParseResult parse, ExperimentConfig config)
    {
        if (parse.GetValue(OverlaySizeOption) is not { } size)
            return config;
        var overlays = config.Overlays with { LongEdge = size };
        try
        {
            overlays.Validate();
        }
        catch (BadInputException e)
        {
            throw new BadInputException("--overlay-size", e.Problem, e);
        }
        return config with { Overlays = overlays };
    }

    /// <summary>--preset: the built-in experiment that --config and --set apply on top of.</summary>
    internal static readonly Option<ExperimentPreset> PresetOption = new("--preset")
    {
        Description = "Built-in experiment under --config and --set: small (the small trunk from scratch, the demo in about 6 minutes " +
                      "on 2 cores) or quality (the ImageNet ResNet-18 installed with the build: better labels, about 18 minutes); docs/EXPERIMENTS.md.",
        DefaultValueFactory = _ => ExperimentPreset.Small,
    };

    /// <summary>The preset's experiment (small by default) unless the experiment file or the options say otherwise.</summary>
    internal static ExperimentConfig Config(ParseResult parse) =>
        ExperimentFile.Load(parse.GetValue(ConfigOption), ExperimentConfig.For(parse.GetValue(PresetOption)), parse.GetValue(SetOption));

    private static Command TrainCam(CliIo io)
    {
        var voc = new Option<string>("--voc") { Description = "VOC2012 (or VOCdevkit) folder.", Required = true };
        var split = new Option<string>("--split") { Description = "Split name or id-list file (train, train_aug, ...).", DefaultValueFactory = _ => "train" };
        var cpu = ExperimentConfig.SmallCpu;
        var method = new Option<CamMethod?>("--method") { Description = $"cam (baseline) or ecs ({FromExperiment("cam.method", cpu.Cam.Method)})." };
        var backbone = new Option<BackboneKind?>("--backbone") { Description = $"{BackboneHelp} ({FromExperiment("backbone", cpu.Backbone)})." };
        var weights = new Option<string?>("--weights") { Description = "ImageNet weights file (PyTorch state dict or safetensors); without it the trunk starts from scratch (resnet18: from the ImageNet weights installed with the build)." };
        var epochs = new Option<int?>("--epochs") { Description = $"Epochs ({FromExperiment("camTraining.epochs", cpu.CamTraining.Epochs)}; paper: 8)." };
        var crop = new Option<int?>("--crop") { Description = $"Crop size ({FromExperiment("camTraining.crop", cpu.CamTraining.Crop)}; paper: 448)." };
        var batch = new Option<int?>("--batch") { Description = $"Global batch ({FromExperiment("camTraining.batchSize", cpu.CamTraining.BatchSize)}; paper: 8)." };
        var seed = new Option<int?>("--seed") { Description = $"Seed of every random choice ({FromExperiment("camTraining.seed", cpu.CamTraining.Seed)})." };
        var threads = new Option<int?>("--threads") { Description = $"LibTorch intra-op threads, 0 = LibTorch's own choice ({FromExperiment("camTraining.threads", cpu.CamTraining.Threads)})." };
        var device = new Option<string>("--device") { Description = "Where to train: cpu, cuda or cuda:N (the CUDA build).", DefaultValueFactory = _ => "cpu" };
        var onBad = new Option<OnBadSample>("--on-bad-sample") { Description = "fail (default) or skip bad training files, with a count.", DefaultValueFactory = _ => OnBadSample.Fail };
        var output = new Option<string>("--out") { Description = "Run folder: checkpoints, logs, TensorBoard events, experiment.json.", Required = true };
        var cmd = new Command("train-cam", "Train the CAM network (ECS-Net or the CAM baseline) on image-level labels; resumes from the run's last checkpoint. " +
                                           "Data-parallel: --workers N on one machine, or --coordinator URL --world N on each rank.")
        {
            voc, split, method, backbone, weights, NoPretrainedOption, epochs, crop, batch, seed, threads, device, onBad, output, PresetOption, ConfigOption, SetOption,
        };
        var cluster = new TrainCamCluster.Options();
        cluster.AddTo(cmd);
        cmd.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var config = WithPretrained(parse, Config(parse));
            config = config with
            {
                Backbone = parse.GetValue(backbone) ?? config.Backbone,
                Weights = parse.GetValue(weights) ?? config.Weights,
                Cam = parse.GetValue(method) is { } m ? (m == CamMethod.Cam ? ExperimentConfig.CamBaselineOf(config.Cam) : config.Cam with { Method = m }) : config.Cam,
                CamTraining = config.CamTraining with
                {
                    Epochs = parse.GetValue(epochs) ?? config.CamTraining.Epochs,
                    Crop = parse.GetValue(crop) ?? config.CamTraining.Crop,
                    BatchSize = parse.GetValue(batch) ?? config.CamTraining.BatchSize,
                    Seed = parse.GetValue(seed) ?? config.CamTraining.Seed,
                    Threads = parse.GetValue(threads) ?? config.CamTraining.Threads,
                },
            };
            config.Validate();   // before any file: a rejected option leaves no run folder or experiment.json behind
            NewRunFolder.CheckWeights(config.Weights, "--weights or the experiment's weights");
            var mode = cluster.Mode(parse, config);
            var dataset = VocDataset.Open(parse.GetValue(voc)!, parse.GetValue(split)!, new VocOptions { OnBadSample = parse.GetValue(onBad) });
            bool quiet = mode == TrainCamCluster.RunMode.Rank && !cluster.IsRoot(parse);
            if (dataset.Skipped.Count > 0 && !quiet)
                io.Err.WriteLine($"skipped {dataset.Skipped.Count} bad sample(s):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", dataset.Skipped));
            if (mode == TrainCamCluster.RunMode.EmbeddedCluster)
                return await NewRunFolder.Run(parse.GetValue(output)!, () => TrainCamCluster.RunEmbeddedAsync(io, parse, cluster, config, dataset,
                    parse.GetValue(output)!, Devices.Normalize(parse.GetValue(device)!), ct));
            if (mode == TrainCamCluster.RunMode.Rank)
                return await TrainCamCluster.RunRankAsync(io, parse, cluster, config, dataset, parse.GetValue(output)!, ct);
            var placement = new TrainingPlacement { Device = Devices.Resolve(parse.GetValue(device)!) };   // fails here when this build has no such GPU
            var result = await NewRunFolder.Run(parse.GetValue(output)!, () => Progress.Run(io, "train-cam", (report, ct2) =>
                CamStage.Train(config, dataset, parse.GetValue(output)!, new TrainingCallbacks(OnStep: r =>
                    report(r.Step, r.MaxSteps, TrainCamCluster.StepText(r))), ct2, placement), ct));
            io.Console.MarkupLine($"trained {result.Steps}/{result.MaxSteps} steps; checkpoint [bold]{Markup.Escape(result.Checkpoint ?? "")}[/]");
            return EcsNetCli.ExitOk;
        }));
        return cmd;
    }

    /// <summary>
    /// Says, before inference starts, which classes of the split the CAM network never trained on: their CAMs
    /// are untrained, so their pixels come out as background and nothing else says why.
    /// </summary>
    private static void WarnOfUnseenClasses(CliIo io, IReadOnlyList<(int Class, int Images)> unseen, int images)
    {
        if (unseen.Count == 0)
            return;
        var names = string.Join(", ", unseen.Select(u => $"{VocClasses.Names[u.Class]} ({u.Images} of {images} images)"));
        io.Err.WriteLine($"warning: images of classes {names} were never in the CAM's training labels; their pixels can only be background");
    }

    internal static void PrintSweep(CliIo io, IReadOnlyList<(double Threshold, SegmentationScore Score)> sweep)
    {
        var table = new Table().AddColumn("bg threshold").AddColumn("mIoU %");
        var best = sweep.MaxBy(s => s.Score.MeanIoU);
        foreach (var (t, score) in sweep)
            table.AddRow(t.ToString("F2"), (t == best.Threshold ? "*" : "") + (100 * score.MeanIoU).ToString("F1"));
        io.Console.Write(table);
        io.Console.MarkupLine($"best background threshold {best.Threshold:F2}: mIoU {100 * best.Score.MeanIoU:F1} %");
    }

    private static Command InferCam(CliIo io)
    {
        var run = new Option<string>("--run")
        {
            Description = "Trained CAM network: the run folder of train-cam, the pipeline's RUN/cam (or RUN, its run root), or one checkpoint folder.",
            Required = true,
        };
        var voc = new Option<string>("--voc") { Description = "VOC2012 (or VOCdevkit) folder.", Required = true };
        var split = new Option<string>("--split") { Description = "Split to label.", DefaultValueFactory = _ => "train" };
        var output = new Option<string>("--out") { Description = "Output folder: <id>.png pseudo labels, cams/<id>.npy+json, overlays/.", Required = true };
        var bg = new Option<double?>("--bg-threshold")
        {
            Description = $"Constant background score (default: the run's backgroundThreshold, {ExperimentConfig.SmallCpu.BackgroundThreshold} in the built-in CPU experiment; PSA 0.2).",
        };
        var overlays = new Option<string[]>("--overlay") { Description = "Image ids to draw CAM heatmap overlays for (repeatable or comma-separated).", AllowMultipleArgumentsPerToken = true };
        var sweep = new Option<bool>("--sweep") { Description = "Also sweep the background threshold against the split's masks (evaluation only) and report the best." };
        var cmd = new Command("infer-cam", "Multi-scale + flip CAM inference: saves CAMs, pseudo-label PNGs and overlays.")
        {
            run, voc, split, output, bg, overlays, OverlaySizeOption, sweep, ConfigOption, SetOption,
        };
        cmd.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var trained = TrainedRun.Find(parse.GetValue(run)!, CamStage.StageName, "train-cam");
            var runDir = trained.Weights;
            var config = ExperimentFile.Load(parse.GetValue(ConfigOption), CamStage.LoadRunConfig(trained.ConfigDir), parse.GetValue(SetOption));
            if (parse.GetValue(bg) is { } t) config = config with { BackgroundThreshold = t };
            config = WithOverlaySize(parse, config);
            var dataset = VocDataset.Open(parse.GetValue(voc)!, parse.GetValue(split)!);
            WarnOfUnseenClasses(io, CamStage.UnseenClasses(trained.ConfigDir, dataset), dataset.Count);
            var ids = (parse.GetValue(overlays) ?? Array.Empty<string>()).SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries)).ToHashSet();
            var report = await Progress.Run(io, "infer-cam", (progress, ct2) =>
                CamStage.Infer(config, runDir, dataset, parse.GetValue(output)!, ids,
                    new Progress<(int Done, int Total)>(p => progress(p.Done, p.Total, "")), ct2), ct);
            io.Console.MarkupLine($"wrote {report.Images} pseudo-label PNGs and CAMs to [bold]{Markup.Escape(parse.GetValue(output)!)}[/] in {report.Seconds:F1} s");
            if (parse.GetValue(sweep))
                PrintSweep(io, CamEvaluation.Sweep(parse.GetValue(voc)!, parse.GetValue(split)!, report.CamDir, ct: ct));
            return EcsNetCli.ExitOk;
        }));
        return cmd;
    }
}
