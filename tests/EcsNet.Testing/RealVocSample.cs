using EcsNet.Data;
using Xunit;

namespace EcsNet.Testing;

/// <summary>
/// Finds the optional real-data sample shared/data/voc2012-real-sample (5 real VOC 2012 photos with ground-truth
/// masks; not part of the repository) in the nearest folder above the test binaries that has one, normally the
/// folder holding the checkout; docs/DATA.md says what it contains and how to make one. Tests that need it skip
/// with a message when it is absent.
/// </summary>
public static class RealVocSample
{
    public const string Relative = "shared/data/voc2012-real-sample";

    public static readonly string? Root = Find();

    public static string SkipReason => $"{Relative} not found above {AppContext.BaseDirectory}; real-data tests skipped";

    /// <summary>Classes present in each ground-truth mask (the table in docs/DATA.md).</summary>
    public static readonly IReadOnlyDictionary<string, int[]> MaskClasses = new Dictionary<string, int[]>
    {
        ["2007_000123"] = new[] { 19 },
        ["2007_000129"] = new[] { 2, 15 },
        ["2011_000003"] = new[] { 5, 15 },
        ["2011_000006"] = new[] { 9, 15, 18 },
        ["2011_000025"] = new[] { 6, 7 },
    };

    /// <summary>The sample's ground-truth mask folder (SegmentationClass).</summary>
    public static string MaskFolder => Path.Combine(Root!, "VOCdevkit", "VOC2012", VocLayout.SegmentationMasks);

    private static string? Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, Relative);
            if (Directory.Exists(candidate))
                return candidate;
        }
        return null;
    }
}

/// <summary>A fact that is skipped, with <see cref="RealVocSample.SkipReason"/>, when the real sample is absent.</summary>
public sealed class RealDataFactAttribute : FactAttribute
{
    public RealDataFactAttribute()
    {
        if (RealVocSample.Root is null)
            Skip = RealVocSample.SkipReason;
    }
}
