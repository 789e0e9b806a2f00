using System.Diagnostics;
using System.Text.Json;
using EcsNet.Core.Inference;
using EcsNet.Core.Nets;
using EcsNet.Core.Runtime;
using EcsNet.Core.Training;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Evaluation;
using EcsNet.Labels.Samples;
using TorchSharp;

namespace EcsNet.Core.Stages;

/// <summary>What CAM inference wrote.</summary>
public sealed record CamInferenceReport(int Images, double Seconds, string LabelDir, string CamDir);

/// <summary>
/// The CAM stage of the pipeline (irn-style single entries): train the CAM network on a split, then infer
/// CAMs and pseudo labels for a split. Callable per image through <see cref="InferOne"/>.
/// Outputs in RUN/cam/: run/ (checkpoints, logs, TensorBoard with the label score and overlays at the last step),
/// labels/ (with cams/ and overlays/).
/// </summary>
public sealed class CamStage : IPipelineStage
{
    public const string StageName = "cam";

    /// <summary>Where <see cref="Infer"/> writes overlays, in its output folder.</summary>
    public const string OverlayFolder = "overlays";

    /// <summary>How many images of the train split get PNG overlays.</summary>
    public int OverlayCount { get; init; } = 3;

    public string Name => StageName;
    public string Title => "CAM (ECS-Net) pseudo labels, train";
    public IReadOnlyList<string> DependsOn => Array.Empty<string>();

    public object Options(ExperimentConfig c) => new
    {
        Backbone = c.TrunkFingerprint(c.Backbone), Weights = c.ImageNetWeights(c.Backbone, c.Weights), c.Cam, c.CamTraining, c.Augment, c.CamInference, c.BackgroundThreshold,
    };

    public StageResult Run(PipelineContext context, CancellationToken ct)
    {
        var dir = context.StageDir(Name);
        var config = context.Config;
        var train = VocDataset.Open(context.VocRoot, context.TrainSplit);
        var runDir = Path.Combine(dir, "run");
        var result = context.Training.Train(context.TrainingJob(Name, runDir), new TrainingCallbacks(OnStep: r =>
            context.Progress?.Invoke("cam: train", r.Step, r.MaxSteps, $"loss {r.Loss:F3}")), ct);
        if (!result.Completed)
            throw new OperationCanceledException("CAM training stopped before the last step");
        var overlayIds = train.Samples.Take(OverlayCount).Select(s => s.Id).ToList();
        var labelDir = Path.Combine(dir, "labels");
        var report = Infer(config, runDir, train, labelDir, overlayIds.ToHashSet(),
            new Progress<(int Done, int Total)>(p => context.Progress?.Invoke("cam: infer", p.Done, p.Total, "")), ct);
        var metrics = new Dictionary<string, double> { ["images"] = report.Images, ["inferSeconds"] = report.Seconds };
        if (LabelEvaluation.TryScore(context.VocRoot, context.TrainSplit, labelDir) is { } score)
            StageMetrics.AddScore(metrics, score);
        if (LabelEvaluation.HasMasks(context.VocRoot, context.TrainSplit))
        {
            var best = CamEvaluation.Sweep(context.VocRoot, context.TrainSplit, report.CamDir, ct: ct).MaxBy(p => p.Score.MeanIoU);
            metrics["bestThreshold"] = best.Threshold;
            metrics["mIoUAtBestThreshold"] = best.Score.MeanIoU;
        }
        StageTensorBoard.Write(runDir, result.Steps, metrics, StageTensorBoard.CamOverlayFiles(Path.Combine(labelDir, OverlayFolder), overlayIds));
        return new StageResult(metrics);
    }

    public const string ConfigFileName = "experiment.json";

    public static EcsNetModel CreateModel(ExperimentConfig config)
    {
        config.Cam.Validate();
        var trunk = Backbones.Create(config.Backbone, config.Trunk);
        return new EcsNetModel(trunk, config.Cam);
    }

    /// <summary>
    /// Trains the CAM network of <paramref name="config"/> on <paramref name="dataset"/> into <paramref name="runDir"/>
    /// (checkpoints, log, TensorBoard, experiment.json), resuming from the run's last checkpoint.
    /// </summary>
    /// <param name="placement">Alone or as one member of a data-parallel group (only the root writes files), device, sample source.</param>
    public static TrainingResult Train(ExperimentConfig config, VocDataset dataset, string runDir,
        TrainingCallbacks? callbacks = null, CancellationToken ct = default, TrainingPlacement? placement = null)
    {
        placement ??= TrainingPlacement.Local;
        config.Validate();   // the whole experiment, before any sample source or file: experiment.json is written only valid
        var spec = new CamSampleSpec
        {
            VocRoot = dataset.Root, Split = dataset.Split, Voc = dataset.Options, CacheImages = dataset.Count <= 2000,
            Augment = config.Augment with { CropSize = config.CamTraining.Crop },
        };
        using var source = placement.Sources.Open(spec);
        Directory.CreateDirectory(runDir);
        var configPath = Path.Combine(runDir, ConfigFileName);
        if (placement.IsRoot)
        {
            File.WriteAllText(configPath, JsonSerializer.Serialize(config, ConfigJson.Options));
            RecordTrainedClasses(runDir, dataset);
        }
        using var model = Seeded(config.CamTraining.Seed, () => CreateModel(config));
        bool pretrained = TrunkWeights.LoadImageNet(model.Trunk, config.Weights, config.Pretrained);
        using var task = new CamTrainingTask(model, config.CamTraining, pretrained, placement.Device);
        return TrainingLoop.Run(task, source, runDir, placement.Group, callbacks, ct);
    }

