namespace EcsNet.Data;

/// <summary>Which generator <see cref="SyntheticVoc"/> runs (docs/DATA.md, "Synthetic set").</summary>
public enum SynthFamily
{
    /// <summary>Look-alike bodies told apart by a coloured part at one end (the original set).</summary>
    Parts,

    /// <summary>
    /// Non-square images, class-striped bodies carrying a small mark (class by colour or by shape), unlabelled
    /// clutter behind and in front of the objects, objects cut by the border, a wider scale range.
    /// </summary>
    Marks,
}

/// <summary>
/// Settings of the synthetic VOC-layout generator (<see cref="SyntheticVoc"/>). The defaults give a set a
/// small CPU network learns in minutes; every number here is a project choice, not from the paper.
/// </summary>
public sealed record SynthOptions
{
    /// <summary>The generator; <see cref="SynthFamily.Parts"/> writes what this project always wrote for a seed.</summary>
    public SynthFamily Family { get; init; } = SynthFamily.Parts;

    /// <summary>Images listed in train.txt.</summary>
    public int TrainImages { get; init; } = 200;

    /// <summary>Images listed in val.txt (drawn after the train images, so never the same pictures).</summary>
    public int ValImages { get; init; } = 50;

    /// <summary>Longest edge in pixels; the shorter edge is 75–100 % of it (<see cref="SynthFamily.Parts"/> only).</summary>
    public int Size { get; init; } = 128;

    /// <summary>Smallest side in pixels of a <see cref="SynthFamily.Marks"/> image (each side is drawn from [MinSide, MaxSide]).</summary>
    public int MinSide { get; init; } = 100;

    /// <summary>Largest side in pixels of a <see cref="SynthFamily.Marks"/> image; the two sides always differ.</summary>
    public int MaxSide { get; init; } = 160;

    /// <summary>Seed: the same seed and index always give the same picture.</summary>
    public int Seed { get; init; } = 0;

    public int MinObjects { get; init; } = 1;

    public int MaxObjects { get; init; } = 3;

    /// <summary>
    /// The VOC classes used (default: bird, cat, cow, dog, horse, sheep — six animals whose bodies share one
    /// look, told apart by a small "head" part).
    /// </summary>
    public IReadOnlyList<int> Classes { get; init; } = new[] { 3, 8, 10, 12, 13, 17 };

    /// <summary>Body semi-major axis as a fraction of the shorter image edge: the smallest draw.</summary>
    public double MinBody { get; init; } = 0.15;

    /// <summary>Body semi-major axis as a fraction of the shorter image edge: the largest draw.</summary>
    public double MaxBody { get; init; } = 0.35;

    /// <summary>Part radius as a fraction of the body's semi-minor axis (part ≈ 10 % of the object's area).</summary>
    public double PartRadius { get; init; } = 0.45;

    /// <summary>Strength of the class-specific tint of the bodies (0 = bodies carry no class cue at all).</summary>
    public double BodyTint { get; init; } = 14;

    public int JpegQuality { get; init; } = 90;

    public void Validate()
    {
        if (TrainImages < 0 || ValImages < 0 || TrainImages + ValImages == 0)
            throw new ArgumentException("need at least one image (train + val > 0, neither negative)");
        if (Size < 32 || Size > 4096)
            throw new ArgumentException($"size {Size} is outside 32..4096");
        if (!Enum.IsDefined(Family))
            throw new ArgumentException($"unknown synthetic family {Family}");
        if (MinSide < 32 || MaxSide > 4096 || MaxSide <= MinSide)
            throw new ArgumentException($"side range [{MinSide}, {MaxSide}] must lie in 32..4096 with max > min (images are never square)");
        if (MinObjects < 1 || MaxObjects < MinObjects)
            throw new ArgumentException($"objects per image [{MinObjects}, {MaxObjects}] is not a valid range (min ≥ 1)");
        if (Classes.Count == 0 || Classes.Any(c => c is < 1 or > VocClasses.Foreground) || Classes.Distinct().Count() != Classes.Count)
            throw new ArgumentException("classes must be distinct VOC foreground indices 1..20");
        if (MinBody <= 0 || MaxBody < MinBody || MaxBody > 0.5)
            throw new ArgumentException($"body size range [{MinBody}, {MaxBody}] must lie in (0, 0.5]");
        if (PartRadius <= 0 || PartRadius > 1)
            throw new ArgumentException($"part radius {PartRadius} must lie in (0, 1]");
    }
}
