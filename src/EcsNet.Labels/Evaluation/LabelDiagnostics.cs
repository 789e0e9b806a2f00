using EcsNet.Data;

namespace EcsNet.Labels.Evaluation;

/// <summary>
/// Where a label map goes wrong against the ground truth, in pixels: object pixels missed (labelled background),
/// given another class, or left unlabelled (ignore); background pixels labelled as an object (bleed). With part
/// masks (a synthetic set's <c>SyntheticParts</c>, the class-specific part of each object) it also splits the
/// object pixels labelled right into the part and the rest of the body: how much of each object a CAM covers
/// beyond its discriminative part (paper §1, the problem ECS-Net addresses).
/// </summary>
public sealed class LabelBreakdown
{
    public long ObjectPixels { get; private set; }
    public long ObjectRight { get; private set; }
    public long ObjectAsBackground { get; private set; }
    public long ObjectWrongClass { get; private set; }
    public long ObjectIgnored { get; private set; }
    public long BackgroundPixels { get; private set; }
    public long BackgroundAsObject { get; private set; }
    public long BackgroundIgnored { get; private set; }
    public long PartPixels { get; private set; }
    public long PartRight { get; private set; }
    public long BodyPixels { get; private set; }
    public long BodyRight { get; private set; }
    public int Images { get; private set; }

    /// <summary>Object pixels labelled with their class (recall of the objects).</summary>
    public double ObjectRecall => Ratio(ObjectRight, ObjectPixels);

    /// <summary>Pixels labelled as some object that are that object (precision of the object labels).</summary>
    public double ObjectPrecision => Ratio(ObjectRight, ObjectRight + ObjectWrongClass + BackgroundAsObject);

    /// <summary>Object pixels labelled background.</summary>
    public double MissedRate => Ratio(ObjectAsBackground, ObjectPixels);

    /// <summary>Object pixels labelled another class.</summary>
    public double WrongClassRate => Ratio(ObjectWrongClass, ObjectPixels);

    /// <summary>Object pixels left unlabelled (ignore).</summary>
    public double IgnoredRate => Ratio(ObjectIgnored, ObjectPixels);

    /// <summary>Background pixels labelled as an object.</summary>
    public double BleedRate => Ratio(BackgroundAsObject, BackgroundPixels);

    /// <summary>Part pixels labelled with their object's class; NaN without part masks.</summary>
    public double PartRecall => Ratio(PartRight, PartPixels);

    /// <summary>Object pixels outside the part labelled with their class; NaN without part masks.</summary>
    public double BodyRecall => Ratio(BodyRight, BodyPixels);

    /// <param name="prediction">Labels 0 background, 1..20, 255 ignore.</param>
    /// <param name="truth">Ground truth of the same size; its 255 pixels are not counted.</param>
    /// <param name="parts">Optional part mask of the same size (non-zero, non-255 = a part pixel).</param>
    public void Add(LabelMask prediction, LabelMask truth, LabelMask? parts = null)
    {
        CheckSize(prediction, truth, "prediction");
        if (parts is not null)
            CheckSize(parts, truth, "part mask");
        for (int i = 0; i < truth.Labels.Length; i++)
        {
            byte t = truth.Labels[i], p = prediction.Labels[i];
            if (t == VocClasses.Ignore)
                continue;
            if (t == VocClasses.Background)
            {
                BackgroundPixels++;
                if (p == VocClasses.Ignore) BackgroundIgnored++;
                else if (p != VocClasses.Background) BackgroundAsObject++;
                continue;
            }
            ObjectPixels++;
            bool right = p == t;
            if (right) ObjectRight++;
            else if (p == VocClasses.Background) ObjectAsBackground++;
            else if (p == VocClasses.Ignore) ObjectIgnored++;
            else ObjectWrongClass++;
            if (parts is null)
                continue;
            byte part = parts.Labels[i];
            if (part != VocClasses.Background && part != VocClasses.Ignore)
            {
                PartPixels++;
                if (right) PartRight++;
            }
            else
            {
                BodyPixels++;
                if (right) BodyRight++;
            }
        }
        Images++;
    }

