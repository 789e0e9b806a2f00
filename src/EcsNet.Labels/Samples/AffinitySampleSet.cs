using EcsNet.Data;
using EcsNet.Labels.Propagation;

namespace EcsNet.Labels.Samples;

/// <summary>
/// AffinityNet training data (docs/METHOD.md §4, PSA train_aff.py): a random crop of an image and of its
/// la/ha score maps together, flipped together, the image colour-jittered and normalised, the affinity labels
/// of the crop's stride-8 grid decided from the cropped maps. Target: the grid's labels (class, 0, or 255).
/// </summary>
public sealed class AffinitySampleSet : ISampleSet
{
    private readonly int count;
    private readonly Func<int, string> idOf;
    private readonly Func<int, (RgbImage Image, AffinityScoreMaps Maps)> load;
    private readonly int crop;
    private readonly AugmentOptions jitter;
    private readonly AffinityLabelOptions labelOptions;

    /// <param name="load">The image and its la/ha maps (the caller decides where they live and what it caches).</param>
    /// <param name="jitter">Colour jitter of the crop (no rescale, no flip: the crop and flip here are joint with the maps).</param>
    public AffinitySampleSet(int count, Func<int, string> idOf, Func<int, (RgbImage Image, AffinityScoreMaps Maps)> load,
        int crop, AugmentOptions jitter, AffinityLabelOptions labelOptions)
    {
        if (count < 1)
            throw new BadInputException("affinity training set", "no training images");
        this.count = count;
        this.idOf = idOf;
        this.load = load;
        this.crop = crop;
        this.jitter = jitter;
        this.labelOptions = labelOptions;
    }

    public int Count => count;

    public string IdAt(int index) => idOf(index);

    public TrainingSample Sample(int index, Random rng)
    {
        var (image, maps) = load(index);
        var (chw, labels) = Crop(image, maps, crop, jitter, labelOptions, rng);
        return new TrainingSample(chw, labels.Labels);
    }

    /// <summary>A joint random crop (zero padding) and flip of image and la/ha maps; the image is jittered and normalised.</summary>
    public static (float[] Chw, LabelMask Labels) Crop(RgbImage image, AffinityScoreMaps maps, int crop, AugmentOptions jitter,
        AffinityLabelOptions labelOptions, Random rng)
    {
        int top = image.Height > crop ? rng.Next(image.Height - crop + 1) : -rng.Next(crop - image.Height + 1);
        int left = image.Width > crop ? rng.Next(image.Width - crop + 1) : -rng.Next(crop - image.Width + 1);
        bool flip = rng.NextDouble() < 0.5;
        var px = new byte[crop * crop * 3];
        var inside = new bool[crop * crop];
        for (int y = 0; y < crop; y++)
        {
            int sy = top + y;
            if (sy < 0 || sy >= image.Height) continue;
            for (int x = 0; x < crop; x++)
            {
                int sx = left + (flip ? crop - 1 - x : x);
                if (sx < 0 || sx >= image.Width) continue;
                Array.Copy(image.Pixels, (sy * image.Width + sx) * 3, px, (y * crop + x) * 3, 3);
                inside[y * crop + x] = true;
            }
        }
        var jittered = Augmentation.Apply(new RgbImage(crop, crop, px), null, jitter, rng).Chw;
        // Padding is zero after normalisation (the mean colour), as PSA pads normalised crops with zeros.
        int n = crop * crop;
        for (int i = 0; i < n; i++)
            if (!inside[i])
                jittered[i] = jittered[n + i] = jittered[2 * n + i] = 0;
        var labels = AffinityLabels.Decide(maps.Crop(top, left, crop, crop, flip), labelOptions);
        return (jittered, labels);
    }
}
