using EcsNet.Data;

namespace EcsNet.Labels.Evaluation;

/// <summary>
/// Scores a folder of label PNGs (named by id, palette or grey) against a split's ground-truth masks: one
/// confusion matrix over the split. The one implementation behind `ecsnet eval` and every stage's mIoU.
/// </summary>
public static class LabelEvaluation
{
    public static bool HasMasks(string vocRoot, string split, string maskFolder = VocLayout.SegmentationMasks)
    {
        var ds = VocDataset.Open(vocRoot, split, new VocOptions { Masks = MaskUse.IfPresent, MaskFolder = maskFolder, ReadAnnotations = false, VerifyImages = false });
        return ds.Samples.All(s => s.MaskPath is not null);
    }

    /// <summary>The score, or null when some image of the split has no mask.</summary>
    public static SegmentationScore? TryScore(string vocRoot, string split, string labelDir) =>
        HasMasks(vocRoot, split) ? Score(vocRoot, split, labelDir).Score : null;

    /// <summary>
    /// Every prediction must exist and have its ground truth's size; the first that does not (in split order,
    /// whatever the thread timing) stops the run with an error naming it.
    /// </summary>
    public static (SegmentationScore Score, int Images) Score(string vocRoot, string split, string predDir,
        string maskFolder = VocLayout.SegmentationMasks, CancellationToken ct = default)
    {
        if (!Directory.Exists(predDir))
            throw new BadInputException(predDir, "prediction folder not found");
        var dataset = VocDataset.Open(vocRoot, split, new VocOptions
        {
            Masks = MaskUse.Required, MaskFolder = maskFolder, ReadAnnotations = false, VerifyImages = false,
        });
        RequirePredictions(dataset, predDir);
        var total = new ConfusionMatrix();
        var errors = new BadInputException?[dataset.Count];
        var gate = new object();
        Parallel.For(0, dataset.Count, new ParallelOptions { CancellationToken = ct },
            () => new ConfusionMatrix(),
            (i, _, local) =>
            {
                var sample = dataset.Samples[i];
                var path = PredictionPath(predDir, sample.Id);
                try
                {
                    var prediction = ImageCodec.ReadLabelPng(path);
                    var truth = dataset.LoadMask(sample.Id);
                    if (prediction.Width != truth.Width || prediction.Height != truth.Height)
                        throw new BadInputException(path,
                            $"prediction is {prediction.Width}x{prediction.Height} but ground truth {sample.MaskPath} is {truth.Width}x{truth.Height}");
                    local.Add(prediction, truth);
                }
                catch (BadInputException e)
                {
                    errors[i] = e;
                }
                return local;
            },
            local => { lock (gate) total.Merge(local); });
        if (errors.FirstOrDefault(e => e is not null) is { } first)
            throw first;
        return (total.Score(), dataset.Count);
    }

    public static string PredictionPath(string predDir, string id) => Path.Combine(predDir, id + ".png");

    /// <summary>Every id of <paramref name="dataset"/> has its label PNG in <paramref name="predDir"/>; the first that has none (in split order) is named.</summary>
    public static void RequirePredictions(VocDataset dataset, string predDir)
    {
        foreach (var s in dataset.Samples)
        {
            var path = PredictionPath(predDir, s.Id);
            if (!File.Exists(path))
                throw new BadInputException(path, $"missing prediction for id '{s.Id}'");
        }
    }
}
