using EcsNet.Core.Nets;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Evaluation;
using EcsNet.Labels.Propagation;
using static TorchSharp.torch;

namespace EcsNet.Core.Stages;

/// <summary>
/// The random-walk stage (SPEC §4; PSA infer_aff.py): AffinityNet features of each train image define the
/// transition matrix; the CAMs (with PSA's background channel) are propagated t = 256 steps and arg-maxed into
/// pseudo labels. Outputs in RUN/rw/labels/&lt;id&gt;.png.
/// </summary>
public sealed class RandomWalkStage : IPipelineStage
{
    public const string StageName = "rw";
    public const string LabelFolder = "labels";

    public string Name => StageName;
    public string Title => "AffinityNet random walk pseudo labels, train";
    public IReadOnlyList<string> DependsOn => new[] { CamStage.StageName, AffinityStage.StageName };

    public object Options(ExperimentConfig c) => new { c.RandomWalk, c.Augment.Mean, c.Augment.Std };

    /// <summary>Pseudo labels of one image.</summary>
    public static LabelMask Propagate(AffinityNet net, RgbImage image, CamMaps cams, ExperimentConfig config)
    {
        var chw = Augmentation.Normalize(image, config.Augment.Mean, config.Augment.Std);
        using var scope = NewDisposeScope();
        var (features, channels, gh, gw) = net.InferFeatures(tensor(chw).view(1, 3, image.Height, image.Width));
        return RandomWalk.Run(features, channels, gh, gw, cams.FullStack(), cams.Classes, image.Height, image.Width, config.RandomWalk).Labels;
    }

    public StageResult Run(PipelineContext context, CancellationToken ct)
    {
        var config = context.Config;
        var outDir = Path.Combine(context.StageDir(Name), LabelFolder);
        Directory.CreateDirectory(outDir);
        var camDir = Path.Combine(context.StageDir(CamStage.StageName), "labels", "cams");
        var train = VocDataset.Open(context.VocRoot, context.TrainSplit, new VocOptions { VerifyImages = false });
        using var net = AffinityStage.CreateNet(config);
        Checkpoints.LoadWeights(net, Path.Combine(context.StageDir(AffinityStage.StageName), "run"));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int done = 0;
        foreach (var sample in train.Samples)
        {
            ct.ThrowIfCancellationRequested();
            var image = ImageCodec.ReadRgb(sample.ImagePath);
            var labels = Propagate(net, image, CamStore.Read(camDir, sample.Id), config);
            ImageCodec.WriteLabelPng(Path.Combine(outDir, sample.Id + ".png"), labels);
            if (done < 3)
            {
                Directory.CreateDirectory(Path.Combine(outDir, "overlays"));
                ImageCodec.WriteRgbPng(Path.Combine(outDir, "overlays", sample.Id + "_labels.png"), Overlays.LabelBlend(image, labels));
            }
            context.Progress?.Invoke("rw", ++done, train.Count, "");
        }
        var metrics = new Dictionary<string, double> { ["images"] = train.Count, ["imagesPerSecond"] = train.Count / sw.Elapsed.TotalSeconds };
        if (LabelEvaluation.TryScore(context.VocRoot, context.TrainSplit, outDir) is { } score)
            metrics["mIoU"] = score.MeanIoU;
        return new StageResult(metrics);
    }
}
