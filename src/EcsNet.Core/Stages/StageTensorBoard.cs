using EcsNet.Core.Training;

namespace EcsNet.Core.Stages;

/// <summary>
/// What a training stage adds to its run's TensorBoard folder (RUN/&lt;stage&gt;/run/tensorboard) once it has scored
/// its output, at the training's final step (docs/METRICS.md): its scores as <c>eval/&lt;metric&gt;</c> scalars and,
/// for the CAM stage, CAM overlays as image summaries. The training loop's own scalars (loss terms, learning rate)
/// are already there, one point per step.
/// </summary>
public static class StageTensorBoard
{
    public const string ScoreTagPrefix = "eval/";

    public const string OverlayTagPrefix = "overlays/";

    /// <summary>Images whose overlays are added, at most (the first of those the stage drew).</summary>
    public const int MaxOverlayImages = 4;

    /// <summary>The manifest metrics written as scalars, where a stage has them.</summary>
    public static readonly IReadOnlyList<string> Scores = new[] { StageMetrics.MeanIoU, "mIoUAtBestThreshold", "trainMIoU" };

    /// <summary>
    /// Writes the <see cref="Scores"/> found in <paramref name="metrics"/> and the <paramref name="overlayPngs"/> into
    /// one new event file of <paramref name="runDir"/>'s TensorBoard folder at <paramref name="step"/>; returns its
    /// path, or null when there was nothing to write.
    /// </summary>
    public static string? Write(string runDir, int step, IReadOnlyDictionary<string, double> metrics, IReadOnlyList<string>? overlayPngs = null)
    {
        var scores = Scores.Where(metrics.ContainsKey).ToList();
        var images = overlayPngs ?? Array.Empty<string>();
        if (scores.Count == 0 && images.Count == 0)
            return null;
        var events = new TensorBoardEventFile(Path.Combine(runDir, TrainingRecorder.TensorBoardFolder), "eval");
        foreach (var key in scores)
            events.AddScalar(ScoreTagPrefix + key, metrics[key], step);
        foreach (var png in images)
            events.AddPng(OverlayTagPrefix + Path.GetFileNameWithoutExtension(png), File.ReadAllBytes(png), step);
        return events.FilePath;
    }

    /// <summary>
    /// The CAM overlay PNGs (<c>&lt;id&gt;_labels.png</c>, then <c>&lt;id&gt;_cam_&lt;class&gt;.png</c>, as
    /// EcsNet.Labels' Overlays.WriteCamOverlays names them) of the first <see cref="MaxOverlayImages"/> of
    /// <paramref name="ids"/> in <paramref name="overlayDir"/>.
    /// </summary>
    public static IReadOnlyList<string> CamOverlayFiles(string overlayDir, IEnumerable<string> ids)
    {
        if (!Directory.Exists(overlayDir))
            return Array.Empty<string>();
        var files = new List<string>();
        foreach (var id in ids.Take(MaxOverlayImages))
        {
            var labels = Path.Combine(overlayDir, id + "_labels.png");
            if (File.Exists(labels))
                files.Add(labels);
            files.AddRange(Directory.EnumerateFiles(overlayDir, id + "_cam_*.png").Order(StringComparer.Ordinal));
        }
        return files;
    }
}
