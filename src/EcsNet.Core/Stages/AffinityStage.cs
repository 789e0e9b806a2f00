using EcsNet.Core.Nets;
using EcsNet.Core.Training;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Crf;
using EcsNet.Labels.Jobs;
using EcsNet.Labels.Propagation;
using EcsNet.Labels.Samples;
using static TorchSharp.torch;

namespace EcsNet.Core.Stages;

/// <summary>
/// The AffinityNet stage (docs/METHOD.md §2 la/ha, §4; PSA infer_cls.py + train_aff.py): la/ha maps from the CAMs, each
/// refined by the dense CRF, then AffinityNet trained on random crops whose stride-8 affinity labels come from
/// the cropped maps. Outputs in RUN/aff/: run/ (checkpoints, log), overlays/ (affinity labels of a few images).
/// </summary>
public sealed class AffinityStage : IPipelineStage
{
    public const string StageName = "aff";

    /// <summary>Where step 1's jobs write the la/ha maps files (removed once AffinityNet is trained).</summary>
    public const string MapsFolder = "maps";

    public string Name => StageName;
    public string Title => "AffinityNet training (la/ha CRF labels)";
    public IReadOnlyList<string> DependsOn => new[] { CamStage.StageName };

    public object Options(ExperimentConfig c) => new { Backbone = c.TrunkFingerprint(c.Backbone), Weights = c.ImageNetWeights(c.Backbone, c.Weights), c.AffinityLabels, c.Affinity, c.AffinityTrunkFromCam, c.Crf, c.CamTraining.Seed };

    /// <summary>The AffinityNet of an experiment (trunk of the CAM network's kind).</summary>
    public static AffinityNet CreateNet(ExperimentConfig config) => new(Backbones.Create(config.Backbone, config.Trunk), config.Affinity);

    /// <summary>la/ha score maps of one image, each refined by the dense CRF.</summary>
    public static AffinityScoreMaps ScoreMaps(RgbImage image, CamMaps cams, ExperimentConfig config)
    {
        var crf = config.Crf with { MaxDegreeOfParallelism = 1 };
        return AffinityLabels.ScoreMaps(image, cams.FullStack(), cams.Classes, config.AffinityLabels,
            (img, probs, labels) => DenseCrf.Infer(img, probs, labels, crf));
    }

    public StageResult Run(PipelineContext context, CancellationToken ct)
    {
        var config = context.Config;
        var dir = context.StageDir(Name);
        var runDir = Path.Combine(dir, "run");
        var camDir = Path.Combine(context.StageDir(CamStage.StageName), "labels", "cams");
        var train = VocDataset.Open(context.VocRoot, context.TrainSplit, new VocOptions { VerifyImages = false });

        // 1. la/ha maps (two CRFs per image): one job per image through the context's runner, each writing a
        //    float32 maps file, so training sees the same numbers wherever a job ran.
        var mapsDir = Path.Combine(dir, MapsFolder);
        var crf = config.Crf with { MaxDegreeOfParallelism = 1 };
        var jobs = train.Samples.Select(sample => (IImageJob)new AffinityMapsJob(sample.Id, Path.GetFullPath(sample.ImagePath),
            Path.GetFullPath(camDir), Path.GetFullPath(Path.Combine(mapsDir, sample.Id + AffinityMapsFile.Extension)),
            config.AffinityLabels, crf)).ToList();
        context.RunJobs("aff: la/ha CRF", jobs, ct);
        var images = new RgbImage[Math.Min(3, train.Count)];
        var maps = new AffinityScoreMaps[images.Length];
        for (int i = 0; i < images.Length; i++)
        {
            images[i] = ImageCodec.ReadRgb(train.Samples[i].ImagePath);
            maps[i] = AffinityMapsFile.Read(jobs[i].OutputPath);
        }
        WriteLabelOverlays(Path.Combine(dir, "overlays"), train, images, maps, config);

        // 2. AffinityNet training on joint random crops of image and maps, read from the maps files (by the
        //    trainer here, or by the nodes that make a cluster's samples).
        var camRun = Path.Combine(context.StageDir(CamStage.StageName), "run");
        var job = context.TrainingJob(Name, runDir) with { MapsDir = Path.GetFullPath(mapsDir), CamRun = Path.GetFullPath(camRun) };
        var result = context.Training.Train(job, new TrainingCallbacks(OnStep: r =>
            context.Progress?.Invoke("aff: train", r.Step, r.MaxSteps, $"loss {r.Loss:F3}")), ct);
        if (!result.Completed)
            throw new OperationCanceledException("AffinityNet training stopped before the last step");
        // The maps are an intermediate (about 4.5 MB per VOC image): gone once AffinityNet is trained.
        if (Directory.Exists(mapsDir))
            Directory.Delete(mapsDir, recursive: true);
        return new StageResult(new Dictionary<string, double> { ["steps"] = result.MaxSteps, ["finalLoss"] = result.LastLoss, ["images"] = train.Count });
    }

