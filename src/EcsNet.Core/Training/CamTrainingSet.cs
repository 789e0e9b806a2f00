using System.Collections.Concurrent;
using EcsNet.Data;

namespace EcsNet.Core.Training;

/// <summary>
/// A VOC split as CAM training data: image-level labels from the XML only (no mask is read), each
/// sample augmented per SPEC §1 with the caller's seeded generator.
/// </summary>
public sealed class CamTrainingSet : ICamTrainingData
{
    private readonly VocDataset dataset;
    private readonly AugmentOptions augment;
    private readonly ConcurrentDictionary<int, RgbImage>? cache;

    /// <param name="cacheImages">Keep decoded images in memory (small sets; VOC-scale sets decode per use).</param>
    public CamTrainingSet(VocDataset dataset, AugmentOptions augment, bool cacheImages)
    {
        this.dataset = dataset;
        this.augment = augment;
        cache = cacheImages ? new ConcurrentDictionary<int, RgbImage>() : null;
    }

    public int Count => dataset.Count;

    public string IdAt(int index) => dataset.Samples[index].Id;

    public (float[] Image, float[] Labels) Sample(int index, int crop, Random rng)
    {
        var sample = dataset.Samples[index];
        var image = cache is null ? ImageCodec.ReadRgb(sample.ImagePath) : cache.GetOrAdd(index, _ => ImageCodec.ReadRgb(sample.ImagePath));
        var options = augment.CropSize == crop ? augment : augment with { CropSize = crop };
        var augmented = Augmentation.Apply(image, null, options, rng);
        return (augmented.Chw, sample.LabelVector());
    }
}