    public void Merge(LabelBreakdown other)
    {
        ObjectPixels += other.ObjectPixels;
        ObjectRight += other.ObjectRight;
        ObjectAsBackground += other.ObjectAsBackground;
        ObjectWrongClass += other.ObjectWrongClass;
        ObjectIgnored += other.ObjectIgnored;
        BackgroundPixels += other.BackgroundPixels;
        BackgroundAsObject += other.BackgroundAsObject;
        BackgroundIgnored += other.BackgroundIgnored;
        PartPixels += other.PartPixels;
        PartRight += other.PartRight;
        BodyPixels += other.BodyPixels;
        BodyRight += other.BodyRight;
        Images += other.Images;
    }

    internal static double Ratio(long a, long b) => b == 0 ? double.NaN : (double)a / b;

    internal static void CheckSize(LabelMask mask, LabelMask truth, string what)
    {
        if (mask.Width != truth.Width || mask.Height != truth.Height)
            throw new BadInputException(what, $"is {mask.Width}x{mask.Height} but the ground truth is {truth.Width}x{truth.Height}");
    }
}

/// <summary>
/// How right AffinityNet's training labels are (PSA's la/ha decision on the label grid, docs/METHOD.md §2):
/// the grid cells each decision labels and how many of them are right, and — what AffinityNet actually learns
/// from — the pairs of labelled cells within its radius, "same" (both background, or the same class) or
/// "different", against the same pairs in the ground truth (paper §3.4: AffinityNet's affinities are
/// supervised by such pairs). The ground truth of a cell is the most frequent label of its block.
/// </summary>
public sealed class AffinityLabelScore
{
    public long Cells { get; private set; }
    public long BackgroundCells { get; private set; }
    public long BackgroundCellsRight { get; private set; }
    public long ObjectCells { get; private set; }
    public long ObjectCellsRight { get; private set; }
    public long IgnoredCells { get; private set; }
    public long TrueObjectCells { get; private set; }
    public long SameBackgroundPairs { get; private set; }
    public long SameBackgroundPairsRight { get; private set; }
    public long SameObjectPairs { get; private set; }
    public long SameObjectPairsRight { get; private set; }
    public long DifferentPairs { get; private set; }
    public long DifferentPairsRight { get; private set; }

    /// <summary>Pairs of ground-truth object cells within the radius whose two cells are both labelled (and so train AffinityNet).</summary>
    public long TrueObjectPairs { get; private set; }
    public long TrueObjectPairsLabelled { get; private set; }

    public double BackgroundPrecision => LabelBreakdown.Ratio(BackgroundCellsRight, BackgroundCells);
    public double ObjectPrecision => LabelBreakdown.Ratio(ObjectCellsRight, ObjectCells);

    /// <summary>Ground-truth object cells the decision labels with their class.</summary>
    public double ObjectCoverage => LabelBreakdown.Ratio(ObjectCellsRight, TrueObjectCells);
    public double IgnoredShare => LabelBreakdown.Ratio(IgnoredCells, Cells);
    public double SameBackgroundPrecision => LabelBreakdown.Ratio(SameBackgroundPairsRight, SameBackgroundPairs);
    public double SameObjectPrecision => LabelBreakdown.Ratio(SameObjectPairsRight, SameObjectPairs);
    public double DifferentPrecision => LabelBreakdown.Ratio(DifferentPairsRight, DifferentPairs);

    /// <summary>Share of the ground truth's within-object pairs that AffinityNet gets a label for.</summary>
    public double ObjectPairCoverage => LabelBreakdown.Ratio(TrueObjectPairsLabelled, TrueObjectPairs);

