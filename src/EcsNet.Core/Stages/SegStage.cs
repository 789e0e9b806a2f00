using System.Diagnostics;
using System.Text.Json;
using EcsNet.Core.Inference;
using EcsNet.Core.Nets;
using EcsNet.Core.Training;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Labels.Crf;
using EcsNet.Labels.Evaluation;
using EcsNet.Labels.Samples;
using TorchSharp;

namespace EcsNet.Core.Stages;

/// <summary>
/// The segmentation stage of the pipeline (docs/METHOD.md §5): train DeepLab on the train split's pseudo labels, label
/// the val split (multi-scale + flip, optional CRF) and score it. Reads RUN/&lt;source&gt;/labels/&lt;id&gt;.png, where
/// the source is the random-walk stage (<see cref="DefaultSource"/>) or, for a short pipeline, the CAM stage.
/// Outputs in RUN/seg/: run/ (experiment.json, checkpoints, train-log.jsonl, TensorBoard), val/&lt;id&gt;.png,
/// overlays/&lt;id&gt;_seg.png for the first <see cref="OverlayCount"/> val images, and train/ when
/// <see cref="SegOptions.ScoreTrain"/> is set.
/// </summary>
public sealed class SegStage : IPipelineStage
{
    public const string StageName = "seg";

    /// <summary>The stage whose pseudo labels DeepLab learns from (PSA's pipeline: the random walk).</summary>
    public const string DefaultSource = "rw";

    /// <summary>Sub-folder of the source stage holding &lt;id&gt;.png pseudo labels (CAM and random walk both write it).</summary>
    public const string LabelsFolder = "labels";

    public const string ConfigFileName = "experiment.json";

    /// <summary>Stage whose labels are the training targets: <see cref="DefaultSource"/>, or <see cref="CamStage.StageName"/> to skip AffinityNet.</summary>
    public string Source { get; init; } = DefaultSource;

    /// <summary>Dense CRF used when <see cref="SegOptions.Crf"/> is set (null: none available; see <see cref="SegInference"/>).</summary>
    public Func<RgbImage, float[], int, float[]>? Crf { get; init; }

    /// <summary>How many val images get PNG overlays.</summary>
    public int OverlayCount { get; init; } = 3;

    public string Name => StageName;
    public string Title => $"DeepLab on {Source} pseudo labels, val";
    /// <summary>
    /// The label source, and the CAM stage (whose trunk <see cref="SegOptions.TrunkFromCam"/> may start from; every
    /// pipeline that reaches this stage has run it, since the random walk reads its CAMs).
    /// </summary>
    public IReadOnlyList<string> DependsOn => new[] { Source, CamStage.StageName }.Distinct().ToArray();

    public object Options(ExperimentConfig c) => new
    {
        Backbone = c.TrunkFingerprint(c.Seg.BackboneFor(c)), Weights = c.ImageNetWeights(c.Seg.BackboneFor(c), c.Seg.WeightsFor(c)), c.Seg, Source,
    };

    public StageResult Run(PipelineContext context, CancellationToken ct)
    {
        var dir = context.StageDir(Name);
        var config = context.Config;
        var crf = CrfFor(config);
        var labelDir = Path.Combine(context.StageDir(Source), LabelsFolder);
        var train = VocDataset.Open(context.VocRoot, context.TrainSplit);
        var runDir = Path.Combine(dir, "run");
        var sw = Stopwatch.StartNew();
        var camRun = config.Seg.TrunkFromCam ? Path.Combine(context.StageDir(CamStage.StageName), "run") : null;
        var result = context.Training.Train(context.TrainingJob(Name, runDir) with { LabelDir = Path.GetFullPath(labelDir), CamRun = camRun is null ? null : Path.GetFullPath(camRun) },
            new TrainingCallbacks(OnStep: r => context.Progress?.Invoke("seg: train", r.Step, r.MaxSteps, $"loss {r.Loss:F3}")), ct);
        if (!result.Completed)
            throw new OperationCanceledException("segmentation training stopped before the last step");
        double trainSeconds = sw.Elapsed.TotalSeconds;

        using var model = LoadModel(config, runDir);
        var val = VocDataset.Open(context.VocRoot, context.ValSplit);
        var overlays = val.Samples.Take(OverlayCount).Select(s => s.Id).ToHashSet();
        var report = SegInference.Run(model, val, Path.Combine(dir, "val"), config.Seg, crf, overlays, Path.Combine(dir, "overlays"),
            new Progress<(int Done, int Total)>(p => context.Progress?.Invoke("seg: infer val", p.Done, p.Total, "")), ct, config.Overlays);
        var metrics = new Dictionary<string, double>
        {
            ["images"] = report.Images, ["steps"] = result.Steps, ["finalLoss"] = result.LastLoss,
            ["trainSeconds"] = trainSeconds, ["inferSeconds"] = report.Seconds,
        };
        if (LabelEvaluation.TryScore(context.VocRoot, context.ValSplit, report.LabelDir) is { } score)
            StageMetrics.AddScore(metrics, score);
        if (config.Seg.ScoreTrain)
        {
            var trainReport = SegInference.Run(model, train, Path.Combine(dir, "train"), config.Seg, crf,
                progress: new Progress<(int Done, int Total)>(p => context.Progress?.Invoke("seg: infer train", p.Done, p.Total, "")), ct: ct);
            if (LabelEvaluation.TryScore(context.VocRoot, context.TrainSplit, trainReport.LabelDir) is { } trainScore)
                metrics["trainMIoU"] = trainScore.MeanIoU;
        }
        StageTensorBoard.Write(runDir, result.Steps, metrics);
        return new StageResult(metrics);
    }

