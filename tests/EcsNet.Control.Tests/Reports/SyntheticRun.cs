using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Evaluation;

namespace EcsNet.Control.Tests.Reports;

/// <summary>
/// A small pipeline run folder written by the pipeline's own writers: <see cref="ExperimentJson"/> first (as the
/// pipeline does when it starts), then per stage the training log through <see cref="TrainingRecorder"/> in the
/// training loop's line shape, the overlays through <see cref="Overlays"/> and <see cref="ImageCodec"/> where the
/// stages put them, and the manifest through <see cref="StageManifest.Write"/> with scores from a real
/// <see cref="ConfusionMatrix"/>.
/// </summary>
internal sealed class SyntheticRun
{
    public static readonly string[] TrainIds = { "2007_000032", "2007_000039", "2007_000063" };
    public const string ValId = "2007_000033";

    /// <summary>Loss terms of each training stage and its distinct logged steps.</summary>
    public static readonly IReadOnlyDictionary<string, (string[] Terms, int Steps)> Logs = new Dictionary<string, (string[], int)>
    {
        ["cam"] = (new[] { "Total", "Classification", "CrossEntropy" }, 7),
        ["aff"] = (new[] { "Total", "Background", "Foreground", "Negative" }, 5),
        ["seg"] = (new[] { "loss" }, 4),
    };

    /// <summary>Ground truth of the scores: background, cat (8) and dog (12).</summary>
    private static readonly byte[] Truth = { 0, 0, 0, 0, 0, 0, 8, 8, 8, 8, 12, 12 };

    /// <summary>Predictions per scored stage (each against <see cref="Truth"/>).</summary>
    private static readonly IReadOnlyDictionary<string, byte[]> Predictions = new Dictionary<string, byte[]>
    {
        ["cam"] = new byte[] { 0, 0, 0, 8, 8, 0, 8, 8, 0, 0, 12, 0 },
        ["crf"] = new byte[] { 0, 0, 0, 0, 8, 0, 8, 8, 8, 0, 12, 12 },
        ["rw"] = new byte[] { 0, 0, 0, 0, 0, 0, 8, 8, 8, 0, 12, 12 },
        ["seg"] = new byte[] { 0, 0, 0, 0, 0, 0, 8, 8, 8, 8, 0, 12 },
    };

    private SyntheticRun(string dir) => Dir = dir;

    public string Dir { get; }

    /// <summary>The scores written into the manifests, by stage.</summary>
    public Dictionary<string, SegmentationScore> Scores { get; } = new();

    /// <summary>A run folder with the given stages finished (default: all five) under <paramref name="dir"/>.</summary>
    public static SyntheticRun Write(string dir, params string[] stages)
    {
        if (stages.Length == 0)
            stages = PipelineStages.Default().Stages.Select(s => s.Name).ToArray();
        var run = new SyntheticRun(dir);
        Directory.CreateDirectory(dir);
        ExperimentJson.Write(Path.Combine(dir, "experiment.json"), ExperimentConfig.SmallCpu);
        foreach (var stage in stages)
            run.WriteStage(stage);
        return run;
    }

    private void WriteStage(string stage)
    {
        var dir = Path.Combine(Dir, stage);
        Directory.CreateDirectory(dir);
        if (Logs.TryGetValue(stage, out var log))
            WriteLog(Path.Combine(dir, "run"), log.Terms, log.Steps);
        WriteOverlays(stage, dir);
        var metrics = new Dictionary<string, double> { ["images"] = TrainIds.Length };
        if (Predictions.TryGetValue(stage, out var prediction))
        {
            var matrix = new ConfusionMatrix();
            matrix.Add(prediction, Truth);
            Scores[stage] = matrix.Score();
            StageMetrics.AddScore(metrics, Scores[stage]);
        }
        if (stage == CamStage.StageName)
        {
            metrics["bestThreshold"] = 0.25;
            metrics["mIoUAtBestThreshold"] = 0.5;
        }
        StageManifest.Write(dir, stage, "inputs-" + stage, seconds: 12.5, metrics, options: null);
    }

    /// <summary>
    /// One line per step as the training loop logs it, then steps 3 and later again from a second recorder: a run
    /// resumed from its step-2 checkpoint appends the steps it redoes.
    /// </summary>
    public static void WriteLog(string runDir, IReadOnlyList<string> terms, int steps)
    {
        Directory.CreateDirectory(runDir);
        using (var recorder = new TrainingRecorder(runDir))
            for (int step = 1; step <= steps; step++)
                recorder.Record(step, Line(step, terms, 0));
        if (steps < 3)
            return;
        using var resumed = new TrainingRecorder(runDir);
        for (int step = 3; step <= steps; step++)
            resumed.Record(step, Line(step, terms, 0.01));
    }

    private static Dictionary<string, object> Line(int step, IReadOnlyList<string> terms, double shift)
    {
        var line = new Dictionary<string, object> { ["step"] = step, ["epoch"] = 0, ["lr"] = 0.01, ["world"] = 1 };
        for (int i = 0; i < terms.Count; i++)
            line[terms[i]] = (i + 1) * 2.0 / (step + i) + shift;
        return line;
    }

    private static void WriteOverlays(string stage, string dir)
    {
        var image = Image(24, 16);
        var labels = new LabelMask(24, 16, Enumerable.Range(0, 24 * 16).Select(i => (byte)(i % 24 < 12 ? 8 : 12)).ToArray());
        var blend = Overlays.LabelBlend(image, labels);
        foreach (var id in stage == SegStage.StageName ? new[] { ValId } : TrainIds)
        {
            switch (stage)
            {
                case CamStage.StageName:
                    var cams = new CamMaps(16, 24, new[] { 8, 12 }, new[] { Ramp(24 * 16, false), Ramp(24 * 16, true) });
                    var overlays = Path.Combine(dir, "labels", "overlays");
                    Directory.CreateDirectory(overlays);
                    Overlays.WriteCamOverlays(overlays, id, image, cams, labels);
                    break;
                case AffinityStage.StageName:
                    WritePng(Path.Combine(dir, "overlays", id + "_affinity_labels.png"), blend);
                    break;
                case SegStage.StageName:
                    WritePng(Path.Combine(dir, "overlays", id + "_seg.png"), blend);
                    break;
                default:   // crf and rw
                    WritePng(Path.Combine(dir, "labels", "overlays", id + "_labels.png"), blend);
                    break;
            }
        }
    }

    public static void WritePng(string path, RgbImage image)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        ImageCodec.WriteRgbPng(path, image);
    }

    public static RgbImage Image(int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (int i = 0; i < width * height; i++)
            (pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2]) = ((byte)(10 * (i % width)), (byte)(15 * (i / width)), 90);
        return new RgbImage(width, height, pixels);
    }

    private static float[] Ramp(int n, bool down) => Enumerable.Range(0, n).Select(i => down ? 1 - i / (float)n : i / (float)n).ToArray();
}