    /// <summary>What a run records of the image-level labels it trained on, in its folder.</summary>
    public const string TrainedClassesFileName = "trained-classes.json";

    private sealed record TrainedClassesRecord(IReadOnlyList<string> Classes);

    /// <summary>
    /// Adds the classes of <paramref name="dataset"/>'s image labels to the run's record (a resumed run may have
    /// started on another split), so that inference can tell which classes the network never learned.
    /// </summary>
    private static void RecordTrainedClasses(string runDir, VocDataset dataset)
    {
        var classes = dataset.Samples.SelectMany(s => s.Labels).ToHashSet();
        try
        {
            if (TrainedClasses(runDir) is { } earlier)
                classes.UnionWith(earlier);
        }
        catch (BadInputException)
        {
            // An unreadable record is rewritten from this split rather than stopping the training.
        }
        var record = new TrainedClassesRecord(classes.Order().Select(c => VocClasses.Names[c]).ToList());
        AtomicFile.WriteAllBytes(Path.Combine(runDir, TrainedClassesFileName), JsonSerializer.SerializeToUtf8Bytes(record, ConfigJson.Options));
    }

    /// <summary>The classes of the image labels a run's CAM network trained on; null for a run that kept no record.</summary>
    public static IReadOnlySet<int>? TrainedClasses(string runDir)
    {
        var path = Path.Combine(runDir, TrainedClassesFileName);
        if (!File.Exists(path))
            return null;
        try
        {
            var record = JsonSerializer.Deserialize<TrainedClassesRecord>(File.ReadAllText(path), ConfigJson.Options)
                ?? throw new JsonException("empty");
            return record.Classes.Select(name => VocClasses.IndexOf(name) is var c and > 0 ? c
                : throw new BadInputException(path, $"'{name}' is not a VOC foreground class")).ToHashSet();
        }
        catch (JsonException e)
        {
            throw new BadInputException(path, $"unreadable record of the trained classes: {e.Message}");
        }
    }

    /// <summary>
    /// Classes in <paramref name="dataset"/>'s image labels that the run's CAM network never had in its training
    /// labels, each with the number of images showing it: its classifier learned nothing for them, so their CAMs
    /// stay below the background score and their pixels come out as background. Empty when the run kept no record.
    /// </summary>
    public static IReadOnlyList<(int Class, int Images)> UnseenClasses(string runDir, VocDataset dataset)
    {
        if (TrainedClasses(runDir) is not { } trained)
            return Array.Empty<(int, int)>();
        return dataset.Samples.SelectMany(s => s.Labels).Where(c => !trained.Contains(c))
            .GroupBy(c => c).OrderBy(g => g.Key).Select(g => (g.Key, g.Count())).ToList();
    }

    /// <summary>
    /// A network built with torch's global generator seeded first: the same initial weights in every process, and
    /// in every worker of one process (<see cref="TorchRuntime.GlobalGenerator"/>).
    /// </summary>
    public static T Seeded<T>(int seed, Func<T> create)
    {
        lock (TorchRuntime.GlobalGenerator)
        {
            torch.manual_seed(seed);
            return create();
        }
    }

    /// <summary>Reads the experiment a run was trained with.</summary>
    public static ExperimentConfig LoadRunConfig(string runDir)
    {
        var path = Path.Combine(runDir, ConfigFileName);
        if (!File.Exists(path))
            throw new BadInputException(runDir, $"not a train-cam run folder ({ConfigFileName} is missing)");
        return ExperimentJson.Read(path);
    }

    /// <summary>CAMs of one image at its full size, for its image-level classes.</summary>
    public static CamMaps InferOne(EcsNetModel model, RgbImage image, IReadOnlyList<int> classes, ExperimentConfig config)
    {
        var chw = Augmentation.Normalize(image, config.Augment.Mean, config.Augment.Std);
        return CamInference.Run(model, chw, image.Height, image.Width, classes, config.CamInference);
    }

    public static CamInferenceReport Infer(ExperimentConfig config, string runDir, VocDataset dataset, string outDir,
        IReadOnlySet<string> overlayIds, IProgress<(int Done, int Total)>? progress = null, CancellationToken ct = default)
    {
        var sw = Stopwatch.StartNew();
        using var model = CreateModel(config);
        Checkpoints.LoadWeights(model, runDir);
        var camDir = Path.Combine(outDir, "cams");
        var overlayDir = Path.Combine(outDir, OverlayFolder);
        Directory.CreateDirectory(outDir);
        Directory.CreateDirectory(camDir);
        int done = 0;
        foreach (var sample in dataset.Samples)
        {
            ct.ThrowIfCancellationRequested();
            var image = ImageCodec.ReadRgb(sample.ImagePath);
            var classes = sample.Labels.OrderBy(c => c).ToArray();
            var cams = InferOne(model, image, classes, config);
            CamStore.Write(camDir, sample.Id, cams);
            var labels = PseudoLabels.FromCams(cams, config.BackgroundThreshold);
            ImageCodec.WriteLabelPng(Path.Combine(outDir, sample.Id + ".png"), labels);
            if (overlayIds.Contains(sample.Id))
            {
                Directory.CreateDirectory(overlayDir);
                Overlays.WriteCamOverlays(overlayDir, sample.Id, image, cams, labels, config.Overlays);
            }
            progress?.Report((++done, dataset.Count));
        }
        return new CamInferenceReport(done, sw.Elapsed.TotalSeconds, outDir, camDir);
    }
}
