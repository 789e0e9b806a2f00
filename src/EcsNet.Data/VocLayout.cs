namespace EcsNet.Data;

/// <summary>
/// Where the files of a VOC2012 tree live. The root given by a user may be the VOC2012 folder itself, a
/// VOCdevkit holding VOC2012, or a folder holding VOCdevkit/VOC2012; <see cref="Resolve"/> finds the one
/// with JPEGImages in it.
/// </summary>
public sealed record VocLayout(string Root)
{
    public const string Images = "JPEGImages";
    public const string Annotations = "Annotations";
    public const string SegmentationMasks = "SegmentationClass";
    public const string SegmentationLists = "ImageSets/Segmentation";
    /// <summary>Where the SBD-augmented id list (train_aug.txt) is commonly kept.</summary>
    public const string AugmentedLists = "ImageSets/SegmentationAug";

    public static VocLayout Resolve(string root)
    {
        var full = Path.GetFullPath(root);
        if (!Directory.Exists(full))
            throw new BadInputException(root, "VOC root folder not found");
        foreach (var candidate in new[] { full, Path.Combine(full, "VOC2012"), Path.Combine(full, "VOCdevkit", "VOC2012") })
            if (Directory.Exists(Path.Combine(candidate, Images)))
                return new VocLayout(candidate);
        throw new BadInputException(root, $"not a VOC2012 tree: no {Images}/ here, in VOC2012/ or in VOCdevkit/VOC2012/");
    }

    public string ImagePath(string id) => Path.Combine(Root, Images, id + ".jpg");

    public string AnnotationPath(string id) => Path.Combine(Root, Annotations, id + ".xml");

    public string MaskPath(string id, string folder = SegmentationMasks) => Path.Combine(Root, folder, id + ".png");

    /// <summary>Split names with a list under ImageSets/Segmentation (train, val, trainval, ...), sorted.</summary>
    public IReadOnlyList<string> SegmentationSplits()
    {
        var dir = Path.Combine(Root, SegmentationLists);
        return Directory.Exists(dir)
            ? Directory.GetFiles(dir, "*.txt").Select(f => Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal).ToList()
            : Array.Empty<string>();
    }

    /// <summary>
    /// The id list for <paramref name="split"/>: an existing file path is taken as is; a name is looked up as
    /// ImageSets/Segmentation/NAME.txt, then ImageSets/SegmentationAug/NAME.txt (SBD's train_aug), then NAME.txt
    /// at the root.
    /// </summary>
    public string SplitFile(string split)
    {
        if (string.IsNullOrWhiteSpace(split))
            throw new BadInputException("--split", "empty split name");
        if (File.Exists(split))
            return Path.GetFullPath(split);
        var name = split.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) ? split[..^4] : split;
        var looked = new[]
        {
            Path.Combine(Root, SegmentationLists, name + ".txt"),
            Path.Combine(Root, AugmentedLists, name + ".txt"),
            Path.Combine(Root, name + ".txt"),
        };
        foreach (var candidate in looked)
            if (File.Exists(candidate))
                return candidate;
        throw new BadInputException(looked[0],
            $"split list '{split}' not found (also looked for {looked[1]} and {looked[2]})");
    }

    /// <summary>
    /// Reads the ids of a split list: one id per line; blank lines skipped; of a line with several fields
    /// (the "/JPEGImages/x.jpg /SegmentationClassAug/x.png" form of some train_aug lists) the first is taken and
    /// reduced to its file name without extension. Repeated ids are kept once, in first-seen order.
    /// </summary>
    public static IReadOnlyList<string> ReadIds(string splitFile)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(splitFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException(splitFile, $"cannot read split list ({e.Message})", e);
        }
        var ids = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.Length == 0)
                continue;
            var first = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0];
            var id = first.Contains('/') || first.Contains('.') ? Path.GetFileNameWithoutExtension(first) : first;
            if (seen.Add(id))
                ids.Add(id);
        }
        if (ids.Count == 0)
            throw new BadInputException(splitFile, "split list holds no ids");
        return ids;
    }
}
