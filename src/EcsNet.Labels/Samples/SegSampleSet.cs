using System.Collections.Concurrent;
using EcsNet.Data;

namespace EcsNet.Labels.Samples;

/// <summary>
/// A split's images with pseudo labels from a folder of label PNGs named <c>&lt;id&gt;.png</c> (the random walk's
/// or the CAM stage's output), as segmentation training data. The pseudo labels take the place of the masks:
/// the split's ground-truth masks are never opened (docs/METHOD.md §0). Image and label move together through
/// the augmentation (nearest for labels, ignore where the crop pads). Target: crop·crop labels (class or 255).
/// </summary>
public sealed class SegSampleSet : ISampleSet
{
    private readonly VocDataset dataset;
    private readonly string labelDir;
    private readonly AugmentOptions augment;
    private readonly int classes;
    private readonly ConcurrentDictionary<int, (RgbImage Image, LabelMask Labels)>? cache;

    /// <param name="classes">Labels must be below this or 255.</param>
    /// <param name="cacheImages">Keep decoded images and labels in memory (small sets).</param>
    /// <exception cref="BadInputException">The folder or a pseudo label of the split is missing (named).</exception>
    public SegSampleSet(VocDataset dataset, string labelDir, AugmentOptions augment, int classes, bool cacheImages)
    {
        augment.Validate();
        if (!Directory.Exists(labelDir))
            throw new BadInputException(labelDir, "pseudo-label folder not found");
        this.dataset = dataset;
        this.labelDir = labelDir;
        this.augment = augment;
        this.classes = classes;
        cache = cacheImages ? new ConcurrentDictionary<int, (RgbImage, LabelMask)>() : null;
        foreach (var sample in dataset.Samples)
        {
            var path = LabelPath(sample.Id);
            if (!File.Exists(path))
                throw new BadInputException(path, $"missing pseudo label for id '{sample.Id}' of split {dataset.Split}");
        }
    }

    public int Count => dataset.Count;

    public string IdAt(int index) => dataset.Samples[index].Id;

    public string LabelPath(string id) => Path.Combine(labelDir, id + ".png");

    public TrainingSample Sample(int index, Random rng)
    {
        var (image, labels) = cache is null ? Load(index) : cache.GetOrAdd(index, Load);
        var augmented = Augmentation.Apply(image, labels, augment, rng);
        return new TrainingSample(augmented.Chw, augmented.Mask!.Labels);
    }

    private (RgbImage, LabelMask) Load(int index)
    {
        var sample = dataset.Samples[index];
        var path = LabelPath(sample.Id);
        var image = ImageCodec.ReadRgb(sample.ImagePath);
        var labels = ImageCodec.ReadLabelPng(path);
        if (labels.Width != image.Width || labels.Height != image.Height)
            throw new BadInputException(path, $"pseudo label is {labels.Width}x{labels.Height} but image {sample.ImagePath} is {image.Width}x{image.Height}");
        foreach (var v in labels.Labels)
            if (v >= classes && v != VocClasses.Ignore)
                throw new BadInputException(path, $"label value {v} is neither a class (0..{classes - 1}) nor ignore ({VocClasses.Ignore})");
        return (image, labels);
    }
}
