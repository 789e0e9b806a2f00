using System.Text.Json;
using EcsNet.Cluster.Messages;
using EcsNet.Control.Api;
using EcsNet.Control.Registry;
using EcsNet.Control.Reports;
using EcsNet.Core.Stages;
using EcsNet.Data;

namespace EcsNet.Control.Runs;

/// <summary>
/// A control-API run's folder: <c>experiment.json</c> (the resolved options every node reads), <c>data/</c> for a
/// synthetic data set, and the pipeline's stage folders (cam, crf, aff, rw, seg). docs/CONTROL.md, "Runs".
/// </summary>
public static class RunFolder
{
    public const string ExperimentFileName = "experiment.json";
    public const string DataFolder = "data";

    /// <summary>
    /// Writes the experiment and, for a synthetic data set, generates it (once: a resumed run keeps it), and returns
    /// the coordinator's run spec (without its attempt id).
    /// </summary>
    public static RunSpec Prepare(string runDir, ResolvedExperiment experiment, int workers)
    {
        Directory.CreateDirectory(runDir);
        var experimentFile = Path.Combine(runDir, ExperimentFileName);
        ExperimentJson.Write(experimentFile, experiment.Config);
        string vocRoot, train = "train", val = "val";
        if (experiment.Dataset.SourceCase == V1.Dataset.SourceOneofCase.Synthetic)
        {
            vocRoot = Path.Combine(runDir, DataFolder);
            var s = experiment.Dataset.Synthetic;
            var synth = new SynthOptions { TrainImages = s.TrainImages, ValImages = s.ValImages, Seed = s.Seed };
            if (s.Size > 0)
                synth = synth with { Size = s.Size };
            var marker = Path.Combine(vocRoot, "synth.json");
            var wanted = JsonSerializer.Serialize(synth);
            if (!File.Exists(marker) || File.ReadAllText(marker) != wanted)
            {
                if (Directory.Exists(vocRoot))
                    Directory.Delete(vocRoot, recursive: true);
                SyntheticVoc.Generate(vocRoot, synth);
                File.WriteAllText(marker, wanted);
            }
        }
        else
        {
            vocRoot = experiment.Dataset.Voc.Root;
            if (experiment.Dataset.Voc.TrainSplit.Length > 0) train = experiment.Dataset.Voc.TrainSplit;
            if (experiment.Dataset.Voc.ValSplit.Length > 0) val = experiment.Dataset.Voc.ValSplit;
        }
        var spec = new RunSpec
        {
            ExperimentFile = experimentFile, VocRoot = vocRoot, TrainSplit = train, ValSplit = val, RunDir = runDir, Workers = workers,
        };
        spec.Stages.AddRange(experiment.Stages);
        return spec;
    }

    public const string ReportFileName = "report.html";

    /// <summary>
    /// Writes the run's report (docs/REPORT.md) as <see cref="ReportFileName"/> in its folder, as it stands now;
    /// returns its path, or null when no stage has output yet.
    /// </summary>
    public static string? WriteReport(string runDir)
    {
        string html;
        try
        {
            html = RunReport.Build(runDir);
        }
        catch (BadInputException)
        {
            return null;   // nothing to report yet
        }
        var path = Path.Combine(runDir, ReportFileName);
        AtomicFile.WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(html));
        return path;
    }

    /// <summary>The kinds of artifact <see cref="Artifacts"/> sorts files into.</summary>
    public static readonly IReadOnlyList<string> Kinds = new[] { "checkpoints", "labels", "overlays", "tables", "report", "logs" };

    /// <summary>The run's files by kind, paths relative to the run folder ('/'-separated); the data set is not an artifact.</summary>
    public static IEnumerable<ArtifactRecord> Artifacts(string runDir)
    {
        if (!Directory.Exists(runDir))
            yield break;
        foreach (var file in Directory.EnumerateFiles(runDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var rel = Path.GetRelativePath(runDir, file).Replace(Path.DirectorySeparatorChar, '/');
            if (rel.StartsWith(DataFolder + "/", StringComparison.Ordinal) || rel.EndsWith(".tmp", StringComparison.Ordinal))
                continue;
            if (KindOf(rel) is { } kind)
                yield return new ArtifactRecord(kind, rel);
        }
    }

    /// <summary>The kind of a run folder's file (null: not an artifact, e.g. caches).</summary>
    public static string? KindOf(string relativePath)
    {
        var parts = relativePath.Split('/');
        var name = parts[^1];
        if (parts.Contains("checkpoints"))
            return "checkpoints";
        if (parts.Contains("overlays"))
            return "overlays";
        if (name.StartsWith("events.out.tfevents", StringComparison.Ordinal) || name.EndsWith(".log", StringComparison.Ordinal) ||
            name.EndsWith(".jsonl", StringComparison.Ordinal))
            return "logs";
        if (name.EndsWith(".html", StringComparison.Ordinal))
            return "report";
        if (name.EndsWith(".png", StringComparison.Ordinal))
            return "labels";
        if (name.EndsWith(".json", StringComparison.Ordinal) || name.EndsWith(".csv", StringComparison.Ordinal) || name.EndsWith(".md", StringComparison.Ordinal))
            return "tables";
        return null;
    }
}
