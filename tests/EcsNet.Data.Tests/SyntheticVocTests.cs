using EcsNet.Testing;

namespace EcsNet.Data.Tests;

public class SyntheticVocTests
{
    private static readonly SynthOptions Small = new() { TrainImages = 30, ValImages = 0, Size = 96, Seed = 11 };

    [Fact]
    public void RenderIsDeterministicPerSeedAndIndex()
    {
        var a = SyntheticVoc.Render(4, Small);
        var b = SyntheticVoc.Render(4, Small);
        Assert.Equal(a.Image.Pixels, b.Image.Pixels);
        Assert.Equal(a.Mask.Labels, b.Mask.Labels);
        var other = SyntheticVoc.Render(4, Small with { Seed = 12 });
        Assert.NotEqual(a.Image.Pixels, other.Image.Pixels);
        Assert.NotEqual(a.Image.Pixels, SyntheticVoc.Render(5, Small).Image.Pixels);
    }

    [Fact]
    public void GenerateWritesTheVocLayoutIdenticallyForTheSameSeed()
    {
        using var t1 = new TempDir();
        using var t2 = new TempDir();
        var o = new SynthOptions { TrainImages = 4, ValImages = 2, Size = 64, Seed = 5 };
        var r1 = SyntheticVoc.Generate(t1.Path, o);
        SyntheticVoc.Generate(t2.Path, o);
        var files = Directory.GetFiles(r1.Root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(r1.Root, f)).Order().ToList();
        Assert.Contains("JPEGImages/synth_000000.jpg", files);
        Assert.Contains("Annotations/synth_000005.xml", files);
        Assert.Contains("SegmentationClass/synth_000005.png", files);
        Assert.Contains("ImageSets/Segmentation/train.txt", files);
        Assert.Contains("ImageSets/Segmentation/val.txt", files);
        Assert.Equal(6 * 4 + 3, files.Count); // jpg, xml, mask, parts per image + three lists
        foreach (var f in files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(r1.Root, f)), File.ReadAllBytes(Path.Combine(t2.Path, "VOC2012", f)));
        Assert.Equal(r1.TrainIds, File.ReadAllLines(Path.Combine(r1.Root, "ImageSets/Segmentation/train.txt")));
        Assert.Equal(r1.ValIds, File.ReadAllLines(Path.Combine(r1.Root, "ImageSets/Segmentation/val.txt")));
        Assert.Equal(IndexedPng.ColourPalette,
            IndexedPng.ReadInfo(File.ReadAllBytes(Path.Combine(r1.Root, "SegmentationClass/synth_000000.png")), "m").ColourType);
    }

    [Fact]
    public void ObjectsAreWellFormedAndPartsAreSmallAndVisible()
    {
        var counts = new List<int>();
        for (int i = 0; i < Small.TrainImages; i++)
        {
            var s = SyntheticVoc.Render(i, Small);
            Assert.InRange(s.Objects.Count, 1, 3);
            counts.Add(s.Objects.Count);
            Assert.Equal(96, Math.Max(s.Image.Width, s.Image.Height));
            Assert.All(s.Objects, o =>
            {
                Assert.Contains(o.ClassIndex, Small.Classes);
                Assert.True(o.PartPixels >= 4, "every part shows");
                Assert.InRange((double)o.PartPixels / o.Pixels, 0.02, 0.35); // the part is a small share of the object
            });
            // Labels are exactly the classes in the mask; parts lie inside the mask with the same class.
            var maskClasses = s.Mask.Labels.Where(v => v != 0).Select(v => (int)v).ToHashSet();
            Assert.True(maskClasses.SetEquals(s.Labels));
            for (int p = 0; p < s.Parts.Labels.Length; p++)
                if (s.Parts.Labels[p] != 0)
                    Assert.Equal(s.Mask.Labels[p], s.Parts.Labels[p]);
            double foreground = s.Mask.Labels.Count(v => v != 0) / (double)s.Mask.Labels.Length;
            Assert.InRange(foreground, 0.03, 0.9);
        }
        Assert.True(counts.Distinct().Count() >= 2, "object count varies");
    }

    /// <summary>
    /// The property that makes the set a weak-supervision test bed: the class shows in the part's colour
    /// far more than in the body's. Measured as the spread of per-class mean colours relative to the spread
    /// within a class.
    /// </summary>
    [Fact]
    public void PartsAreClassSpecificWhileBodiesLookAlike()
    {
        var part = new Dictionary<int, List<double[]>>();
        var body = new Dictionary<int, List<double[]>>();
        for (int i = 0; i < 60; i++)
        {
            var s = SyntheticVoc.Render(i, Small);
            foreach (int c in s.Labels)
            {
                double[] partSum = new double[3], bodySum = new double[3];
                int np = 0, nb = 0;
                for (int p = 0; p < s.Mask.Labels.Length; p++)
                {
                    if (s.Mask.Labels[p] != c)
                        continue;
                    var target = s.Parts.Labels[p] == c ? partSum : bodySum;
                    for (int ch = 0; ch < 3; ch++)
                        target[ch] += s.Image.Pixels[3 * p + ch];
                    if (s.Parts.Labels[p] == c) np++; else nb++;
                }
                if (np > 0) (part.TryGetValue(c, out var lp) ? lp : part[c] = new()).Add(partSum.Select(v => v / np).ToArray());
                if (nb > 0) (body.TryGetValue(c, out var lb) ? lb : body[c] = new()).Add(bodySum.Select(v => v / nb).ToArray());
            }
        }
        double Separation(Dictionary<int, List<double[]>> byClass)
        {
            var means = byClass.Values.Select(l => Mean(l)).ToList();
            var grand = Mean(means);
            double between = means.Average(m => Dist2(m, grand));
            double within = byClass.Values.SelectMany(l => { var m = Mean(l); return l.Select(v => Dist2(v, m)); }).Average();
            return between / within;
        }
        double partSep = Separation(part), bodySep = Separation(body);
        Assert.True(partSep > 10 * bodySep, $"part separation {partSep:0.00} vs body {bodySep:0.00}");
        Assert.True(partSep > 5, $"part colours should identify the class (separation {partSep:0.00})");
    }

    private static double[] Mean(IReadOnlyCollection<double[]> vs) =>
        Enumerable.Range(0, 3).Select(ch => vs.Average(v => v[ch])).ToArray();

    private static double Dist2(double[] a, double[] b) => Enumerable.Range(0, 3).Sum(i => (a[i] - b[i]) * (a[i] - b[i]));

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => SyntheticVoc.Render(0, Small with { Size = 8 }));
        Assert.Throws<ArgumentException>(() => SyntheticVoc.Render(0, Small with { Classes = new[] { 0 } }));
        Assert.Throws<ArgumentException>(() => SyntheticVoc.Render(0, Small with { MinObjects = 3, MaxObjects = 2 }));
    }
}
