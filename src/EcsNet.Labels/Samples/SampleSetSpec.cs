using System.Collections.Concurrent;
using EcsNet.Data;
using EcsNet.Labels.Propagation;

namespace EcsNet.Labels.Samples;

/// <summary>
/// Everything needed to open a stage's <see cref="ISampleSet"/> anywhere the data is visible (shared storage):
/// the training process opens it itself, or preprocessing nodes open it to make the samples for it. Two
/// processes that open the same spec over the same files get the same samples.
/// </summary>
public abstract record SampleSetSpec
{
    /// <summary>VOC2012 folder (or VOCdevkit) of the split.</summary>
    public required string VocRoot { get; init; }

    public required string Split { get; init; }

    /// <summary>How the split was opened (bad samples skipped or fatal, images verified), so every opener gets the same sample list.</summary>
    public VocOptions Voc { get; init; } = new();

    /// <summary>Keep decoded images in memory (small sets).</summary>
    public bool CacheImages { get; init; }

    public abstract ISampleSet Open();

    protected VocDataset OpenDataset() => VocDataset.Open(VocRoot, Split, Voc);
}

/// <summary>CAM training samples (<see cref="CamSampleSet"/>).</summary>
public sealed record CamSampleSpec : SampleSetSpec
{
    /// <summary>The augmentation; its crop size is the sample size.</summary>
    public required AugmentOptions Augment { get; init; }

    public override ISampleSet Open() => new CamSampleSet(OpenDataset(), Augment, CacheImages);
}

/// <summary>Segmentation training samples on pseudo labels (<see cref="SegSampleSet"/>).</summary>
public sealed record SegSampleSpec : SampleSetSpec
{
    /// <summary>Folder of &lt;id&gt;.png pseudo labels.</summary>
    public required string LabelDir { get; init; }

    public required AugmentOptions Augment { get; init; }

    /// <summary>Labels must be below this or 255.</summary>
    public required int Classes { get; init; }

    public override ISampleSet Open() => new SegSampleSet(OpenDataset(), LabelDir, Augment, Classes, CacheImages);
}

/// <summary>
/// AffinityNet training samples (<see cref="AffinitySampleSet"/>): each image with its la/ha maps from
/// <c>&lt;MapsDir&gt;/&lt;id&gt;.npz</c> (<see cref="AffinityMapsFile"/>), written by the affinity stage's map jobs.
/// </summary>
public sealed record AffinitySampleSpec : SampleSetSpec
{
    public required string MapsDir { get; init; }

    /// <summary>Square crop side.</summary>
    public required int Crop { get; init; }

    /// <summary>Colour jitter of the crop (its crop and flip are joint with the maps, not taken from here).</summary>
    public required AugmentOptions Jitter { get; init; }

    public required AffinityLabelOptions Labels { get; init; }

    public override ISampleSet Open()
    {
        var dataset = OpenDataset();
        var cache = CacheImages ? new ConcurrentDictionary<int, (RgbImage, AffinityScoreMaps)>() : null;
        (RgbImage, AffinityScoreMaps) Load(int i)
        {
            var sample = dataset.Samples[i];
            return (ImageCodec.ReadRgb(sample.ImagePath), AffinityMapsFile.Read(Path.Combine(MapsDir, sample.Id + AffinityMapsFile.Extension)));
        }
        return new AffinitySampleSet(dataset.Count, i => dataset.Samples[i].Id, i => cache is null ? Load(i) : cache.GetOrAdd(i, Load),
            Crop, Jitter, Labels);
    }
}
