using EcsNet.Labels.Evaluation;

namespace EcsNet.Core.Stages;

/// <summary>
/// How a stage records a label score in its manifest metrics (docs/METHOD.md §6): the mean IoU under
/// <c>mIoU</c> and the IoU of each class present in the ground truth or the prediction under
/// <c>iou/&lt;VOC class name&gt;</c> (absent classes have no IoU and are left out).
/// </summary>
public static class StageMetrics
{
    public const string MeanIoU = "mIoU";

    /// <summary>Prefix of the per-class keys: <c>iou/aeroplane</c>.</summary>
    public const string ClassIoUPrefix = "iou/";

    /// <summary>Adds <paramref name="score"/>'s mean and per-class IoUs to <paramref name="metrics"/>.</summary>
    public static void AddScore(IDictionary<string, double> metrics, SegmentationScore score)
    {
        metrics[MeanIoU] = score.MeanIoU;
        foreach (var c in score.Classes.Where(c => c.Present))
            metrics[ClassIoUPrefix + c.Name] = c.IoU;
    }
}
