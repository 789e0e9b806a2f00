using EcsNet.Core.Ecs;
using EcsNet.Core.Nets;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Evaluation;
using EcsNet.Labels.Propagation;
using TorchSharp;

namespace EcsNet.Core.Stages;

/// <summary>One stage's pseudo labels, broken down against the ground truth.</summary>
public sealed record StageBreakdown(string Stage, LabelBreakdown Breakdown);

/// <summary>What <see cref="RunDiagnostics.Diagnose"/> found: each labelling stage's errors, and AffinityNet's training labels.</summary>
public sealed record RunDiagnosis(IReadOnlyList<StageBreakdown> Stages, AffinityLabelScore? Affinity, bool HasParts, int Images)
{
    /// <summary>ECS-Net's erased regions and reliable labels Φ, recomputed with the trained CAM network; null when not asked or not ECS-Net.</summary>
    public ReliableLabelScore? Reliable { get; init; }
}

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
    /// <param name="reliable">Recompute and score R and Φ with the trained CAM network (two passes per image) when the run trained ECS-Net.</param>
    public static RunDiagnosis Diagnose(string runDir, string vocRoot, string split, bool affinity = true, bool reliable = true, CancellationToken ct = default)
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
            LabelEvaluation.RequirePredictions(dataset, dir);
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
                    var parts = PartsOf(hasParts ? partsDir : null, sample.Id);
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
        var camRun = Path.Combine(runDir, CamStage.StageName, "run");
        return new RunDiagnosis(stages.Select((s, k) => new StageBreakdown(s.stage, breakdowns[k])).ToList(),
            scoreAffinity ? affinityScore : null, hasParts, dataset.Count)
        {
            Reliable = reliable && config.Cam.Method == CamMethod.Ecs && Directory.Exists(camRun)
                ? ScoreReliable(config, camRun, dataset, hasParts ? partsDir : null, ct)
                : null,
        };
    }

    /// <summary>
    /// R and Φ of each image as training computes them (<see cref="EcsObjective.EraseAndPass"/>,
    /// <see cref="EcsObjective.ReliableTarget"/>), on the whole image instead of an augmented crop, against its mask.
    /// </summary>
    public static ReliableLabelScore ScoreReliable(ExperimentConfig config, string camRun, VocDataset dataset, string? partsDir, CancellationToken ct = default)
    {
        using var model = CamStage.CreateModel(config);
        Checkpoints.LoadWeights(model, camRun);
        model.eval();
        var score = new ReliableLabelScore();
        foreach (var sample in dataset.Samples)
        {
            ct.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            using var _ = torch.no_grad();
            var image = dataset.LoadImage(sample.Id);
            int h = image.Height, w = image.Width;
            var x = torch.tensor(Augmentation.Normalize(image, config.Augment.Mean, config.Augment.Std)).view(1, 3, h, w);
            var labels = torch.tensor(sample.LabelVector()).view(1, -1);
            var (_, second, region, s) = EcsObjective.EraseAndPass(model, x, labels);
            var target = EcsObjective.ReliableTarget(model.Options, second, region, s, labels);
            var phi = torch.nn.functional.interpolate(target.unsqueeze(1).to_type(torch.ScalarType.Float32), new long[] { h, w },
                mode: torch.InterpolationMode.Nearest).to_type(torch.ScalarType.Byte);
            var erased = region.to_type(torch.ScalarType.Byte);
            score.Add(new LabelMask(w, h, erased.data<byte>().ToArray()), new LabelMask(w, h, phi.data<byte>().ToArray()),
                dataset.LoadMask(sample.Id), PartsOf(partsDir, sample.Id));
        }
        return score;
    }

    /// <summary>The part mask of image <paramref name="id"/> in a synthetic set's <paramref name="partsDir"/>; null without one.</summary>
    private static LabelMask? PartsOf(string? partsDir, string id)
    {
        var file = partsDir is null ? null : Path.Combine(partsDir, id + ".png");
        return file is not null && File.Exists(file) ? ImageCodec.ReadLabelPng(file) : null;
    }
}
