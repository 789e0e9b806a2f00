using System.Xml.Linq;
using EcsNet.Testing;

namespace EcsNet.Data.Tests;

public class SyntheticMarksTests
{
    private static readonly SynthOptions Marks = new() { Family = SynthFamily.Marks, TrainImages = 24, ValImages = 0, Seed = 3 };

    [Fact]
    public void PartsStaysTheDefaultFamily() => Assert.Equal(SynthFamily.Parts, new SynthOptions().Family);

    [Fact]
    public void RenderIsDeterministicPerSeedAndIndexAndDiffersFromParts()
    {
        var a = SyntheticVoc.Render(2, Marks);
        var b = SyntheticVoc.Render(2, Marks);
        Assert.Equal(a.Image.Pixels, b.Image.Pixels);
        Assert.Equal(a.Mask.Labels, b.Mask.Labels);
        Assert.Equal(a.Parts.Labels, b.Parts.Labels);
        Assert.Equal(a.Instances!.Labels, b.Instances!.Labels);
        Assert.NotEqual(a.Image.Pixels, SyntheticVoc.Render(2, Marks with { Seed = 4 }).Image.Pixels);
        Assert.NotEqual(a.Image.Pixels, SyntheticVoc.Render(3, Marks).Image.Pixels);
        var parts = SyntheticVoc.Render(2, Marks with { Family = SynthFamily.Parts });
        Assert.Null(parts.Instances);
        Assert.Null(parts.Clutter);
    }

    [Fact]
    public void SizesAreInRangeAndNeverSquare()
    {
        var widths = new HashSet<int>();
        for (int i = 0; i < Marks.TrainImages; i++)
        {
            var s = SyntheticVoc.Render(i, Marks);
            Assert.InRange(s.Image.Width, 100, 160);
            Assert.InRange(s.Image.Height, 100, 160);
            Assert.NotEqual(s.Image.Width, s.Image.Height);
            widths.Add(s.Image.Width);
        }
        Assert.True(widths.Count > 5, "sides vary");
        var narrow = SyntheticVoc.Render(0, Marks with { MinSide = 40, MaxSide = 41 });
        Assert.Equal(new[] { 40, 41 }, new[] { narrow.Image.Width, narrow.Image.Height }.Order());
        Assert.Throws<ArgumentException>(() => SyntheticVoc.Render(0, Marks with { MinSide = 64, MaxSide = 64 }));
    }

    [Fact]
    public void MasksAgreeWithObjectsMarksAndClutter()
    {
        int truncated = 0, clutterPixels = 0;
        for (int i = 0; i < Marks.TrainImages; i++)
        {
            var s = SyntheticVoc.Render(i, Marks);
            Assert.InRange(s.Objects.Count, Marks.MinObjects, Marks.MaxObjects);
            var maskClasses = s.Mask.Labels.Where(v => v != 0).Select(v => (int)v).ToHashSet();
            Assert.True(maskClasses.SetEquals(s.Labels));
            for (int p = 0; p < s.Mask.Labels.Length; p++)
            {
                int instance = s.Instances!.Labels[p];
                // Instances and classes agree pixel for pixel; marks lie on their own object; clutter is background.
                Assert.Equal(instance == 0 ? 0 : s.Objects[instance - 1].ClassIndex, s.Mask.Labels[p]);
                if (s.Parts.Labels[p] != 0)
                    Assert.Equal(s.Mask.Labels[p], s.Parts.Labels[p]);
                if (s.Clutter!.Labels[p] != 0)
                {
                    Assert.Equal(0, s.Mask.Labels[p]);
                    clutterPixels++;
                }
            }
            for (int k = 0; k < s.Objects.Count; k++)
            {
                var o = s.Objects[k];
                Assert.Equal(o.Pixels, s.Instances!.Labels.Count(v => v == k + 1));
                Assert.True(o.PartPixels >= 6, "every mark shows");
                Assert.True(o.PartPixels < o.Pixels / 2, "the mark is a small share of the object");
                if (o.Truncated) truncated++;
            }
        }
        Assert.True(clutterPixels > 0, "clutter is drawn");
        Assert.True(truncated > 0, "some objects run off the border");
    }

