using System.Text.Json;
using EcsNet.Core.Stages;
using EcsNet.Data;

namespace EcsNet.Control.Reports;

/// <summary>
/// What a run folder holds, read for the run report (docs/REPORT.md): each pipeline stage's manifest, training log
/// and per-class IoUs, and the overlay PNGs of a few images. Reading is separate from rendering
/// (<see cref="RunReport"/>), so the same data can come from elsewhere later.
/// </summary>
/// <param name="RunDir">The run folder, as given.</param>
/// <param name="Name">The run folder's name (the report's title).</param>
/// <param name="Stages">The stages that have a folder, in pipeline order.</param>
/// <param name="OverlayColumns">The overlay columns of the stages that have a folder.</param>
/// <param name="Overlays">One row per image, the most complete rows first.</param>
/// <param name="Experiment">RUN/experiment.json as written, or null when there is none.</param>
public sealed record RunReportData(
    string RunDir, string Name, IReadOnlyList<StageReport> Stages, IReadOnlyList<OverlayColumn> OverlayColumns,
    IReadOnlyList<OverlayRow> Overlays, string? Experiment)
{
    /// <summary>Name of the training log every training stage writes in RUN/&lt;stage&gt;/run/ (see TrainingRecorder).</summary>
    public const string TrainLogFile = "train-log.jsonl";

    /// <summary>Keys of a training-log line that are not loss terms.</summary>
    private static readonly HashSet<string> NotTerms = new(StringComparer.Ordinal) { "step", "epoch", "lr", "world" };

    /// <summary>
    /// The overlay columns: where each stage writes its overlays (Overlays.WriteCamOverlays in CamStage, CrfStage,
    /// AffinityStage, RandomWalkStage, SegInference), in pipeline order.
    /// </summary>
    public static readonly IReadOnlyList<OverlayColumn> AllOverlayColumns = new OverlayColumn[]
    {
        new("CAM", CamStage.StageName, "labels/overlays", "_cam_", PerClass: true),
        new("pseudo-label", CamStage.StageName, "labels/overlays", "_labels"),
        new("CRF", CrfStage.StageName, "labels/overlays", "_labels"),
        new("affinity labels", AffinityStage.StageName, "overlays", "_affinity_labels"),
        new("random walk", RandomWalkStage.StageName, "labels/overlays", "_labels"),
        new("segmentation (val)", SegStage.StageName, "overlays", "_seg"),
    };

    /// <summary>Reads <paramref name="runDir"/>; <paramref name="overlayImages"/> caps the rows of the overlay grid.</summary>
    /// <exception cref="BadInputException">The folder is missing or has no stage folder.</exception>
    public static RunReportData Read(string runDir, int overlayImages = 4)
    {
        if (!Directory.Exists(runDir))
            throw new BadInputException(runDir, "run folder not found");
        var pipeline = PipelineStages.Default().Stages;
        var experimentFile = Path.Combine(runDir, "experiment.json");
        // The pipeline rewrites RUN/experiment.json whenever it starts: a stage finished before that was reused.
        DateTime? lastStart = File.Exists(experimentFile) ? File.GetLastWriteTimeUtc(experimentFile) : null;
        var stages = pipeline
            .Where(s => Directory.Exists(Path.Combine(runDir, s.Name)))
            .Select(s => ReadStage(Path.Combine(runDir, s.Name), s, lastStart))
            .ToList();
        if (stages.Count == 0)
            throw new BadInputException(runDir,
                $"no stage folder ({string.Join(", ", pipeline.Select(s => s.Name))}); is this a pipeline run folder?");
        var columns = AllOverlayColumns.Where(c => stages.Any(s => s.Stage == c.Stage)).ToList();
        return new RunReportData(runDir, FolderName(runDir), stages, columns, ReadOverlays(runDir, columns, overlayImages),
            File.Exists(experimentFile) ? File.ReadAllText(experimentFile) : null);
    }

    private static string FolderName(string dir) => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)));

    private static StageReport ReadStage(string dir, IPipelineStage stage, DateTime? lastStart)
    {
        var manifest = StageManifest.TryLoad(dir);
        bool? reused = manifest is null || lastStart is null ? null : manifest.FinishedUtc < lastStart;
        var log = Path.Combine(dir, "run", TrainLogFile);
        var classes = manifest is null ? Array.Empty<ClassIoU>() : ClassIoUs(manifest.Metrics);
        return new StageReport(stage.Name, stage.Title, manifest, reused, File.Exists(log) ? ReadLosses(log) : null, classes);
    }

    /// <summary>The <c>iou/&lt;class&gt;</c> metrics (<see cref="StageMetrics"/>), VOC classes in VOC order, others after.</summary>
    public static IReadOnlyList<ClassIoU> ClassIoUs(IReadOnlyDictionary<string, double> metrics) =>
        metrics.Where(p => p.Key.StartsWith(StageMetrics.ClassIoUPrefix, StringComparison.Ordinal))
            .Select(p => new ClassIoU(p.Key[StageMetrics.ClassIoUPrefix.Length..], p.Value))
            .OrderBy(c => VocClasses.IndexOf(c.Class) is var i and >= 0 ? i : int.MaxValue)
            .ThenBy(c => c.Class, StringComparer.Ordinal)
            .ToList();

    /// <summary>
    /// The loss terms of a training log (one JSON object per line: step, epoch, lr, world and one number per term).
    /// A step logged twice (redone after a resume) keeps its last line; an unreadable line (a crash mid-write) is skipped.
    /// </summary>
    public static LossLog ReadLosses(string path)
    {
        var lines = new SortedDictionary<int, Dictionary<string, double>>();
        var names = new List<string>();
        foreach (var line in File.ReadLines(path))
        {
            if (ParseLine(line) is not { } values || !values.Remove("step", out var step))
                continue;
            foreach (var name in values.Keys.Where(k => !NotTerms.Contains(k) && !names.Contains(k)))
                names.Add(name);
            lines[(int)step] = values;
        }
        var terms = names.Select(name => new LossSeries(name,
            lines.Where(l => l.Value.ContainsKey(name)).Select(l => new LossPoint(l.Key, l.Value[name])).ToList())).ToList();
        return new LossLog(lines.Count, terms);
    }

    private static Dictionary<string, double>? ParseLine(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                return null;
            return doc.RootElement.EnumerateObject()
                .Where(p => p.Value.ValueKind == JsonValueKind.Number)
                .ToDictionary(p => p.Name, p => p.Value.GetDouble(), StringComparer.Ordinal);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The ids that have an overlay in some column, ordered by how many columns they fill, then by id.</summary>
    private static IReadOnlyList<OverlayRow> ReadOverlays(string runDir, IReadOnlyList<OverlayColumn> columns, int count)
    {
        var found = columns.Select(c => c.Find(runDir)).ToList();
        return found.SelectMany(f => f.Keys).Distinct()
            .OrderByDescending(id => found.Count(f => f.ContainsKey(id)))
            .ThenBy(id => id, StringComparer.Ordinal)
            .Take(Math.Max(0, count))
            .Select(id => new OverlayRow(id, found.Select(f => f.GetValueOrDefault(id)).ToList()))
            .ToList();
    }
}

