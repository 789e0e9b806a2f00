using EcsNet.Data;

namespace EcsNet.Core;

/// <summary>Scores a folder of label PNGs (named by id) against a split's ground-truth masks, when it has them.</summary>
public static class LabelEvaluation
{
    public static bool HasMasks(string vocRoot, string split)
    {
        var ds = VocDataset.Open(vocRoot, split, new VocOptions { Masks = MaskUse.IfPresent, ReadAnnotations = false, VerifyImages = false });
        return ds.Samples.All(s => s.MaskPath is not null);
    }

    /// <summary>The score, or null when some image of the split has no mask.</summary>
    public static SegmentationScore? TryScore(string vocRoot, string split, string labelDir)
    {
        var ds = VocDataset.Open(vocRoot, split, new VocOptions { Masks = MaskUse.IfPresent, ReadAnnotations = false, VerifyImages = false });
        if (ds.Samples.Any(s => s.MaskPath is null))
            return null;
        var total = new ConfusionMatrix();
        var gate = new object();
        Parallel.ForEach(ds.Samples, () => new ConfusionMatrix(), (sample, _, local) =>
        {
            var path = Path.Combine(labelDir, sample.Id + ".png");
            if (!File.Exists(path))
                throw new BadInputException(path, $"missing label map for id '{sample.Id}'");
            var prediction = ImageCodec.ReadLabelPng(path);
            var truth = ImageCodec.ReadLabelPng(sample.MaskPath!);
            if (prediction.Width != truth.Width || prediction.Height != truth.Height)
                throw new BadInputException(path, $"label map is {prediction.Width}x{prediction.Height}, mask {sample.MaskPath} is {truth.Width}x{truth.Height}");
            local.Add(prediction, truth);
            return local;
        }, local => { lock (gate) total.Merge(local); });
        return total.Score();
    }
}
