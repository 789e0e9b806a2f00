using EcsNet.Data;

namespace EcsNet.Labels.Propagation;

/// <summary>Options of the affinity-label stage (docs/METHOD.md §2, §3); defaults are PSA's.</summary>
public sealed record AffinityLabelOptions
{
    /// <summary>α of the "la" map, bg = (1 − max_c cam_c)^α: low α gives a large background score, so more
    /// background (PSA infer_cls.py <c>--low_alpha 4</c>).</summary>
    public int AlphaLow { get; init; } = 4;

    /// <summary>α of the "ha" map: high α shrinks the background score, so less background (PSA
    /// <c>--high_alpha 32</c>).</summary>
    public int AlphaHigh { get; init; } = 32;

    /// <summary>Side of the mean-pooling block that takes the CRF scores to the feature grid (PSA train_aff.py:
    /// <c>imutils.AvgPool2d(8)</c>, skimage <c>block_reduce</c> with zero padding at the far edges).</summary>
    public int Stride { get; init; } = 8;

    /// <summary>A grid cell whose largest pooled score (over both maps) is below this has no score at all —
    /// padding outside a crop — and is ignored (PSA voc12/data.py: <c>np.max(label, -1) &lt; 1e-5</c>).</summary>
    public float NoScoreThreshold { get; init; } = 1e-5f;

    public void Validate()
    {
        if (AlphaLow <= 0 || AlphaHigh <= 0)
            throw new BadInputException("affinity label options", $"alphas must be positive (low {AlphaLow}, high {AlphaHigh})");
        if (AlphaLow > AlphaHigh)
            throw new BadInputException("affinity label options",
                $"the low alpha ({AlphaLow}) must not exceed the high alpha ({AlphaHigh}): la is the map with more background");
        if (Stride < 1)
            throw new BadInputException("affinity label options", $"stride must be at least 1 (got {Stride})");
    }
}

/// <summary>
/// The CRF'd la and ha score maps of one image at image resolution: channel 0 is background, channel i &gt; 0 is
/// VOC class <see cref="Classes"/>[i]; each map is <c>[Classes.Count][Height][Width]</c>, row-major.
/// These are what PSA stores per image (<c>out_la_crf</c>/<c>out_ha_crf</c>); training crops and flips them
/// together with the image and only then pools them to the grid (<see cref="AffinityLabels.Decide"/>).
/// </summary>
public sealed record AffinityScoreMaps(int Width, int Height, IReadOnlyList<int> Classes, float[] La, float[] Ha)
{
    /// <summary>
    /// The window rows [top, top+height) × columns [left, left+width) of both maps, zero where the window leaves
    /// the image (PSA's RandomCrop container; top/left may be negative), mirrored left–right if asked
    /// (applied after the crop, as PSA's RandomHorizontalFlip follows RandomCrop). Zero cells later become ignore.
    /// </summary>
    public AffinityScoreMaps Crop(int top, int left, int height, int width, bool flipHorizontal = false)
    {
        if (height <= 0 || width <= 0)
            throw new BadInputException("affinity score crop", $"size {height}x{width} is empty");
        int k = Classes.Count;
        var la = new float[k * height * width];
        var ha = new float[k * height * width];
        for (int c = 0; c < k; c++)
            for (int y = 0; y < height; y++)
            {
                int sy = top + y;
                if (sy < 0 || sy >= Height)
                    continue;
                for (int x = 0; x < width; x++)
                {
                    int sx = left + (flipHorizontal ? width - 1 - x : x);
                    if (sx < 0 || sx >= Width)
                        continue;
                    int s = (c * Height + sy) * Width + sx, d = (c * height + y) * width + x;
                    la[d] = La[s];
                    ha[d] = Ha[s];
                }
            }
        return new AffinityScoreMaps(width, height, Classes, la, ha);
    }
}

