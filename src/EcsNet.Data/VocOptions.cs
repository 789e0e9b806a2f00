namespace EcsNet.Data;

/// <summary>What to do with a sample whose files are bad (missing, corrupt, inconsistent).</summary>
public enum OnBadSample
{
    /// <summary>Stop with a <see cref="BadInputException"/> naming the first bad file (default).</summary>
    Fail,

    /// <summary>Leave the sample out and record it in <see cref="VocDataset.Skipped"/>.</summary>
    Skip,
}

/// <summary>Whether a dataset touches ground-truth masks.</summary>
public enum MaskUse
{
    /// <summary>
    /// Masks are never opened (default). Weak training runs with this: docs/METHOD.md §0 forbids any stage before
    /// evaluation to read a train-split mask, and with None <see cref="VocDataset.LoadMask(string)"/> refuses.
    /// </summary>
    None,

    /// <summary>Masks are used where the file exists (validation, reports).</summary>
    IfPresent,

    /// <summary>Every sample must have a mask (evaluation); a missing one is a bad sample.</summary>
    Required,
}

/// <summary>How <see cref="VocDataset.Open"/> reads a split.</summary>
public sealed record VocOptions
{
    /// <summary>Bad-sample policy; the CLI's --on-bad-sample. Default fail (docs/DATA.md, "Bad input").</summary>
    public OnBadSample OnBadSample { get; init; } = OnBadSample.Fail;

    /// <summary>Mask access; default none, so weak training cannot read a mask by accident.</summary>
    public MaskUse Masks { get; init; } = MaskUse.None;

    /// <summary>Folder of the ground-truth masks under the VOC root (SBD's converted masks: SegmentationClassAug).</summary>
    public string MaskFolder { get; init; } = VocLayout.SegmentationMasks;

    /// <summary>Read image-level labels from Annotations/*.xml (training needs them; evaluation does not).</summary>
    public bool ReadAnnotations { get; init; } = true;

    /// <summary>
    /// Decode every image once while opening, so a truncated or corrupt JPEG is found up front (and skipped or
    /// reported) instead of in the middle of an epoch. Costs one decode per image; runs in parallel.
    /// </summary>
    public bool VerifyImages { get; init; } = true;
}
