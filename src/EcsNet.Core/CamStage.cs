using System.Diagnostics;
using System.Text.Json;
using EcsNet.Data;
using TorchSharp;

namespace EcsNet.Core;

/// <summary>What CAM inference wrote.</summary>
public sealed record CamInferenceReport(int Images, double Seconds, string LabelDir, string CamDir);

/// <summary>
/// The CAM stage of the pipeline (irn-style single entries): train the CAM network on a split, then infer
/// CAMs and pseudo labels for a split. Callable per image through <see cref="InferOne"/>.
/// </summary>
public static class CamStage
{
    public const string ConfigFileName = "experiment.json";

    public static EcsNetModel CreateModel(ExperimentConfig config)
    {
        var trunk = Backbones.Create(config.Backbone);
        return new EcsNetModel(trunk, config.Cam);
    }

    public static CamTrainingResult Train(ExperimentConfig config, VocDataset dataset, string runDir,
        IProgress<CamStepReport>? progress = null, CancellationToken ct = default)
    {
        Directory.CreateDirectory(runDir);
        var configPath = Path.Combine(runDir, ConfigFileName);
        File.WriteAllText(configPath, JsonSerializer.Serialize(config, ConfigJson.Options));
        torch.manual_seed(config.CamTraining.Seed);
        using var model = CreateModel(config);
        bool pretrained = config.Weights is not null;
        if (pretrained)
            throw new BadInputException(config.Weights!, "loading ImageNet weights is not wired in yet");
        using var trainer = new CamTrainer(model, config.CamTraining, runDir, pretrained);
        var data = new CamTrainingSet(dataset, config.Augment with { CropSize = config.CamTraining.Crop }, cacheImages: dataset.Count <= 2000);
        return trainer.Train(data, progress, ct);
    }

    /// <summary>Reads the experiment a run was trained with.</summary>
    public static ExperimentConfig LoadRunConfig(string runDir)
    {
        var path = Path.Combine(runDir, ConfigFileName);
        if (!File.Exists(path))
            throw new BadInputException(runDir, $"not a train-cam run folder ({ConfigFileName} is missing)");
        try
        {
            return JsonSerializer.Deserialize<ExperimentConfig>(File.ReadAllText(path), ConfigJson.Options)
                ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new BadInputException(path, $"unreadable experiment file: {e.Message}");
        }
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
        CamTrainer.LoadWeights(model, runDir);
        var camDir = Path.Combine(outDir, "cams");
        var overlayDir = Path.Combine(outDir, "overlays");
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
                Overlays.WriteCamOverlays(overlayDir, sample.Id, image, cams, labels);
            }
            progress?.Report((++done, dataset.Count));
        }
        return new CamInferenceReport(done, sw.Elapsed.TotalSeconds, outDir, camDir);
    }
}
