using System.Diagnostics;
using EcsNet.Data;

namespace EcsNet.Core;

/// <summary>
/// Background score for a CAM stack (SPEC §2): a constant (what pseudo labels use), or PSA's
/// (1 − max_c cam_c)^α (α 4 "la" keeps more background, α 32 "ha" less).
/// </summary>
public sealed record CamBackground(bool IsPower, double Value)
{
    public static CamBackground Constant(double threshold) =>
        threshold is > 0 and <= 1 ? new(false, threshold) : throw new BadInputException("background", $"constant score must lie in (0, 1], got {threshold}");

    public static CamBackground Power(double alpha) =>
        alpha > 0 && double.IsFinite(alpha) ? new(true, alpha) : throw new BadInputException("background", $"α must be positive, got {alpha}");

    /// <summary>Score map [1 + K][H·W]: channel 0 background, then the K present classes' CAMs.</summary>
    public float[] Scores(CamMaps cams)
    {
        int n = cams.Height * cams.Width, k = cams.Classes.Count;
        var scores = new float[(k + 1) * n];
        for (int c = 0; c < k; c++)
            cams.Maps[c].AsSpan().CopyTo(scores.AsSpan((c + 1) * n, n));
        var bg = scores.AsSpan(0, n);
        if (!IsPower)
        {
            bg.Fill((float)Value);
            return scores;
        }
        for (int p = 0; p < n; p++)
        {
            float max = 0;
            for (int c = 1; c <= k; c++) max = Math.Max(max, scores[c * n + p]);
            bg[p] = MathF.Pow(Math.Max(0f, 1f - max), (float)Value);
        }
        return scores;
    }
}

/// <summary>The "+CRF" stage (paper Table 4): dense CRF over each image's CAMs, background + present classes.</summary>
public sealed class CrfStage : IPipelineStage
{
    public const string StageName = "crf";

    public string Name => StageName;
    public string Title => "CAM + dense CRF, train";
    public IReadOnlyList<string> DependsOn => new[] { CamStage.StageName };

    public object Options(ExperimentConfig c) => new { c.Crf, c.BackgroundThreshold };

    /// <summary>CRF labels of one image from its CAMs.</summary>
    public static LabelMask Refine(RgbImage image, CamMaps cams, CamBackground background, DenseCrfOptions options)
    {
        if (cams.Width != image.Width || cams.Height != image.Height)
            throw new BadInputException("crf", $"CAMs are {cams.Width}x{cams.Height} but the image is {image.Width}x{image.Height}");
        var scores = background.Scores(cams);
        var classOf = new int[cams.Classes.Count + 1];
        for (int i = 0; i < cams.Classes.Count; i++) classOf[i + 1] = cams.Classes[i];
        var q = DenseCrf.Infer(image, scores, classOf.Length, options);
        return DenseCrf.ArgMax(q, classOf, image.Width, image.Height);
    }

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
            var labels = Refine(image, CamStore.Read(camDir, sample.Id), background, options with { MaxDegreeOfParallelism = 1 });
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
