using EcsNet.Data;

namespace EcsNet.Labels.Propagation;

/// <summary>
/// The pixel pairs AffinityNet looks at on the stride-8 grid (PSA, Ahn &amp; Kwak 2018, §3.2: pairs within
/// radius γ = 5). Follows PSA's <c>get_indices_of_pairs</c> exactly, because the random walk's graph and the
/// training labels both depend on it:
/// <list type="bullet">
/// <item>offsets (dy, dx) in one half-plane only, each undirected pair counted once: dy = 0, dx = 1..r−1, then
/// dy = 1..r−1, dx = −(r−1)..r−1 with dx² + dy² &lt; r² (34 offsets for r = 5), in that order;</item>
/// <item>"from" pixels are the block rows [0, H−(r−1)), columns [r−1, W−(r−1)), so every "to" pixel
/// from + offset lies inside the grid without bounds checks. A side effect PSA has too: two pixels that both lie
/// in the left/right/bottom border strips are never paired (the bottom corners have no pairs at all).</item>
/// </list>
/// Pair p = k·FromCount + j joins <see cref="From"/>[j] and <see cref="To"/>[p] (PSA's <c>ind_to</c> layout,
/// offset-major), which is also the layout of AffinityNet's output <c>[B, Offsets, FromCount]</c>.
/// </summary>
public sealed class AffinityPairs
{
    private AffinityPairs(int radius, int height, int width, (int Dy, int Dx)[] offsets, int[] from, int[] to)
    {
        Radius = radius;
        Height = height;
        Width = width;
        Offsets = offsets;
        From = from;
        To = to;
    }

    public int Radius { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>The half-plane offsets, in PSA's order.</summary>
    public IReadOnlyList<(int Dy, int Dx)> Offsets { get; }

    /// <summary>Flat grid index (y·W + x) of each from-pixel, row-major over the from-block.</summary>
    public int[] From { get; }

    /// <summary>Flat grid index of the partner of each pair, offset-major: <c>To[k·FromCount + j]</c>.</summary>
    public int[] To { get; }

    public int FromCount => From.Length;
    public int PairCount => To.Length;
    public int FromHeight => Height - (Radius - 1);
    public int FromWidth => Width - 2 * (Radius - 1);

    /// <summary>PSA's search offsets for a radius: the forward half-plane of the open disc of that radius.</summary>
    public static (int Dy, int Dx)[] SearchOffsets(int radius)
    {
        if (radius < 2)
            throw new ArgumentOutOfRangeException(nameof(radius), radius, "radius must be at least 2");
        var list = new List<(int, int)>();
        for (int dx = 1; dx < radius; dx++)
            list.Add((0, dx));
        for (int dy = 1; dy < radius; dy++)
            for (int dx = -radius + 1; dx < radius; dx++)
                if (dx * dx + dy * dy < radius * radius)
                    list.Add((dy, dx));
        return list.ToArray();
    }

    /// <summary>The pairs of an H×W grid. Throws <see cref="BadInputException"/> when the grid is too small to
    /// hold a from-block (PSA needs at least r rows and 2r−1 columns).</summary>
    public static AffinityPairs Create(int radius, int height, int width)
    {
        var offsets = SearchOffsets(radius);
        int rf = radius - 1;
        int fh = height - rf, fw = width - 2 * rf;
        if (fh <= 0 || fw <= 0)
            throw new BadInputException($"affinity grid {height}x{width}",
                $"too small for radius {radius}: needs at least {radius} rows and {2 * radius - 1} columns " +
                $"(an image of at least {radius * 8}x{(2 * radius - 1) * 8} pixels at stride 8)");
        var from = new int[fh * fw];
        for (int y = 0; y < fh; y++)
            for (int x = 0; x < fw; x++)
                from[y * fw + x] = y * width + x + rf;
        var to = new int[offsets.Length * from.Length];
        for (int k = 0; k < offsets.Length; k++)
        {
            int delta = offsets[k].Dy * width + offsets[k].Dx;
            for (int j = 0; j < from.Length; j++)
                to[k * from.Length + j] = from[j] + delta;
        }
        return new AffinityPairs(radius, height, width, offsets, from, to);
    }

    /// <summary>
    /// Pair labels from an affinity label map on this grid (0 background, 1..20 class, 255 ignore), as PSA's
    /// <c>ExtractAffinityLabelInRadius</c>: same label → positive, split into background-positive (both 0) and
    /// foreground-positive; different labels → negative; any pair touching an ignored pixel gets no label.
    /// Each array is 0/1 in the pair layout (offset-major).
    /// </summary>
    public AffinityPairLabels Labels(byte[] labelMap)
    {
        if (labelMap.Length != Height * Width)
            throw new BadInputException("affinity label map",
                $"has {labelMap.Length} pixels, the pair grid is {Height}x{Width} = {Height * Width}");
        var bg = new float[PairCount];
        var fg = new float[PairCount];
        var neg = new float[PairCount];
        int n = FromCount;
        for (int p = 0; p < PairCount; p++)
        {
            byte a = labelMap[From[p % n]], b = labelMap[To[p]];
            if (a == VocClasses.Ignore || b == VocClasses.Ignore)
                continue;
            if (a != b)
                neg[p] = 1f;
            else if (a == VocClasses.Background)
                bg[p] = 1f;
            else
                fg[p] = 1f;
        }
        return new AffinityPairLabels(bg, fg, neg);
    }
}

/// <summary>0/1 pair labels in <see cref="AffinityPairs"/> layout: background-positive, foreground-positive,
/// negative (PSA's bg_pos / fg_pos / neg affinity labels).</summary>
public sealed record AffinityPairLabels(float[] BackgroundPositive, float[] ForegroundPositive, float[] Negative);
