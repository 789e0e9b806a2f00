using System.Diagnostics;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Evaluation;
using EcsNet.Labels.Jobs;

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
        // One job per image, each CRF single-threaded: the images are independent and small, so the runner
        // spreads images (over cores, or over a cluster's nodes) instead.
        var crf = context.Config.Crf with { MaxDegreeOfParallelism = 1 };
        // Full paths: a job may run on another node (which must see the same files, e.g. a shared volume).
        var jobs = train.Samples.Select(sample => (IImageJob)new CrfLabelJob(sample.Id, Path.GetFullPath(sample.ImagePath),
            Path.GetFullPath(camDir), Path.GetFullPath(Path.Combine(outDir, sample.Id + ".png")),
            context.Config.BackgroundThreshold, crf)).ToList();
        context.RunJobs("crf", jobs, ct);
        foreach (var sample in train.Samples.Take(3))
        {
            var overlayDir = Path.Combine(outDir, "overlays");
            Directory.CreateDirectory(overlayDir);
            Overlays.WriteLabelOverlay(Path.Combine(overlayDir, sample.Id + "_labels.png"),
                ImageCodec.ReadRgb(sample.ImagePath), ImageCodec.ReadLabelPng(Path.Combine(outDir, sample.Id + ".png")), context.Config.Overlays);
        }
        var metrics = new Dictionary<string, double> { ["images"] = train.Count, ["imagesPerSecond"] = train.Count / sw.Elapsed.TotalSeconds };
        if (LabelEvaluation.TryScore(context.VocRoot, context.TrainSplit, outDir) is { } score)
            StageMetrics.AddScore(metrics, score);
        return new StageResult(metrics);
    }
}