/// <summary>
/// Affinity labels (docs/METHOD.md §2, PSA infer_cls.py + voc12/data.py): from the CAMs build two background-augmented
/// score stacks, bg = (1 − max_c cam_c)^α with α_low (la, more background) and α_high (ha, less background),
/// refine each with the dense CRF, pool them to the stride-8 grid, and label each grid cell:
/// <list type="bullet">
/// <item>confident background where even the ha map (least background) says background;</item>
/// <item>confident foreground, class from the la argmax, where even the la map (most background) says a class;</item>
/// <item>ignore (255) in between, and where no map has any score (outside a crop).</item>
/// </list>
/// (Note: foreground comes from la and background from ha — the other way round would mark the uncertain band as
/// confident. This is PSA's rule: <c>label = la; label[la == 0] = 255; label[ha == 0] = 0</c>.)
/// </summary>
public static class AffinityLabels
{
    /// <summary>A CRF that returns its input: stands in for the dense CRF (docs/METHOD.md §3) in tests and when the CRF is
    /// switched off. The argmax of the un-refined scores then decides.</summary>
    public static readonly Func<RgbImage, float[], int, float[]> IdentityCrf = (_, probs, _) => probs;

    /// <summary>Runs the whole stage for one image: score maps, CRF, pooled decision.</summary>
    /// <param name="image">The image the CAMs belong to (the CRF's bilateral term reads it).</param>
    /// <param name="cams">Normalised CAMs <c>[20][H][W]</c> (channel c is VOC class c+1), values in [0, 1].</param>
    /// <param name="classes">The image's VOC classes (1..20); other channels are not read.</param>
    /// <param name="crf">(image, probs <c>[labels][H][W]</c>, labels) → refined probs of the same shape.</param>
    public static LabelMask Run(RgbImage image, float[] cams, IReadOnlyList<int> classes,
        AffinityLabelOptions options, Func<RgbImage, float[], int, float[]> crf) =>
        Decide(ScoreMaps(image, cams, classes, options, crf), options);

    /// <summary>The CRF'd la and ha maps at image resolution (PSA's <c>_crf_with_alpha</c> twice).</summary>
    public static AffinityScoreMaps ScoreMaps(RgbImage image, float[] cams, IReadOnlyList<int> classes,
        AffinityLabelOptions options, Func<RgbImage, float[], int, float[]> crf)
    {
        options.Validate();
        int h = image.Height, w = image.Width;
        CheckCams(cams, classes, h, w);
        var labelClasses = new int[classes.Count + 1];
        for (int i = 0; i < classes.Count; i++)
            labelClasses[i + 1] = classes[i];
        var la = RunCrf(crf, image, BackgroundAndClasses(cams, classes, h, w, options.AlphaLow), labelClasses.Length, "la");
        var ha = RunCrf(crf, image, BackgroundAndClasses(cams, classes, h, w, options.AlphaHigh), labelClasses.Length, "ha");
        return new AffinityScoreMaps(w, h, labelClasses, la, ha);
    }

    /// <summary>
    /// The stack <c>[1 + K][H][W]</c>: channel 0 = (1 − max over the image's classes of cam)^α, then the K class
    /// CAMs in the order given (PSA infer_cls.py: <c>bg_score = (1 − max(v))^alpha; concat(bg, v)</c>).
    /// </summary>
    public static float[] BackgroundAndClasses(float[] cams, IReadOnlyList<int> classes, int height, int width, int alpha)
    {
        CheckCams(cams, classes, height, width);
        int n = height * width;
        var stack = new float[(classes.Count + 1) * n];
        for (int i = 0; i < classes.Count; i++)
            Array.Copy(cams, (classes[i] - 1) * n, stack, (i + 1) * n, n);
        for (int p = 0; p < n; p++)
        {
            float m = 0f;
            for (int i = 1; i <= classes.Count; i++)
                m = MathF.Max(m, stack[i * n + p]);
            stack[p] = MathF.Pow(1f - m, alpha);
        }
        return stack;
    }

