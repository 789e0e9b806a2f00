using System.Diagnostics;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Crf;
using EcsNet.Labels.Evaluation;

namespace EcsNet.Core.Stages;

/// <summary>The "+CRF" stage (paper Table 4): dense CRF over each image's CAMs, background + present classes.</summary>
public sealed class CrfStage : IPipelineStage
{
    public const string StageName = "crf";

    public string Name => StageName;
    public string Title => "CAM + dense CRF, train";
    public IReadOnlyList<string> DependsOn => new[] { CamStage.StageName };

    public object Options(ExperimentConfig c) => new { c.Crf, c.BackgroundThreshold };

    public StageResult Run(PipelineContext context, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var camDir = Path.Combine(context.StageDir(CamStage.StageName), "labels", "cams");
        var outDir = Path.Combine(context.StageDir(Name), "labels");
        Directory.CreateDirectory(outDir);
        var train = VocDataset.Open(context.VocRoot, context.TrainSplit, new VocOptions { VerifyImages = false });
        var background = CamBackground.Constant(context.Config.BackgroundThreshold);
        var options = context.Config.Crf;
        int done = 0;
        // Images in parallel, each CRF single-threaded: the images are independent and small.
        Parallel.ForEach(train.Samples, new ParallelOptions { CancellationToken = ct, MaxDegreeOfParallelism = Environment.ProcessorCount }, sample =>
        {
            var image = ImageCodec.ReadRgb(sample.ImagePath);
            var labels = CamCrf.Refine(image, CamStore.Read(camDir, sample.Id), background, options with { MaxDegreeOfParallelism = 1 });
            ImageCodec.WriteLabelPng(Path.Combine(outDir, sample.Id + ".png"), labels);
            context.Progress?.Invoke("crf", Interlocked.Increment(ref done), train.Count, "");
        });
        foreach (var sample in train.Samples.Take(3))
        {
            var overlayDir = Path.Combine(outDir, "overlays");
            Directory.CreateDirectory(overlayDir);
            ImageCodec.WriteRgbPng(Path.Combine(overlayDir, sample.Id + "_labels.png"),
                Overlays.LabelBlend(ImageCodec.ReadRgb(sample.ImagePath), ImageCodec.ReadLabelPng(Path.Combine(outDir, sample.Id + ".png"))));
        }
        var metrics = new Dictionary<string, double> { ["images"] = train.Count, ["imagesPerSecond"] = train.Count / sw.Elapsed.TotalSeconds };
        if (LabelEvaluation.TryScore(context.VocRoot, context.TrainSplit, outDir) is { } score)
            metrics["mIoU"] = score.MeanIoU;
        return new StageResult(metrics);
    }
}