    /// <param name="grid">The decision on the grid (0 background, 1..20, 255 ignore), ⌈H/s⌉ × ⌈W/s⌉.</param>
    /// <param name="truth">The image's ground truth, H × W.</param>
    /// <param name="stride">The grid's block size s.</param>
    /// <param name="radius">AffinityNet's radius in grid cells (pairs with squared distance below radius²).</param>
    public void Add(LabelMask grid, LabelMask truth, int stride, int radius)
    {
        var cells = GridTruth(truth, stride);
        if (cells.Width != grid.Width || cells.Height != grid.Height)
            throw new BadInputException("affinity labels", $"grid is {grid.Width}x{grid.Height}, expected {cells.Width}x{cells.Height} for a {truth.Width}x{truth.Height} image at stride {stride}");
        int w = grid.Width, h = grid.Height;
        for (int i = 0; i < grid.Labels.Length; i++)
        {
            byte t = cells.Labels[i], g = grid.Labels[i];
            if (t == VocClasses.Ignore)
                continue;
            Cells++;
            if (t != VocClasses.Background) TrueObjectCells++;
            if (g == VocClasses.Ignore) IgnoredCells++;
            else if (g == VocClasses.Background) { BackgroundCells++; if (t == g) BackgroundCellsRight++; }
            else { ObjectCells++; if (t == g) ObjectCellsRight++; }
        }
        // Each unordered pair once: offsets with dy > 0, or dy == 0 and dx > 0.
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int a = y * w + x;
                for (int dy = 0; dy < radius; dy++)
                    for (int dx = dy == 0 ? 1 : -radius + 1; dx < radius; dx++)
                    {
                        if (dx * dx + dy * dy >= radius * radius)
                            continue;
                        int yy = y + dy, xx = x + dx;
                        if (yy >= h || xx < 0 || xx >= w)
                            continue;
                        Pair(grid.Labels[a], grid.Labels[yy * w + xx], cells.Labels[a], cells.Labels[yy * w + xx]);
                    }
            }
    }

    private void Pair(byte g1, byte g2, byte t1, byte t2)
    {
        if (t1 == VocClasses.Ignore || t2 == VocClasses.Ignore)
            return;
        bool labelled = g1 != VocClasses.Ignore && g2 != VocClasses.Ignore;
        if (t1 == t2 && t1 != VocClasses.Background)
        {
            TrueObjectPairs++;
            if (labelled) TrueObjectPairsLabelled++;
        }
        if (!labelled)
            return;
        bool trulySame = t1 == t2;
        if (g1 != g2)
        {
            DifferentPairs++;
            if (!trulySame) DifferentPairsRight++;
        }
        else if (g1 == VocClasses.Background)
        {
            SameBackgroundPairs++;
            if (trulySame) SameBackgroundPairsRight++;
        }
        else
        {
            SameObjectPairs++;
            if (trulySame) SameObjectPairsRight++;
        }
    }

    public void Merge(AffinityLabelScore o)
    {
        Cells += o.Cells; BackgroundCells += o.BackgroundCells; BackgroundCellsRight += o.BackgroundCellsRight;
        ObjectCells += o.ObjectCells; ObjectCellsRight += o.ObjectCellsRight; IgnoredCells += o.IgnoredCells;
        TrueObjectCells += o.TrueObjectCells;
        SameBackgroundPairs += o.SameBackgroundPairs; SameBackgroundPairsRight += o.SameBackgroundPairsRight;
        SameObjectPairs += o.SameObjectPairs; SameObjectPairsRight += o.SameObjectPairsRight;
        DifferentPairs += o.DifferentPairs; DifferentPairsRight += o.DifferentPairsRight;
        TrueObjectPairs += o.TrueObjectPairs; TrueObjectPairsLabelled += o.TrueObjectPairsLabelled;
    }

    /// <summary>The ground truth on the grid: each s×s block's most frequent label other than ignore (the lowest on a tie; ignore when the block has none).</summary>
    public static LabelMask GridTruth(LabelMask truth, int stride)
    {
        if (stride < 1)
            throw new BadInputException("affinity labels", $"stride must be ≥ 1, got {stride}");
        int gw = (truth.Width + stride - 1) / stride, gh = (truth.Height + stride - 1) / stride;
        var labels = new byte[gw * gh];
        Span<int> counts = stackalloc int[256];
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++)
            {
                counts.Clear();
                for (int y = gy * stride; y < Math.Min(truth.Height, (gy + 1) * stride); y++)
                    for (int x = gx * stride; x < Math.Min(truth.Width, (gx + 1) * stride); x++)
                        counts[truth[y, x]]++;
                byte best = VocClasses.Ignore;
                int most = 0;
                for (int c = 0; c < VocClasses.Ignore; c++)
                    if (counts[c] > most) { most = counts[c]; best = (byte)c; }
                labels[gy * gw + gx] = best;
            }
        return new LabelMask(gw, gh, labels);
    }
}

