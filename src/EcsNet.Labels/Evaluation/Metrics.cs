using System.Globalization;
using EcsNet.Data;

namespace EcsNet.Labels.Evaluation;

/// <summary>Evaluation of label maps (docs/METHOD.md §6): confusion matrix, per-class IoU, mIoU, in the paper's Table 7 layout.</summary>
public static class Metrics
{
    /// <summary>
    /// Column heads of the paper's Table 7 (per-class IoU on VOC 2012 val), in its order: the VOC class
    /// order with the paper's abbreviations, followed by "mean".
    /// </summary>
    public static readonly IReadOnlyList<string> Table7Columns = new[]
    {
        "bkg", "aero", "bike", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "table", "dog", "horse", "mbk", "person", "plant", "sheep", "sofa", "train", "tv",
    };

    /// <summary>Class index of each Table 7 column (the table follows the VOC class order).</summary>
    public static readonly IReadOnlyList<int> Table7Order = Enumerable.Range(0, VocClasses.Count).ToArray();
}

/// <summary>One class's line of a score.</summary>
/// <param name="IoU">Intersection over union in [0, 1]; NaN when the class is in neither ground truth nor prediction.</param>
public sealed record ClassScore(int Index, string Name, string Column, double IoU, long GroundTruthPixels, long PredictedPixels)
{
    public bool Present => !double.IsNaN(IoU);
}

/// <summary>A finished evaluation, classes in Table 7 order.</summary>
/// <param name="MeanIoU">Mean of the IoUs of the present classes (see <see cref="ConfusionMatrix.MeanIoU"/>).</param>
/// <param name="PixelAccuracy">Correct pixels / counted (non-ignore) pixels.</param>
public sealed record SegmentationScore(IReadOnlyList<ClassScore> Classes, double MeanIoU, double PixelAccuracy, int ClassesCounted, long Pixels)
{
    /// <summary>The Table 7 row: 21 per-class IoUs then the mean, in percent with one decimal ("-" for absent classes).</summary>
    public string Table7Row() =>
        string.Join(' ', Classes.Select(c => Percent(c.IoU)).Append(Percent(MeanIoU)));

    public static string Percent(double v) =>
        double.IsNaN(v) ? "-" : (100 * v).ToString("0.0", CultureInfo.InvariantCulture);
}

/// <summary>
/// Pixel confusion counts accumulated over a split: rows are ground truth, columns prediction. Ground-truth
/// pixels labelled ignore (255) are not counted. A predicted value outside 0..classes−1 (e.g. an ignore
/// left in a pseudo label) counts against the ground-truth class (a miss) but as no class's prediction.
/// </summary>
public sealed class ConfusionMatrix
{
    private readonly long[] counts;
    private readonly long[] missed;

    public ConfusionMatrix(int classes = VocClasses.Count, byte ignoreLabel = VocClasses.Ignore)
    {
        if (classes is < 1 or > 255)
            throw new ArgumentOutOfRangeException(nameof(classes), "1..255 classes");
        Classes = classes;
        IgnoreLabel = ignoreLabel;
        counts = new long[classes * classes];
        missed = new long[classes];
    }

    public int Classes { get; }

    public byte IgnoreLabel { get; }

    /// <summary>Pixels with ground truth <paramref name="gt"/> predicted as <paramref name="pred"/>.</summary>
    public long this[int gt, int pred] => counts[gt * Classes + pred];

    /// <summary>Pixels of ground-truth class <paramref name="gt"/> whose prediction was no class at all.</summary>
    public long Missed(int gt) => missed[gt];

    /// <summary>Counted pixels (ground truth not ignore).</summary>
    public long Pixels => counts.Sum() + missed.Sum();

    /// <summary>Adds one image's prediction against its ground truth; the two must be the same size.</summary>
    public void Add(LabelMask prediction, LabelMask groundTruth)
    {
        if (prediction.Width != groundTruth.Width || prediction.Height != groundTruth.Height)
            throw new ArgumentException(
                $"prediction is {prediction.Width}x{prediction.Height} but ground truth is {groundTruth.Width}x{groundTruth.Height}");
        Add(prediction.Labels, groundTruth.Labels);
    }

