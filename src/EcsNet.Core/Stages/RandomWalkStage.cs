using EcsNet.Core.Nets;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Evaluation;
using EcsNet.Labels.Jobs;
using EcsNet.Labels.Propagation;
using static TorchSharp.torch;

namespace EcsNet.Core.Stages;

/// <summary>
/// The random-walk stage (PSA infer_aff.py): AffinityNet features of each train image define the transition
/// matrix; the CAMs (with PSA's background channel) are propagated t = 256 steps and arg-maxed into pseudo
/// labels. The network runs here (TorchSharp); the walk of each image is a <see cref="PropagationJob"/> run by the
/// context's job runner, reading the features this stage saved for it (RUN/rw/features/&lt;id&gt;.npy, deleted
/// once the image's label is written). Outputs in RUN/rw/labels/&lt;id&gt;.png.
/// </summary>
public sealed class RandomWalkStage : IPipelineStage
{
    public const string StageName = "rw";
    public const string LabelFolder = "labels";
    public const string FeaturesFolder = "features";

    /// <summary>
    /// Images whose features are computed before their walks are handed to the runner. The next batch's
    /// features are computed while this batch walks, so at most two batches of features files (about 5 MB
    /// each for a VOC image with ResNet-38) are on disk at once.
    /// </summary>
    public const int FeatureBatch = 32;

    public string Name => StageName;
    public string Title => "AffinityNet random walk pseudo labels, train";
    public IReadOnlyList<string> DependsOn => new[] { CamStage.StageName, AffinityStage.StageName };

    public object Options(ExperimentConfig c) => new { c.RandomWalk, c.Augment.Mean, c.Augment.Std };

    /// <summary>AffinityNet features <c>[C][⌈H/8⌉][⌈W/8⌉]</c> of one image (normalised as in training).</summary>
    public static (float[] Features, int Channels, int GridHeight, int GridWidth) Features(AffinityNet net, RgbImage image, ExperimentConfig config)
    {
        var chw = Augmentation.Normalize(image, config.Augment.Mean, config.Augment.Std);
        using var scope = NewDisposeScope();
        return net.InferFeatures(tensor(chw).view(1, 3, image.Height, image.Width));
    }

    /// <summary>Pseudo labels of one image, network and walk in this process.</summary>
    public static LabelMask Propagate(AffinityNet net, RgbImage image, CamMaps cams, ExperimentConfig config)
    {
        var (features, channels, gh, gw) = Features(net, image, config);
        return RandomWalk.Run(features, channels, gh, gw, cams.FullStack(), cams.Classes, image.Height, image.Width, config.RandomWalk).Labels;
    }

    public StageResult Run(PipelineContext context, CancellationToken ct)
    {
        var config = context.Config;
        var outDir = Path.GetFullPath(Path.Combine(context.StageDir(Name), LabelFolder));
        var featuresDir = Path.GetFullPath(Path.Combine(context.StageDir(Name), FeaturesFolder));
        Directory.CreateDirectory(outDir);
        var camDir = Path.GetFullPath(Path.Combine(context.StageDir(CamStage.StageName), "labels", "cams"));
        var train = VocDataset.Open(context.VocRoot, context.TrainSplit, new VocOptions { VerifyImages = false });
        using var net = AffinityStage.CreateNet(config);
        Checkpoints.LoadWeights(net, Path.Combine(context.StageDir(AffinityStage.StageName), "run"));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int done = 0;
        void Finished(int _, int __, ImageJobResult result)
        {
            File.Delete(Path.Combine(featuresDir, result.ImageId + ".npy"));
            context.Progress?.Invoke("rw", Interlocked.Increment(ref done), train.Count, "");
        }

        Task<IReadOnlyList<ImageJobResult>>? walking = null;
        try
        {
            foreach (var batch in train.Samples.Chunk(FeatureBatch))
            {
                var jobs = new List<IImageJob>(batch.Length);
                foreach (var sample in batch)
                {
                    ct.ThrowIfCancellationRequested();
                    var image = ImageCodec.ReadRgb(sample.ImagePath);
                    var (features, channels, gh, gw) = Features(net, image, config);
                    var featuresPath = Path.Combine(featuresDir, sample.Id + ".npy");
                    PropagationJob.WriteFeatures(featuresPath, features, channels, gh, gw);
                    jobs.Add(new PropagationJob(sample.Id, featuresPath, camDir, image.Height, image.Width,
                        Path.Combine(outDir, sample.Id + ".png"), config.RandomWalk));
                }
                walking?.GetAwaiter().GetResult();
                walking = context.StartJobs(jobs, Finished, ct);
            }
            walking?.GetAwaiter().GetResult();
        }
        finally
        {
            // a failed stage must not leave a walk running against files it is about to remove
            if (walking is { IsCompleted: false })
                try { walking.Wait(CancellationToken.None); } catch (AggregateException) { }
            if (Directory.Exists(featuresDir))
                Directory.Delete(featuresDir, recursive: true);
        }

        foreach (var sample in train.Samples.Take(3))
        {
            Directory.CreateDirectory(Path.Combine(outDir, "overlays"));
            Overlays.WriteLabelOverlay(Path.Combine(outDir, "overlays", sample.Id + "_labels.png"),
                ImageCodec.ReadRgb(sample.ImagePath), ImageCodec.ReadLabelPng(Path.Combine(outDir, sample.Id + ".png")), context.Config.Overlays);
        }
        var metrics = new Dictionary<string, double> { ["images"] = train.Count, ["imagesPerSecond"] = train.Count / sw.Elapsed.TotalSeconds };
        if (LabelEvaluation.TryScore(context.VocRoot, context.TrainSplit, outDir) is { } score)
            StageMetrics.AddScore(metrics, score);
        return new StageResult(metrics);
    }
}