/// <summary>
/// ECS-Net's erased region R and reliable labels Φ (paper §3.1–3.2, Eq 3) of one image against the ground truth:
/// how much of the objects R erases (part against body, on a synthetic set's part masks), how large Φ is, how
/// often its labels are right, and — the point of the method — how much of the objects' bodies it supervises
/// with the right class.
/// </summary>
public sealed class ReliableLabelScore
{
    public long Pixels { get; private set; }
    public long ObjectPixels { get; private set; }
    public long PartPixels { get; private set; }
    public long BodyPixels { get; private set; }
    public long ErasedPixels { get; private set; }
    public long ErasedObject { get; private set; }
    public long ErasedPart { get; private set; }
    public long ErasedBody { get; private set; }
    public long PhiObject { get; private set; }
    public long PhiObjectRight { get; private set; }
    public long PhiBackground { get; private set; }
    public long PhiBackgroundRight { get; private set; }
    public long PhiBodyRight { get; private set; }
    public int Images { get; private set; }

    /// <summary>Share of the image in Φ (object and background labels).</summary>
    public double PhiShare => LabelBreakdown.Ratio(PhiObject + PhiBackground, Pixels);

    /// <summary>Φ's object labels that are right.</summary>
    public double PhiObjectPrecision => LabelBreakdown.Ratio(PhiObjectRight, PhiObject);

    /// <summary>Φ's background labels that are right.</summary>
    public double PhiBackgroundPrecision => LabelBreakdown.Ratio(PhiBackgroundRight, PhiBackground);

    /// <summary>Object pixels that Φ labels with their class.</summary>
    public double PhiObjectCoverage => LabelBreakdown.Ratio(PhiObjectRight, ObjectPixels);

    /// <summary>Body pixels (object, not part) that Φ labels with their class; NaN without part masks.</summary>
    public double PhiBodyCoverage => LabelBreakdown.Ratio(PhiBodyRight, BodyPixels);

    /// <summary>Erased pixels that are object.</summary>
    public double ErasedPrecision => LabelBreakdown.Ratio(ErasedObject, ErasedPixels);
    public double ErasedPartShare => LabelBreakdown.Ratio(ErasedPart, PartPixels);
    public double ErasedBodyShare => LabelBreakdown.Ratio(ErasedBody, BodyPixels);

    /// <param name="erased">R at image size: non-zero = erased.</param>
    /// <param name="phi">Φ at image size: 0 background, 1..20 a class, 255 outside Φ.</param>
    public void Add(LabelMask erased, LabelMask phi, LabelMask truth, LabelMask? parts = null)
    {
        LabelBreakdown.CheckSize(erased, truth, "erased region");
        LabelBreakdown.CheckSize(phi, truth, "reliable labels");
        if (parts is not null)
            LabelBreakdown.CheckSize(parts, truth, "part mask");
        for (int i = 0; i < truth.Labels.Length; i++)
        {
            byte t = truth.Labels[i], p = phi.Labels[i];
            if (t == VocClasses.Ignore)
                continue;
            Pixels++;
            bool isObject = t != VocClasses.Background;
            bool isPart = isObject && parts is not null && parts.Labels[i] != VocClasses.Background && parts.Labels[i] != VocClasses.Ignore;
            bool isBody = isObject && parts is not null && !isPart;
            bool wasErased = erased.Labels[i] != 0;
            if (isObject) ObjectPixels++;
            if (isPart) PartPixels++;
            if (isBody) BodyPixels++;
            if (wasErased)
            {
                ErasedPixels++;
                if (isObject) ErasedObject++;
                if (isPart) ErasedPart++;
                if (isBody) ErasedBody++;
            }
            if (p == VocClasses.Ignore)
                continue;
            if (p == VocClasses.Background)
            {
                PhiBackground++;
                if (!isObject) PhiBackgroundRight++;
            }
            else
            {
                PhiObject++;
                if (p == t)
                {
                    PhiObjectRight++;
                    if (isBody) PhiBodyRight++;
                }
            }
        }
        Images++;
    }

    public void Merge(ReliableLabelScore o)
    {
        Pixels += o.Pixels; ObjectPixels += o.ObjectPixels; PartPixels += o.PartPixels; BodyPixels += o.BodyPixels;
        ErasedPixels += o.ErasedPixels; ErasedObject += o.ErasedObject; ErasedPart += o.ErasedPart; ErasedBody += o.ErasedBody;
        PhiObject += o.PhiObject; PhiObjectRight += o.PhiObjectRight; PhiBackground += o.PhiBackground;
        PhiBackgroundRight += o.PhiBackgroundRight; PhiBodyRight += o.PhiBodyRight; Images += o.Images;
    }
}