/// <summary>One stage of a run: its manifest (null while unfinished), its loss log and per-class IoUs.</summary>
/// <param name="Reused">Whether the last pipeline invocation reused it; null when unknown (no manifest or no RUN/experiment.json).</param>
/// <param name="Losses">RUN/&lt;stage&gt;/run/train-log.jsonl of a training stage (cam, aff, seg), else null.</param>
public sealed record StageReport(
    string Stage, string Title, StageManifest? Manifest, bool? Reused, LossLog? Losses, IReadOnlyList<ClassIoU> ClassIoUs)
{
    public double? Metric(string key) => Manifest is not null && Manifest.Metrics.TryGetValue(key, out var v) ? v : null;

    /// <summary>The stage's mIoU in [0, 1] (CAM, CRF, random walk: train labels; segmentation: val).</summary>
    public double? MeanIoU => Metric(StageMetrics.MeanIoU);

    /// <summary>The CAM stage's best background threshold and the mIoU at it.</summary>
    public (double Threshold, double MeanIoU)? BestThreshold =>
        Metric("bestThreshold") is { } t && Metric("mIoUAtBestThreshold") is { } m ? (t, m) : null;
}

/// <summary>The IoU of one class, in [0, 1].</summary>
public sealed record ClassIoU(string Class, double IoU);

/// <summary>A training log's loss terms over its steps.</summary>
/// <param name="Steps">Distinct steps logged.</param>
public sealed record LossLog(int Steps, IReadOnlyList<LossSeries> Terms);

/// <summary>One loss term's values by step.</summary>
public sealed record LossSeries(string Name, IReadOnlyList<LossPoint> Points);

/// <summary>A loss term's value at one step.</summary>
public sealed record LossPoint(int Step, double Value);

/// <summary>
/// Where one column of the overlay grid comes from: RUN/&lt;stage&gt;/&lt;folder&gt;/&lt;id&gt;&lt;marker&gt;.png, or with
/// <paramref name="PerClass"/> RUN/&lt;stage&gt;/&lt;folder&gt;/&lt;id&gt;&lt;marker&gt;&lt;class&gt;.png (one CAM overlay per class).
/// </summary>
public sealed record OverlayColumn(string Title, string Stage, string Folder, string Marker, bool PerClass = false)
{
    /// <summary>This column's overlay files by image id (per-class columns: the first class in name order).</summary>
    public IReadOnlyDictionary<string, OverlayFile> Find(string runDir)
    {
        var dir = Path.Combine(runDir, Stage, Folder);
        var found = new Dictionary<string, OverlayFile>(StringComparer.Ordinal);
        if (!Directory.Exists(dir))
            return found;
        foreach (var path in Directory.EnumerateFiles(dir, "*.png").Order(StringComparer.Ordinal))
        {
            var stem = Path.GetFileNameWithoutExtension(path);
            int at = stem.LastIndexOf(Marker, StringComparison.Ordinal);
            var detail = at > 0 ? stem[(at + Marker.Length)..] : "";
            if (at > 0 && PerClass == (detail.Length > 0))
                found.TryAdd(stem[..at], new OverlayFile(path, detail));
        }
        return found;
    }
}

/// <summary>An overlay PNG; <paramref name="Detail"/> is what the wildcard matched (the class of a CAM overlay).</summary>
public sealed record OverlayFile(string Path, string Detail);

/// <summary>One image's overlays, one per column (null where that stage wrote none for it).</summary>
public sealed record OverlayRow(string ImageId, IReadOnlyList<OverlayFile?> Cells);