    /// <summary>
    /// Pools both maps to the grid with <see cref="AffinityLabelOptions.Stride"/>-sized block means (zero padding
    /// at the bottom/right, as skimage <c>block_reduce</c>) and applies PSA's decision rule. The result is
    /// ⌈H/s⌉ × ⌈W/s⌉ with 0 background, 1..20 class, 255 ignore.
    /// </summary>
    public static LabelMask Decide(AffinityScoreMaps maps, AffinityLabelOptions options)
    {
        options.Validate();
        int k = maps.Classes.Count, s = options.Stride;
        int n = maps.Width * maps.Height;
        if (k < 1 || maps.La.Length != k * n || maps.Ha.Length != k * n)
            throw new BadInputException("affinity score maps",
                $"expected {k} channels of {maps.Height}x{maps.Width} in both la and ha, got {maps.La.Length} and {maps.Ha.Length} values");
        int gh = (maps.Height + s - 1) / s, gw = (maps.Width + s - 1) / s;
        var la = BlockMean(maps.La, k, maps.Height, maps.Width, s);
        var ha = BlockMean(maps.Ha, k, maps.Height, maps.Width, s);
        int g = gh * gw;
        var labels = new byte[g];
        for (int p = 0; p < g; p++)
        {
            int laArg = 0, haArg = 0;
            float laMax = la[p], haMax = ha[p];
            for (int c = 1; c < k; c++)
            {
                // strict '>' keeps the first maximum, as np.argmax does
                if (la[c * g + p] > laMax) { laMax = la[c * g + p]; laArg = c; }
                if (ha[c * g + p] > haMax) { haMax = ha[c * g + p]; haArg = c; }
            }
            if (MathF.Max(laMax, haMax) < options.NoScoreThreshold)
                labels[p] = VocClasses.Ignore;
            else if (haArg == 0)
                labels[p] = VocClasses.Background;
            else if (laArg == 0)
                labels[p] = VocClasses.Ignore;
            else
                labels[p] = (byte)maps.Classes[laArg];
        }
        return new LabelMask(gw, gh, labels);
    }

    /// <summary>Mean over s×s blocks, the missing part of edge blocks counting as zero: <c>[k][⌈H/s⌉][⌈W/s⌉]</c>.</summary>
    public static float[] BlockMean(float[] maps, int channels, int height, int width, int s)
    {
        int gh = (height + s - 1) / s, gw = (width + s - 1) / s;
        var pooled = new float[channels * gh * gw];
        float inv = 1f / (s * s);
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < height; y++)
            {
                int src = (c * height + y) * width, dst = (c * gh + y / s) * gw;
                for (int x = 0; x < width; x++)
                    pooled[dst + x / s] += maps[src + x];
            }
        for (int i = 0; i < pooled.Length; i++)
            pooled[i] *= inv;
        return pooled;
    }

    private static float[] RunCrf(Func<RgbImage, float[], int, float[]> crf, RgbImage image, float[] probs, int labels, string which)
    {
        var q = crf(image, probs, labels);
        if (q.Length != probs.Length)
            throw new BadInputException($"CRF on the {which} map",
                $"returned {q.Length} values, expected {labels} labels x {image.Height}x{image.Width} = {probs.Length}");
        return q;
    }

    private static void CheckCams(float[] cams, IReadOnlyList<int> classes, int height, int width)
    {
        long expected = (long)VocClasses.Foreground * height * width;
        if (cams.Length != expected)
            throw new BadInputException("CAM stack",
                $"has {cams.Length} values, expected {VocClasses.Foreground} classes x {height}x{width} = {expected}");
        for (int i = 0; i < classes.Count; i++)
        {
            if (classes[i] < 1 || classes[i] > VocClasses.Foreground)
                throw new BadInputException("image classes", $"class {classes[i]} is not a VOC foreground class (1..20)");
            for (int j = 0; j < i; j++)
                if (classes[j] == classes[i])
                    throw new BadInputException("image classes", $"class {classes[i]} is listed twice");
        }
    }
}
