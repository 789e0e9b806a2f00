using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Evaluation;
using EcsNet.Labels.Propagation;

namespace EcsNet.Core.Stages;

/// <summary>One stage's pseudo labels, broken down against the ground truth.</summary>
public sealed record StageBreakdown(string Stage, LabelBreakdown Breakdown);

/// <summary>What <see cref="RunDiagnostics.Diagnose"/> found: each labelling stage's errors, and AffinityNet's training labels.</summary>
public sealed record RunDiagnosis(IReadOnlyList<StageBreakdown> Stages, AffinityLabelScore? Affinity, bool HasParts, int Images);

/// <summary>
/// Why a run's labels are what they are, against a split's ground-truth masks (docs/RESULTS.md uses it): for the
/// cam, crf and rw stages, object pixels missed, mislabelled and bled into the background (and, on a synthetic
/// set, the part and the body of each object apart); for AffinityNet, its la/ha training labels recomputed from
/// the run's CAMs with the run's experiment, cell by cell and pair by pair. Reads the run folder only.
/// </summary>
public static class RunDiagnostics
{
    /// <summary>Stages whose <c>labels/</c> folder holds one label PNG per image of the split they labelled.</summary>
    public static readonly IReadOnlyList<string> LabelStages = new[] { CamStage.StageName, CrfStage.StageName, RandomWalkStage.StageName };

    /// <param name="runDir">A pipeline run folder (<c>experiment.json</c> and one folder per stage).</param>
    /// <param name="affinity">Recompute and score the la/ha labels (two CRFs per image) when the run has CAMs.</param>
    public static RunDiagnosis Diagnose(string runDir, string vocRoot, string split, bool affinity = true, CancellationToken ct = default)
    {
        var experiment = Path.Combine(runDir, "experiment.json");
        if (!File.Exists(experiment))
            throw new BadInputException(runDir, "not a pipeline run folder (experiment.json is missing)");
        var config = ExperimentJson.Read(experiment);
        var dataset = VocDataset.Open(vocRoot, split, new VocOptions { Masks = MaskUse.Required, VerifyImages = false });
        var partsDir = Path.Combine(dataset.Root, SyntheticVoc.PartsFolder);
        bool hasParts = Directory.Exists(partsDir);

        var stages = LabelStages
            .Select(stage => (stage, dir: Path.Combine(runDir, stage, "labels")))
            .Where(s => Directory.Exists(s.dir))
            .ToList();
        foreach (var (_, dir) in stages)
            foreach (var sample in dataset.Samples)
                if (!File.Exists(LabelEvaluation.PredictionPath(dir, sample.Id)))
                    throw new BadInputException(LabelEvaluation.PredictionPath(dir, sample.Id), $"missing label for id '{sample.Id}' of split {split}");
        var camDir = Path.Combine(runDir, CamStage.StageName, "labels", "cams");
        bool scoreAffinity = affinity && Directory.Exists(camDir);

        var breakdowns = stages.Select(_ => new LabelBreakdown()).ToArray();
        var affinityScore = new AffinityLabelScore();
        var gate = new object();
        BadInputException? error = null;
        Parallel.For(0, dataset.Count, new ParallelOptions { CancellationToken = ct },
            () => (Stages: stages.Select(_ => new LabelBreakdown()).ToArray(), Affinity: new AffinityLabelScore()),
            (i, _, local) =>
            {
                var sample = dataset.Samples[i];
                try
                {
                    var truth = dataset.LoadMask(sample.Id);
                    var partsFile = Path.Combine(partsDir, sample.Id + ".png");
                    var parts = hasParts && File.Exists(partsFile) ? ImageCodec.ReadLabelPng(partsFile) : null;
                    for (int s = 0; s < stages.Count; s++)
                        local.Stages[s].Add(ImageCodec.ReadLabelPng(LabelEvaluation.PredictionPath(stages[s].dir, sample.Id)), truth, parts);
                    if (scoreAffinity)
                    {
                        var cams = CamStore.Read(camDir, sample.Id, sample.Labels);
                        var maps = AffinityStage.ScoreMaps(dataset.LoadImage(sample.Id), cams, config);
                        local.Affinity.Add(AffinityLabels.Decide(maps, config.AffinityLabels), truth, config.AffinityLabels.Stride, config.Affinity.Radius);
                    }
                }
                catch (BadInputException e)
                {
                    lock (gate) error ??= new BadInputException($"image {sample.Id}", e.Message, e);
                }
                return local;
            },
            local =>
            {
                lock (gate)
                {
                    for (int s = 0; s < stages.Count; s++)
                        breakdowns[s].Merge(local.Stages[s]);
                    affinityScore.Merge(local.Affinity);
                }
            });
        if (error is not null)
            throw error;
        return new RunDiagnosis(stages.Select((s, k) => new StageBreakdown(s.stage, breakdowns[k])).ToList(),
            scoreAffinity ? affinityScore : null, hasParts, dataset.Count);
    }
}
