namespace EcsNet.Data;

/// <summary>What <see cref="VocValidator.Check"/> found in one split.</summary>
/// <param name="Listed">Ids in the split list.</param>
/// <param name="Valid">Ids whose image, annotation and (where present) mask passed every check.</param>
/// <param name="ImagesPerClass">21 entries: images whose annotation names class c (entry 0 stays 0).</param>
/// <param name="ImagesWithMasks">Valid ids that have a ground-truth mask.</param>
/// <param name="MaskImagesPerClass">21 entries: masks holding at least one pixel of class c.</param>
/// <param name="MaskPixelsPerClass">21 entries: pixels of class c over all masks.</param>
/// <param name="IgnorePixels">Pixels marked 255 over all masks.</param>
/// <param name="Problems">Bad files: each one stops training under the default fail policy.</param>
/// <param name="Warnings">Oddities that do not stop anything (annotation labels that differ from the mask's classes).</param>
public sealed record VocCheckReport(
    string Root,
    string Split,
    string SplitFile,
    int Listed,
    int Valid,
    IReadOnlyList<int> ImagesPerClass,
    int ImagesWithMasks,
    IReadOnlyList<int> MaskImagesPerClass,
    IReadOnlyList<long> MaskPixelsPerClass,
    long IgnorePixels,
    IReadOnlyList<SkippedSample> Problems,
    IReadOnlyList<string> Warnings)
{
    public bool Ok => Problems.Count == 0;
}

/// <summary>Validates a split of a VOC tree: every image decodes, every annotation parses, masks fit their images.</summary>
public static class VocValidator
{
    /// <summary>
    /// Checks every id of <paramref name="split"/> and collects every problem instead of stopping at the first.
    /// A missing root or split list is still thrown as <see cref="BadInputException"/>: there is nothing to check.
    /// </summary>
    public static VocCheckReport Check(string vocRoot, string split, string maskFolder = VocLayout.SegmentationMasks)
    {
        var layout = VocLayout.Resolve(vocRoot);
        var splitFile = layout.SplitFile(split);
        var ids = VocLayout.ReadIds(splitFile);
        var options = new VocOptions
        {
            OnBadSample = OnBadSample.Skip, Masks = MaskUse.IfPresent, MaskFolder = maskFolder, VerifyImages = true,
        };
        var outcomes = VocDataset.Scan(layout, splitFile, ids, options);

        var problems = new List<SkippedSample>();
        var valid = new List<VocSample>();
        foreach (var o in outcomes)
        {
            if (o.Sample is not null)
                valid.Add(o.Sample);
            else
                problems.Add(new SkippedSample(o.Id, o.Error!.Subject, o.Error.Problem));
        }

        var masks = new LabelMask?[valid.Count];
        var maskErrors = new SkippedSample?[valid.Count];
        Parallel.For(0, valid.Count, i =>
        {
            if (valid[i].MaskPath is not { } path)
                return;
            try
            {
                masks[i] = ImageCodec.ReadLabelPng(path);
            }
            catch (BadInputException e)
            {
                maskErrors[i] = new SkippedSample(valid[i].Id, e.Subject, e.Problem);
            }
        });

        var imagesPerClass = new int[VocClasses.Count];
        var maskImagesPerClass = new int[VocClasses.Count];
        var maskPixels = new long[VocClasses.Count];
        long ignore = 0;
        int withMasks = 0, validCount = 0;
        var warnings = new List<string>();
        for (int i = 0; i < valid.Count; i++)
        {
            if (maskErrors[i] is { } bad)
            {
                problems.Add(bad);
                continue;
            }
            validCount++;
            foreach (int c in valid[i].Labels)
                imagesPerClass[c]++;
            if (masks[i] is not { } mask)
                continue;
            withMasks++;
            var counts = new long[256];
            foreach (byte v in mask.Labels)
                counts[v]++;
            ignore += counts[VocClasses.Ignore];
            var maskClasses = new SortedSet<int>();
            for (int c = 0; c < VocClasses.Count; c++)
            {
                maskPixels[c] += counts[c];
                if (counts[c] > 0)
                {
                    maskImagesPerClass[c]++;
                    if (c > 0)
                        maskClasses.Add(c);
                }
            }
            if (!maskClasses.SetEquals(valid[i].Labels))
                warnings.Add($"{valid[i].Id}: annotation labels [{Names(valid[i].Labels)}] differ from mask classes [{Names(maskClasses)}]");
        }
        problems.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        return new VocCheckReport(layout.Root, split, splitFile, ids.Count, validCount, imagesPerClass,
            withMasks, maskImagesPerClass, maskPixels, ignore, problems, warnings);
    }

    private static string Names(IEnumerable<int> classes) => string.Join(", ", classes.Select(c => VocClasses.Names[c]));
}