    /// <summary>
    /// Trains AffinityNet on <paramref name="dataset"/>'s images and their la/ha maps in <paramref name="mapsDir"/> into
    /// <paramref name="runDir"/>, resuming from its last checkpoint. The trunk starts from ImageNet weights when the
    /// experiment has them, else from the CAM network of <paramref name="camRun"/> when
    /// <see cref="ExperimentConfig.AffinityTrunkFromCam"/> is set.
    /// </summary>
    public static TrainingResult Train(ExperimentConfig config, VocDataset dataset, string mapsDir, string runDir, string? camRun,
        TrainingCallbacks? callbacks = null, CancellationToken ct = default, TrainingPlacement? placement = null)
    {
        placement ??= TrainingPlacement.Local;
        var o = config.Affinity;
        var spec = new AffinitySampleSpec
        {
            VocRoot = dataset.Root, Split = dataset.Split, Voc = dataset.Options, CacheImages = dataset.Count <= 2000,
            MapsDir = mapsDir, Crop = o.CropSize, Labels = config.AffinityLabels,
            Jitter = new AugmentOptions
            {
                LongEdgeMin = o.CropSize, LongEdgeMax = o.CropSize, CropSize = o.CropSize, FlipProbability = 0,
                Brightness = o.ColorJitter.Brightness, Contrast = o.ColorJitter.Contrast,
                Saturation = o.ColorJitter.Saturation, Hue = o.ColorJitter.Hue,
            },
        };
        using var source = placement.Sources.Open(spec);
        int seed = config.CamTraining.Seed;
        using var net = CamStage.Seeded(seed, () => CreateNet(config));
        // PSA's recipe: AffinityNet starts from ImageNet; the CAM network's trunk only when there is no ImageNet trunk.
        bool imageNet = TrunkWeights.LoadImageNet(net.Backbone, config.Weights, config.Pretrained);
        if (!imageNet && config.AffinityTrunkFromCam && camRun is not null)
            CopyCamTrunk(net, config, camRun);
        using var task = new AffinityTrainingTask(net, o, seed, placement.Device);
        return TrainingLoop.Run(task, source, runDir, placement.Group, callbacks, ct);
    }

    /// <summary>Copies the trained CAM network's trunk into AffinityNet's (CPU default without ImageNet weights).</summary>
    private static void CopyCamTrunk(AffinityNet net, ExperimentConfig config, string camRun)
    {
        using var cam = CamStage.CreateModel(config);
        Checkpoints.LoadWeights(cam, camRun);
        using var _ = no_grad();
        var source = cam.Trunk.state_dict();
        foreach (var (name, target) in net.Backbone.state_dict())
            if (source.TryGetValue(name, out var t) && t.shape.SequenceEqual(target.shape))
                target.copy_(t);
    }

    private static void WriteLabelOverlays(string dir, VocDataset train, RgbImage[] images, AffinityScoreMaps[] maps, ExperimentConfig config)
    {
        Directory.CreateDirectory(dir);
        for (int i = 0; i < Math.Min(3, train.Count); i++)
        {
            var grid = AffinityLabels.Decide(maps[i], config.AffinityLabels);
            var up = Resize.Nearest(grid, grid.Width * config.AffinityLabels.Stride, grid.Height * config.AffinityLabels.Stride);
            var cropped = new byte[images[i].Width * images[i].Height];
            for (int y = 0; y < images[i].Height; y++)
                Array.Copy(up.Labels, y * up.Width, cropped, y * images[i].Width, images[i].Width);
            Overlays.WriteLabelOverlay(Path.Combine(dir, train.Samples[i].Id + "_affinity_labels.png"),
                images[i], new LabelMask(images[i].Width, images[i].Height, cropped), config.Overlays);
        }
    }
}
