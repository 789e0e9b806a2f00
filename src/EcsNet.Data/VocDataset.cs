namespace EcsNet.Data;

/// <summary>One image of a split: its files and its image-level labels.</summary>
/// <param name="Labels">Foreground class indices 1..20 from the annotation XML (empty when annotations are not read).</param>
/// <param name="MaskPath">Ground-truth mask, only when the dataset was opened with masks and the file exists.</param>
public sealed record VocSample(string Id, string ImagePath, string? MaskPath, IReadOnlySet<int> Labels)
{
    /// <summary>The labels as a 20-long 0/1 vector (index c−1 for class c), the classifier's target.</summary>
    public float[] LabelVector()
    {
        var v = new float[VocClasses.Foreground];
        foreach (int c in Labels)
            v[c - 1] = 1f;
        return v;
    }
}

/// <summary>A sample left out under <see cref="OnBadSample.Skip"/>: which file was bad, and why.</summary>
public sealed record SkippedSample(string Id, string File, string Problem)
{
    public override string ToString() => $"{File}: {Problem}";
}

/// <summary>
/// A split of a PASCAL VOC 2012 tree (docs/METHOD.md §0): the ids of ImageSets/Segmentation/SPLIT.txt (or SBD's
/// train_aug list, or any id list file), their JPEGs and their image-level labels from Annotations/*.xml.
/// Weak training opens it with the default <see cref="MaskUse.None"/> and never reads a train mask; masks
/// are for evaluation only.
/// </summary>
public sealed class VocDataset
{
    private readonly Dictionary<string, VocSample> byId;

    private VocDataset(VocLayout layout, string split, string splitFile, VocOptions options,
        IReadOnlyList<VocSample> samples, IReadOnlyList<SkippedSample> skipped)
    {
        Layout = layout;
        Split = split;
        SplitFile = splitFile;
        Options = options;
        Samples = samples;
        Skipped = skipped;
        byId = samples.ToDictionary(s => s.Id, StringComparer.Ordinal);
    }

    public VocLayout Layout { get; }

    /// <summary>The resolved VOC2012 folder.</summary>
    public string Root => Layout.Root;

    public string Split { get; }

    public string SplitFile { get; }

    public VocOptions Options { get; }

    /// <summary>The usable samples in split-list order.</summary>
    public IReadOnlyList<VocSample> Samples { get; }

    /// <summary>Samples left out under <see cref="OnBadSample.Skip"/> (always empty under Fail).</summary>
    public IReadOnlyList<SkippedSample> Skipped { get; }

    public int Count => Samples.Count;

    /// <summary>
    /// Opens a split. <paramref name="vocRoot"/> is VOC2012, a VOCdevkit, or a folder holding VOCdevkit;
    /// <paramref name="split"/> is a split name (train, val, train_aug, ...) or the path of an id list.
    /// A missing/empty split list is always an error; a bad sample is an error or skipped per
    /// <see cref="VocOptions.OnBadSample"/>. Skipping every sample is an error.
    /// </summary>
    public static VocDataset Open(string vocRoot, string split, VocOptions? options = null)
    {
        options ??= new VocOptions();
        var layout = VocLayout.Resolve(vocRoot);
        var splitFile = layout.SplitFile(split);
        var ids = VocLayout.ReadIds(splitFile);
        var outcomes = Scan(layout, splitFile, ids, options);

        var samples = new List<VocSample>();
        var skipped = new List<SkippedSample>();
        foreach (var outcome in outcomes)
        {
            if (outcome.Sample is not null)
            {
                samples.Add(outcome.Sample);
                continue;
            }
            if (options.OnBadSample == OnBadSample.Fail)
                throw outcome.Error!;
            skipped.Add(new SkippedSample(outcome.Id, outcome.Error!.Subject, outcome.Error.Problem));
        }
        if (samples.Count == 0)
            throw new BadInputException(splitFile, $"every one of its {ids.Count} ids is bad; first: {skipped[0]}");
        return new VocDataset(layout, split, splitFile, options, samples, skipped);
    }

    public bool Contains(string id) => byId.ContainsKey(id);

    public VocSample Get(string id) =>
        byId.TryGetValue(id, out var s) ? s : throw new KeyNotFoundException($"id '{id}' is not in split {Split} ({SplitFile})");

    /// <summary>Decodes the JPEG of a sample.</summary>
    public RgbImage LoadImage(string id) => ImageCodec.ReadRgb(Get(id).ImagePath);

    /// <summary>
    /// Reads the ground-truth mask of a sample (evaluation only). Refuses when the dataset was opened with
    /// <see cref="MaskUse.None"/>, which is how weak training opens it.
    /// </summary>
    public LabelMask LoadMask(string id)
    {
        if (Options.Masks == MaskUse.None)
            throw new InvalidOperationException(
                "this dataset was opened without masks (MaskUse.None, as weak training must); open it with Masks = IfPresent or Required to evaluate");
        var sample = Get(id);
        if (sample.MaskPath is null)
            throw new BadInputException(Layout.MaskPath(id, Options.MaskFolder), $"no ground-truth mask for id '{id}'");
        return ImageCodec.ReadLabelPng(sample.MaskPath);
    }

    /// <summary>Result of checking one id: a sample, or the first problem found with its files.</summary>
    internal sealed record Outcome(string Id, VocSample? Sample, BadInputException? Error);

    /// <summary>Checks every id (in parallel; the result keeps list order).</summary>
    internal static Outcome[] Scan(VocLayout layout, string splitFile, IReadOnlyList<string> ids, VocOptions options)
    {
        var outcomes = new Outcome[ids.Count];
        Parallel.For(0, ids.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            try
            {
                outcomes[i] = new Outcome(ids[i], CheckSample(layout, splitFile, ids[i], options), null);
            }
            catch (BadInputException e)
            {
                outcomes[i] = new Outcome(ids[i], null, e);
            }
        });
        return outcomes;
    }

    private static readonly IReadOnlySet<int> NoLabels = new SortedSet<int>();

    private static VocSample CheckSample(VocLayout layout, string splitFile, string id, VocOptions options)
    {
        var imagePath = layout.ImagePath(id);
        if (!File.Exists(imagePath))
            throw new BadInputException(imagePath, $"no image for id '{id}' listed in {splitFile}");
        var labels = options.ReadAnnotations ? VocAnnotation.ReadLabels(layout.AnnotationPath(id)) : NoLabels;

        (int Width, int Height) size;
        if (options.VerifyImages)
        {
            var image = ImageCodec.ReadRgb(imagePath);
            size = (image.Width, image.Height);
        }
        else
        {
            size = ImageCodec.ReadSize(imagePath);
        }

        string? maskPath = null;
        if (options.Masks != MaskUse.None)
        {
            var candidate = layout.MaskPath(id, options.MaskFolder);
            if (File.Exists(candidate))
            {
                var maskSize = ImageCodec.ReadSize(candidate);
                if (maskSize != size)
                    throw new BadInputException(candidate,
                        $"mask is {maskSize.Width}x{maskSize.Height} but its image {imagePath} is {size.Width}x{size.Height}");
                maskPath = candidate;
            }
            else if (options.Masks == MaskUse.Required)
            {
                throw new BadInputException(candidate, $"no ground-truth mask for id '{id}'");
            }
        }
        return new VocSample(id, imagePath, maskPath, labels);
    }
}