    /// <summary>Front clutter cuts objects: some object shows fewer pixels than its unoccluded body (a hole in its instance mask).</summary>
    [Fact]
    public void ClutterOccludesSomeObjects()
    {
        int holes = 0;
        for (int i = 0; i < 40 && holes == 0; i++)
        {
            var s = SyntheticVoc.Render(i, Marks);
            int w = s.Image.Width;
            for (int p = 0; p < s.Clutter!.Labels.Length; p++)
            {
                if (s.Clutter.Labels[p] == 0 || p % w == 0 || p % w == w - 1)
                    continue;
                int left = s.Instances!.Labels[p - 1], right = s.Instances.Labels[p + 1];
                if (left != 0 && left == right)
                    holes++; // clutter between two pixels of one object: it lies in front
            }
        }
        Assert.True(holes > 0, "some clutter lies in front of an object");
    }

    [Fact]
    public void GenerateWritesAValidVocTreeWithObjectMasksMatchingTheAnnotations()
    {
        using var t1 = new TempDir();
        using var t2 = new TempDir();
        var o = Marks with { TrainImages = 4, ValImages = 2 };
        var r = SyntheticVoc.Generate(t1.Path, o);
        SyntheticVoc.Generate(t2.Path, o);
        var files = Directory.GetFiles(r.Root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(r.Root, f)).Order().ToList();
        Assert.Equal(6 * 5 + 3, files.Count); // jpg, xml, class, object and mark masks per image + three lists
        foreach (var f in files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(r.Root, f)), File.ReadAllBytes(Path.Combine(t2.Path, "VOC2012", f)));

        foreach (var split in new[] { "train", "val", "trainval" })
        {
            var report = VocValidator.Check(t1.Path, split);
            Assert.True(report.Ok, string.Join("; ", report.Problems));
            Assert.Equal(report.Listed, report.ImagesWithMasks);
        }

        var layout = new VocLayout(r.Root);
        foreach (var id in r.TrainIds.Concat(r.ValIds))
        {
            var classes = ImageCodec.ReadLabelPng(layout.MaskPath(id));
            var instances = ImageCodec.ReadLabelPng(layout.MaskPath(id, SyntheticVoc.ObjectsFolder));
            var xml = XDocument.Load(layout.AnnotationPath(id)).Root!;
            Assert.Equal(classes.Width, (int)xml.Element("size")!.Element("width")!);
            Assert.Equal(classes.Height, (int)xml.Element("size")!.Element("height")!);
            var objects = xml.Elements("object").ToList();
            Assert.Equal(objects.Count, instances.Labels.Max());
            for (int k = 0; k < objects.Count; k++)
            {
                int c = VocClasses.IndexOf((string)objects[k].Element("name")!);
                var box = objects[k].Element("bndbox")!;
                int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
                for (int p = 0; p < instances.Labels.Length; p++)
                {
                    if (instances.Labels[p] != k + 1)
                        continue;
                    Assert.Equal(c, classes.Labels[p]);
                    int x = p % instances.Width, y = p / instances.Width;
                    minX = Math.Min(minX, x); maxX = Math.Max(maxX, x);
                    minY = Math.Min(minY, y); maxY = Math.Max(maxY, y);
                }
                Assert.Equal(new[] { minX + 1, minY + 1, maxX + 1, maxY + 1 },
                    new[] { "xmin", "ymin", "xmax", "ymax" }.Select(n => (int)box.Element(n)!));
            }
        }
    }

    /// <summary>Half the classes are named by the mark's colour, the other half by its shape (their mark colours are shared neutrals).</summary>
    [Fact]
    public void ColourCodedMarksCarryTheClassHueAndShapeCodedOnesDoNot()
    {
        var means = new Dictionary<int, List<double[]>>();
        for (int i = 0; i < 60; i++)
        {
            var s = SyntheticVoc.Render(i, Marks);
            foreach (int c in s.Labels)
            {
                var sum = new double[3];
                int n = 0;
                for (int p = 0; p < s.Parts.Labels.Length; p++)
                    if (s.Parts.Labels[p] == c)
                    {
                        for (int ch = 0; ch < 3; ch++) sum[ch] += s.Image.Pixels[3 * p + ch];
                        n++;
                    }
                if (n > 0) (means.TryGetValue(c, out var l) ? l : means[c] = new()).Add(sum.Select(v => v / n).ToArray());
            }
        }
        for (int k = 0; k < Marks.Classes.Count; k++)
        {
            if (!means.TryGetValue(Marks.Classes[k], out var list) || list.Count < 2)
                continue;
            // Saturation of the mean mark colour: high for a class hue, near zero for white/black.
            double saturation = list.Average(v => (v.Max() - v.Min()) / Math.Max(1, v.Max()));
            if (k % 2 == 0)
                Assert.True(saturation > 0.5, $"class {k}: colour-coded mark saturation {saturation:0.00}");
            else
                Assert.True(saturation < 0.2, $"class {k}: shape-coded mark saturation {saturation:0.00}");
        }
    }
}
