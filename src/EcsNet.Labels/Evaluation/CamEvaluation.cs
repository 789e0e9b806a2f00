using EcsNet.Data;
using EcsNet.Labels.Cams;

namespace EcsNet.Labels.Evaluation;

/// <summary>
/// Scores saved CAMs against ground-truth masks at several background thresholds (docs/METHOD.md §2: sweep it on train
/// and report the best with its value, as papers do). Masks are read here only, for evaluation.
/// </summary>
public static class CamEvaluation
{
    public static readonly IReadOnlyList<double> DefaultThresholds =
        Enumerable.Range(1, 14).Select(i => Math.Round(i * 0.05, 2)).ToArray();

    /// <returns>(threshold, score) for each threshold, in the given order.</returns>
    public static IReadOnlyList<(double Threshold, SegmentationScore Score)> Sweep(
        string vocRoot, string split, string camDir, IReadOnlyList<double>? thresholds = null, CancellationToken ct = default)
    {
        thresholds ??= DefaultThresholds;
        var dataset = VocDataset.Open(vocRoot, split, new VocOptions { Masks = MaskUse.Required, ReadAnnotations = false, VerifyImages = false });
        var matrices = thresholds.Select(_ => new ConfusionMatrix()).ToArray();
        var gate = new object();
        Parallel.ForEach(dataset.Samples, new ParallelOptions { CancellationToken = ct }, sample =>
        {
            var cams = CamStore.Read(camDir, sample.Id);
            var truth = dataset.LoadMask(sample.Id);
            if (truth.Width != cams.Width || truth.Height != cams.Height)
                throw new BadInputException(Path.Combine(camDir, sample.Id + ".npy"),
                    $"CAM is {cams.Width}x{cams.Height} but the mask is {truth.Width}x{truth.Height}");
            var local = thresholds.Select(t => { var m = new ConfusionMatrix(); m.Add(PseudoLabels.FromCams(cams, t), truth); return m; }).ToArray();
            lock (gate)
                for (int i = 0; i < local.Length; i++)
                    matrices[i].Merge(local[i]);
        });
        return thresholds.Select((t, i) => (t, matrices[i].Score())).ToArray();
    }
}
