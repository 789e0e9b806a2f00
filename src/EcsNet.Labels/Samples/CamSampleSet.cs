using System.Collections.Concurrent;
using EcsNet.Data;

namespace EcsNet.Labels.Samples;

/// <summary>
/// A VOC split as CAM training data (docs/METHOD.md §1): image-level labels from the XML only (no mask is
/// read), each image augmented with the caller's seeded generator. Target: one byte per foreground class, 0 or 1.
/// </summary>
public sealed class CamSampleSet : ISampleSet
{
    private readonly VocDataset dataset;
    private readonly AugmentOptions augment;
    private readonly ConcurrentDictionary<int, RgbImage>? cache;

    /// <param name="augment">The augmentation; its <see cref="AugmentOptions.CropSize"/> is the sample size.</param>
    /// <param name="cacheImages">Keep decoded images in memory (small sets; VOC-scale sets decode per use).</param>
    public CamSampleSet(VocDataset dataset, AugmentOptions augment, bool cacheImages)
    {
        augment.Validate();
        this.dataset = dataset;
        this.augment = augment;
        cache = cacheImages ? new ConcurrentDictionary<int, RgbImage>() : null;
    }

    public int Count => dataset.Count;

    public string IdAt(int index) => dataset.Samples[index].Id;

    public TrainingSample Sample(int index, Random rng)
    {
        var sample = dataset.Samples[index];
        var image = cache is null ? ImageCodec.ReadRgb(sample.ImagePath) : cache.GetOrAdd(index, _ => ImageCodec.ReadRgb(sample.ImagePath));
        var augmented = Augmentation.Apply(image, null, augment, rng);
        var labels = new byte[VocClasses.Foreground];
        foreach (int c in sample.Labels)
            labels[c - 1] = 1;
        return new TrainingSample(augmented.Chw, labels);
    }
}