    /// <summary>Adds flat label arrays of equal length.</summary>
    public void Add(ReadOnlySpan<byte> prediction, ReadOnlySpan<byte> groundTruth)
    {
        if (prediction.Length != groundTruth.Length)
            throw new ArgumentException($"prediction has {prediction.Length} pixels but ground truth has {groundTruth.Length}");
        for (int i = 0; i < groundTruth.Length; i++)
        {
            int gt = groundTruth[i];
            if (gt == IgnoreLabel)
                continue;
            if (gt >= Classes)
                throw new ArgumentException($"ground-truth label {gt} at pixel {i} is neither a class (0..{Classes - 1}) nor ignore ({IgnoreLabel})");
            int pred = prediction[i];
            if (pred < Classes)
                counts[gt * Classes + pred]++;
            else
                missed[gt]++;
        }
    }

    /// <summary>Adds another matrix's counts (e.g. from a parallel worker).</summary>
    public void Merge(ConfusionMatrix other)
    {
        if (other.Classes != Classes)
            throw new ArgumentException($"cannot merge a {other.Classes}-class matrix into a {Classes}-class one");
        for (int i = 0; i < counts.Length; i++)
            counts[i] += other.counts[i];
        for (int i = 0; i < missed.Length; i++)
            missed[i] += other.missed[i];
    }

    public long GroundTruthPixels(int c)
    {
        long s = missed[c];
        for (int p = 0; p < Classes; p++)
            s += counts[c * Classes + p];
        return s;
    }

    public long PredictedPixels(int c)
    {
        long s = 0;
        for (int g = 0; g < Classes; g++)
            s += counts[g * Classes + c];
        return s;
    }

    /// <summary>TP / (GT + Pred − TP) for class <paramref name="c"/>; NaN when the class is in neither.</summary>
    public double IoU(int c)
    {
        long tp = this[c, c];
        long union = GroundTruthPixels(c) + PredictedPixels(c) - tp;
        return union == 0 ? double.NaN : (double)tp / union;
    }

    /// <summary>
    /// Mean IoU over the classes present in the ground truth or the prediction. The VOC standard averages all
    /// 21 classes; on a full VOC split every class is present, so the two agree. On a subset (a few images, a
    /// synthetic set with 6 classes) a class absent from both would have 0/0 IoU; it is left out of the mean
    /// rather than counted as 0 or 1. NaN when nothing was counted.
    /// </summary>
    public double MeanIoU
    {
        get
        {
            var present = Enumerable.Range(0, Classes).Select(IoU).Where(v => !double.IsNaN(v)).ToList();
            return present.Count == 0 ? double.NaN : present.Average();
        }
    }

    /// <summary>Correctly labelled pixels over counted pixels; NaN when nothing was counted.</summary>
    public double PixelAccuracy
    {
        get
        {
            long total = Pixels, correct = 0;
            for (int c = 0; c < Classes; c++)
                correct += this[c, c];
            return total == 0 ? double.NaN : (double)correct / total;
        }
    }

    /// <summary>The per-class table (VOC classes; Table 7 order and column heads) with mean IoU and pixel accuracy.</summary>
    public SegmentationScore Score()
    {
        if (Classes != VocClasses.Count)
            throw new InvalidOperationException($"the Table 7 layout needs the {VocClasses.Count} VOC classes; this matrix has {Classes}");
        var classes = Metrics.Table7Order.Select(c => new ClassScore(
            c, VocClasses.Names[c], Metrics.Table7Columns[c], IoU(c), GroundTruthPixels(c), PredictedPixels(c))).ToList();
        return new SegmentationScore(classes, MeanIoU, PixelAccuracy, classes.Count(c => c.Present), Pixels);
    }
}
