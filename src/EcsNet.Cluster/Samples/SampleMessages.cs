using System.Security.Cryptography;
using EcsNet.Cluster.Jobs;
using EcsNet.Cluster.Messages;
using EcsNet.Data;
using EcsNet.Labels.Samples;
using Google.Protobuf;

namespace EcsNet.Cluster.Samples;

/// <summary>Sample-set specs ↔ their protobuf settings, and the entity that makes a sample.</summary>
public static class SampleMessages
{
    public static SampleSetSettings ToSettings(SampleSetSpec spec)
    {
        var settings = new SampleSetSettings
        {
            VocRoot = spec.VocRoot, Split = spec.Split, Voc = ToSettings(spec.Voc), CacheImages = spec.CacheImages,
        };
        switch (spec)
        {
            case CamSampleSpec cam:
                settings.Cam = new CamSamples { Augment = ToSettings(cam.Augment) };
                break;
            case SegSampleSpec seg:
                settings.Seg = new SegSamples { LabelDir = seg.LabelDir, Augment = ToSettings(seg.Augment), Classes = seg.Classes };
                break;
            case AffinitySampleSpec aff:
                settings.Affinity = new AffinitySamples
                {
                    MapsDir = aff.MapsDir, Crop = aff.Crop, Jitter = ToSettings(aff.Jitter), Labels = JobMessages.ToSettings(aff.Labels),
                };
                break;
            default:
                throw new ArgumentException($"{spec.GetType().Name} has no cluster message; add it to protos/cluster/training.proto", nameof(spec));
        }
        return settings;
    }

    /// <exception cref="BadInputException">The message lacks a part (names it).</exception>
    public static SampleSetSpec ToSpec(SampleSetSettings s)
    {
        var voc = ToOptions(s.Voc);
        return s.KindCase switch
        {
            SampleSetSettings.KindOneofCase.Cam => new CamSampleSpec
            {
                VocRoot = s.VocRoot, Split = s.Split, Voc = voc, CacheImages = s.CacheImages, Augment = ToOptions(s.Cam.Augment, "cam.augment"),
            },
            SampleSetSettings.KindOneofCase.Seg => new SegSampleSpec
            {
                VocRoot = s.VocRoot, Split = s.Split, Voc = voc, CacheImages = s.CacheImages, LabelDir = s.Seg.LabelDir,
                Augment = ToOptions(s.Seg.Augment, "seg.augment"), Classes = s.Seg.Classes,
            },
            SampleSetSettings.KindOneofCase.Affinity => new AffinitySampleSpec
            {
                VocRoot = s.VocRoot, Split = s.Split, Voc = voc, CacheImages = s.CacheImages, MapsDir = s.Affinity.MapsDir,
                Crop = s.Affinity.Crop, Jitter = ToOptions(s.Affinity.Jitter, "affinity.jitter"),
                Labels = s.Affinity.Labels is null ? throw new BadInputException("sample set", "affinity.labels is missing") : JobMessages.ToOptions(s.Affinity.Labels),
            },
            _ => throw new BadInputException("sample set", "no kind (cam, seg or affinity) is set"),
        };
    }

    /// <summary>A short stable name of a sample set: the same settings give the same key on every node.</summary>
    public static string Key(SampleSetSettings settings) =>
        Convert.ToHexStringLower(SHA256.HashData(settings.ToByteArray()))[..16];

    /// <summary>The entity that makes image <paramref name="index"/>'s samples: one of <paramref name="dataShards"/> fixed subsets of the set.</summary>
    public static string Entity(string setKey, int index, int dataShards) => $"{setKey}/{index % dataShards}";

    public static VocSettings ToSettings(VocOptions o) => new() { OnBadSample = o.OnBadSample.ToString(), VerifyImages = o.VerifyImages };

    public static VocOptions ToOptions(VocSettings? s)
    {
        if (s is null)
            return new VocOptions();
        if (!Enum.TryParse<OnBadSample>(s.OnBadSample, ignoreCase: true, out var onBad))
            throw new BadInputException("voc.onBadSample", $"'{s.OnBadSample}' is not fail or skip");
        return new VocOptions { OnBadSample = onBad, VerifyImages = s.VerifyImages };
    }

    public static AugmentSettings ToSettings(AugmentOptions o)
    {
        var s = new AugmentSettings
        {
            LongEdgeMin = o.LongEdgeMin, LongEdgeMax = o.LongEdgeMax, CropSize = o.CropSize, FlipProbability = o.FlipProbability,
            Brightness = o.Brightness, Contrast = o.Contrast, Saturation = o.Saturation, Hue = o.Hue, MaskPad = o.MaskPad,
        };
        s.Mean.AddRange(o.Mean);
        s.Std.AddRange(o.Std);
        return s;
    }

    public static AugmentOptions ToOptions(AugmentSettings? s, string field)
    {
        if (s is null)
            throw new BadInputException("sample set", $"{field} is missing");
        return new AugmentOptions
        {
            LongEdgeMin = s.LongEdgeMin, LongEdgeMax = s.LongEdgeMax, CropSize = s.CropSize, FlipProbability = s.FlipProbability,
            Brightness = s.Brightness, Contrast = s.Contrast, Saturation = s.Saturation, Hue = s.Hue,
            Mean = s.Mean.ToArray(), Std = s.Std.ToArray(), MaskPad = (byte)s.MaskPad,
        };
    }
}