    /// <summary>The CRF delegate when the options ask for one; an error when they do and none is wired in.</summary>
    private Func<RgbImage, float[], int, float[]>? CrfFor(ExperimentConfig config)
    {
        if (!config.Seg.Crf) return null;
        var options = config.Crf with { MaxDegreeOfParallelism = 1 };
        return Crf ?? ((image, probs, labels) => DenseCrf.Infer(image, probs, labels, options));
    }

    /// <summary>A fresh segmentation network for the experiment (trunk per <see cref="SegOptions.BackboneFor"/>).</summary>
    public static DeepLab CreateModel(ExperimentConfig config) =>
        new(Backbones.Create(config.Seg.BackboneFor(config), config.Trunk), config.Seg);

    /// <summary>
    /// Trains on <paramref name="dataset"/>'s images with the pseudo labels in <paramref name="labelDir"/> into
    /// <paramref name="runDir"/>, resuming from its last checkpoint. The trunk starts from the ImageNet weights of
    /// <see cref="SegOptions.WeightsFor"/> when there are any, or from the trunk of the CAM network in
    /// <paramref name="camRun"/> (a train-cam run or checkpoint folder) when that is given.
    /// </summary>
    /// <param name="placement">Alone or as one member of a data-parallel group (only the root writes files), device, sample source.</param>
    public static TrainingResult Train(ExperimentConfig config, VocDataset dataset, string labelDir, string runDir,
        string? camRun = null, TrainingCallbacks? callbacks = null, CancellationToken ct = default, TrainingPlacement? placement = null)
    {
        placement ??= TrainingPlacement.Local;
        var seg = config.Seg;
        config.Validate();   // the whole experiment, before any file: experiment.json is written only valid
        var spec = new SegSampleSpec
        {
            VocRoot = dataset.Root, Split = dataset.Split, Voc = dataset.Options, CacheImages = dataset.Count <= 2000,
            LabelDir = labelDir, Augment = seg.Augment with { CropSize = seg.Crop }, Classes = seg.Classes,
        };
        using var source = placement.Sources.Open(spec);   // checks every pseudo label before anything is written
        Directory.CreateDirectory(runDir);
        if (placement.IsRoot)
            File.WriteAllText(Path.Combine(runDir, ConfigFileName), JsonSerializer.Serialize(config, ConfigJson.Options));
        using var model = CamStage.Seeded(seg.Seed, () => CreateModel(config));
        bool pretrained = true, fromImageNet;
        if (camRun is not null)
        {
            CopyCamTrunk(model, camRun);
            // The CAM network's trunk started from ImageNet when the experiment gives its backbone ImageNet weights.
            fromImageNet = config.ImageNetWeights(config.Backbone, config.Weights) is not null;
        }
        else
            fromImageNet = pretrained = TrunkWeights.LoadImageNet(model.Trunk, seg.WeightsFor(config), config.Pretrained);
        using var task = new SegTrainingTask(model, seg, pretrained, placement.Device, fromImageNet);
        return TrainingLoop.Run(task, source, runDir, placement.Group, callbacks, ct);
    }

    /// <summary>Copies the trunk of a trained CAM network (run or checkpoint folder) into the segmentation trunk.</summary>
    public static void CopyCamTrunk(DeepLab model, string camRun)
    {
        var runConfig = File.Exists(Path.Combine(camRun, CamStage.ConfigFileName)) ? camRun
            : Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(camRun))) ?? camRun;   // RUN/checkpoints/step-N → RUN
        var camConfig = CamStage.LoadRunConfig(runConfig);
        if (camConfig.Backbone != model.Trunk.Kind)
            throw new BadInputException(camRun, $"CAM network has a {camConfig.Backbone} trunk, the segmentation network a {model.Trunk.Kind} trunk; seg.trunkFromCam needs the same kind");
        using var cam = CamStage.CreateModel(camConfig);
        Checkpoints.LoadWeights(cam, camRun);
        var source = cam.Trunk.state_dict();
        using var _ = torch.no_grad();
        foreach (var (name, t) in model.Trunk.state_dict())
            t.copy_(source[name]);
    }

    /// <summary>Reads the experiment a train-seg run was trained with.</summary>
    public static ExperimentConfig LoadRunConfig(string runDir)
    {
        var path = Path.Combine(runDir, ConfigFileName);
        if (!File.Exists(path))
            throw new BadInputException(runDir, $"not a train-seg run folder ({ConfigFileName} is missing)");
        return ExperimentJson.Read(path);
    }

    /// <summary>The network of a run with its latest checkpoint's weights.</summary>
    public static DeepLab LoadModel(ExperimentConfig config, string runDir)
    {
        var model = CreateModel(config);
        try
        {
            Checkpoints.LoadWeights(model, runDir);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }
}
