namespace EcsNet.Data;

/// <summary>
/// Training-time augmentation (docs/METHOD.md §1, the SEAM/PSA recipe the paper follows in §4.2): random rescale of
/// the longest edge into [448, 768], horizontal flip with p = 0.5, colour jitter (0.3, 0.3, 0.3, 0.1),
/// ImageNet normalisation (docs/METHOD.md §0), random 448×448 crop padded with the mean (0 after normalisation) and
/// ignore (255) for masks.
/// </summary>
public sealed record AugmentOptions
{
    /// <summary>Smallest longest-edge length of the random rescale (SEAM RandomResizeLong(448, 768)); ≤ 0 disables rescaling.</summary>
    public int LongEdgeMin { get; init; } = 448;

    /// <summary>Largest longest-edge length of the random rescale, inclusive.</summary>
    public int LongEdgeMax { get; init; } = 768;

    /// <summary>Side of the square random crop (docs/METHOD.md §1: 448; DeepLab stage, §5: 321); ≤ 0 keeps the whole rescaled image.</summary>
    public int CropSize { get; init; } = 448;

    /// <summary>Probability of a horizontal flip.</summary>
    public double FlipProbability { get; init; } = 0.5;

    /// <summary>Brightness factor drawn from [1 − b, 1 + b] (torchvision ColorJitter semantics; SEAM uses 0.3).</summary>
    public double Brightness { get; init; } = 0.3;

    /// <summary>Contrast factor drawn from [1 − c, 1 + c], blending with the mean grey level.</summary>
    public double Contrast { get; init; } = 0.3;

    /// <summary>Saturation factor drawn from [1 − s, 1 + s], blending with each pixel's grey level.</summary>
    public double Saturation { get; init; } = 0.3;

    /// <summary>Hue shift drawn from [−h, h] turns of the colour wheel (h ≤ 0.5).</summary>
    public double Hue { get; init; } = 0.1;

    /// <summary>Per-channel RGB mean subtracted after scaling to [0, 1] (ImageNet, docs/METHOD.md §0).</summary>
    public IReadOnlyList<float> Mean { get; init; } = ImageNetMean;

    /// <summary>Per-channel RGB standard deviation divided out (ImageNet, docs/METHOD.md §0).</summary>
    public IReadOnlyList<float> Std { get; init; } = ImageNetStd;

    /// <summary>Label written where the crop extends past the image.</summary>
    public byte MaskPad { get; init; } = VocClasses.Ignore;

    public static readonly IReadOnlyList<float> ImageNetMean = new[] { 0.485f, 0.456f, 0.406f };
    public static readonly IReadOnlyList<float> ImageNetStd = new[] { 0.229f, 0.224f, 0.225f };

    /// <summary>No rescale, crop, flip or jitter: normalisation only (inference).</summary>
    public static AugmentOptions None { get; } = new()
    {
        LongEdgeMin = 0, LongEdgeMax = 0, CropSize = 0, FlipProbability = 0, Brightness = 0, Contrast = 0, Saturation = 0, Hue = 0,
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first out-of-range setting.</summary>
    public void Validate()
    {
        if (LongEdgeMin > 0 && LongEdgeMax < LongEdgeMin)
            throw new ArgumentException($"long-edge range [{LongEdgeMin}, {LongEdgeMax}] is empty");
        if (FlipProbability is < 0 or > 1)
            throw new ArgumentException($"flip probability {FlipProbability} is not in [0, 1]");
        if (Brightness < 0 || Contrast < 0 || Saturation < 0 || Hue is < 0 or > 0.5)
            throw new ArgumentException("colour jitter strengths must be ≥ 0 (hue ≤ 0.5)");
        if (Mean.Count != 3 || Std.Count != 3 || Std.Any(s => s <= 0))
            throw new ArgumentException("mean and std need 3 entries each, std > 0");
    }
}

/// <summary>A pixel rectangle: columns [X, X+Width), rows [Y, Y+Height).</summary>
public readonly record struct PixelBox(int X, int Y, int Width, int Height)
{
    public bool Contains(int x, int y) => x >= X && x < X + Width && y >= Y && y < Y + Height;
}

/// <summary>
/// One augmented training input.
/// </summary>
/// <param name="Chw">Normalised float image, channel-major (3 × Height × Width), padding = 0.</param>
/// <param name="Mask">The mask moved with the image (nearest neighbour; padding = 255), when one was given.</param>
/// <param name="Valid">Where the image's own pixels lie in the output (the rest is padding).</param>
/// <param name="Scale">Rescale factor applied before the crop.</param>
public sealed record AugmentedSample(float[] Chw, int Width, int Height, LabelMask? Mask, PixelBox Valid, bool Flipped, double Scale);
