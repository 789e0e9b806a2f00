using EcsNet.Testing;

namespace EcsNet.Data.Tests;

public class VocDatasetTests
{
    private static readonly VocOptions Skip = new() { OnBadSample = OnBadSample.Skip };

    [Fact]
    public void OpensASplitWithLabelsFromTheAnnotations()
    {
        using var voc = new TinyVoc();
        var ds = VocDataset.Open(voc.Root, "train");
        Assert.Equal(voc.Result.TrainIds, ds.Samples.Select(s => s.Id));
        Assert.Empty(ds.Skipped);
        foreach (var s in ds.Samples)
        {
            Assert.Null(s.MaskPath); // masks are off by default: weak training never sees them
            Assert.NotEmpty(s.Labels);
            var vector = s.LabelVector();
            Assert.Equal(20, vector.Length);
            Assert.Equal(s.Labels.Count, vector.Sum());
            foreach (int c in s.Labels)
                Assert.Equal(1f, vector[c - 1]);
        }
    }

    [Fact]
    public void AnnotationLabelsEqualTheClassesInTheMasks()
    {
        using var voc = new TinyVoc();
        var ds = VocDataset.Open(voc.Root, "trainval", new VocOptions { Masks = MaskUse.Required });
        Assert.Equal(8, ds.Count);
        foreach (var s in ds.Samples)
        {
            var mask = ds.LoadMask(s.Id);
            var image = ds.LoadImage(s.Id);
            Assert.Equal((image.Width, image.Height), (mask.Width, mask.Height));
            var maskClasses = mask.Labels.Where(v => v is > 0 and < 255).Select(v => (int)v).ToHashSet();
            Assert.True(maskClasses.SetEquals(s.Labels), $"{s.Id}: labels {string.Join(",", s.Labels)} vs mask {string.Join(",", maskClasses)}");
        }
    }

    [Fact]
    public void LoadMaskRefusesWhenMasksAreOff()
    {
        using var voc = new TinyVoc();
        var ds = VocDataset.Open(voc.Root, "train");
        var e = Assert.Throws<InvalidOperationException>(() => ds.LoadMask(voc.FirstTrainId));
        Assert.Contains("MaskUse.None", e.Message);
    }

    [Fact]
    public void AcceptsVoc2012TheFolderAboveItOrAVocDevkit()
    {
        using var voc = new TinyVoc();
        Assert.Equal(voc.Root, VocDataset.Open(voc.Parent, "train").Root);
        Assert.Equal(voc.Root, VocDataset.Open(voc.Root, "train").Root);

        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp.File("VOCdevkit"));
        Directory.Move(voc.Root, tmp.File("VOCdevkit/VOC2012"));
        Assert.Equal(tmp.File("VOCdevkit/VOC2012"), VocDataset.Open(tmp.Path, "val").Root);
        Assert.Equal(tmp.File("VOCdevkit/VOC2012"), VocDataset.Open(tmp.File("VOCdevkit"), "val").Root);
    }

    [Fact]
    public void ReadsTrainAugFromSegmentationAugAndIdListFilesInEitherForm()
    {
        using var voc = new TinyVoc();
        var aug = Path.Combine(voc.Root, VocLayout.AugmentedLists);
        Directory.CreateDirectory(aug);
        var ids = voc.Result.TrainIds.Concat(voc.Result.ValIds).ToList();
        // SBD-style lines: "/JPEGImages/ID.jpg /SegmentationClassAug/ID.png", plus a blank line and a repeat.
        File.WriteAllLines(Path.Combine(aug, "train_aug.txt"),
            ids.Select(id => $"/JPEGImages/{id}.jpg /SegmentationClassAug/{id}.png").Append("").Append(ids[0]));
        var ds = VocDataset.Open(voc.Root, "train_aug");
        Assert.Equal(ids, ds.Samples.Select(s => s.Id));

        var own = Path.Combine(voc.Parent, "mine.txt");
        File.WriteAllLines(own, new[] { ids[2], ids[1] });
        Assert.Equal(new[] { ids[2], ids[1] }, VocDataset.Open(voc.Root, own).Samples.Select(s => s.Id));
    }

    // ---- bad input: each case names the file and the problem; Skip drops and counts it ----

    [Fact]
    public void TruncatedJpegFailsOrIsSkipped()
    {
        using var voc = new TinyVoc();
        var id = voc.FirstTrainId;
        var path = voc.Layout.ImagePath(id);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);

        var e = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "train"));
        Assert.Equal(path, e.Subject);
        Assert.Contains("truncated", e.Problem);

        var ds = VocDataset.Open(voc.Root, "train", Skip);
        Assert.Equal(5, ds.Count);
        var skipped = Assert.Single(ds.Skipped);
        Assert.Equal((id, path), (skipped.Id, skipped.File));
        Assert.DoesNotContain(ds.Samples, s => s.Id == id);
    }

    [Fact]
    public void CorruptJpegBytesAreBadInput()
    {
        using var voc = new TinyVoc();
        var path = voc.Layout.ImagePath(voc.FirstTrainId);
        var bytes = File.ReadAllBytes(path);
        // Keep the JPEG start marker, scramble the header segments (tables, frame and scan headers) after it.
        // (libjpeg tolerates damage inside the entropy-coded data, decoding grey blocks with a warning, so a
        // damaged body is only caught when it ends the file early: see TruncatedJpegFailsOrIsSkipped.)
        var rng = new Random(1);
        for (int i = 2; i < 300; i++)
            bytes[i] = (byte)rng.Next(256);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "train"));
        Assert.Equal(path, e.Subject);
    }

    [Fact]
    public void MissingAnnotationFailsOrIsSkipped()
    {
        using var voc = new TinyVoc();
        var xml = voc.Layout.AnnotationPath(voc.FirstTrainId);
        File.Delete(xml);
        var e = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "train"));
        Assert.Equal((xml, "annotation file not found"), (e.Subject, e.Problem));
        Assert.Single(VocDataset.Open(voc.Root, "train", Skip).Skipped);
        // Evaluation does not need annotations.
        Assert.Equal(6, VocDataset.Open(voc.Root, "train", new VocOptions { ReadAnnotations = false }).Count);
    }

    [Fact]
    public void UnknownClassNameIsBadInput()
    {
        using var voc = new TinyVoc();
        var xml = voc.Layout.AnnotationPath(voc.FirstTrainId);
        var text = File.ReadAllText(xml);
        var name = System.Text.RegularExpressions.Regex.Match(text, "<name>([a-z]+)</name>").Groups[1].Value;
        File.WriteAllText(xml, text.Replace($"<name>{name}</name>", "<name>unicorn</name>"));
        var e = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "train"));
        Assert.Equal(xml, e.Subject);
        Assert.Contains("unknown class name 'unicorn'", e.Problem);
    }

    [Fact]
    public void EmptyLabelSetIsBadInput()
    {
        using var voc = new TinyVoc();
        var xml = voc.Layout.AnnotationPath(voc.FirstTrainId);
        File.WriteAllText(xml, "<annotation><filename>x.jpg</filename></annotation>");
        var e = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "train"));
        Assert.Equal(xml, e.Subject);
        Assert.Contains("empty label set", e.Problem);
    }

    [Fact]
    public void MalformedXmlIsBadInput()
    {
        using var voc = new TinyVoc();
        var xml = voc.Layout.AnnotationPath(voc.FirstTrainId);
        File.WriteAllText(xml, "<annotation><object><name>cat</name>");
        var e = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "train"));
        Assert.Equal(xml, e.Subject);
        Assert.Contains("malformed XML", e.Problem);
    }

    [Fact]
    public void MaskOfTheWrongSizeIsBadInput()
    {
        using var voc = new TinyVoc();
        var id = voc.FirstTrainId;
        var maskPath = voc.Layout.MaskPath(id);
        ImageCodec.WriteLabelPng(maskPath, new LabelMask(10, 7, new byte[70]));
        var e = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "train", new VocOptions { Masks = MaskUse.IfPresent }));
        Assert.Equal(maskPath, e.Subject);
        Assert.Contains("mask is 10x7 but its image", e.Problem);
        // Weak training (masks off) never opens the mask, so it is not affected.
        Assert.Equal(6, VocDataset.Open(voc.Root, "train").Count);
    }

    [Fact]
    public void MissingMaskIsBadInputOnlyWhenRequired()
    {
        using var voc = new TinyVoc();
        var maskPath = voc.Layout.MaskPath(voc.FirstTrainId);
        File.Delete(maskPath);
        var optional = VocDataset.Open(voc.Root, "train", new VocOptions { Masks = MaskUse.IfPresent });
        Assert.Null(optional.Get(voc.FirstTrainId).MaskPath);
        var e = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "train", new VocOptions { Masks = MaskUse.Required }));
        Assert.Equal(maskPath, e.Subject);
    }

    [Fact]
    public void SplitIdWithoutImageFailsOrIsSkipped()
    {
        using var voc = new TinyVoc();
        var list = Path.Combine(voc.Root, VocLayout.SegmentationLists, "train.txt");
        File.AppendAllLines(list, new[] { "ghost_000001" });
        var e = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "train"));
        Assert.Equal(voc.Layout.ImagePath("ghost_000001"), e.Subject);
        Assert.Contains("no image for id 'ghost_000001'", e.Problem);
        var ds = VocDataset.Open(voc.Root, "train", Skip);
        Assert.Equal(6, ds.Count);
        Assert.Equal("ghost_000001", Assert.Single(ds.Skipped).Id);
    }

    [Fact]
    public void MissingSplitListIsBadInputEvenUnderSkip()
    {
        using var voc = new TinyVoc();
        var e = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "nosuch", Skip));
        Assert.Equal(Path.Combine(voc.Root, VocLayout.SegmentationLists, "nosuch.txt"), e.Subject);
        Assert.Contains("not found", e.Problem);
    }

    [Fact]
    public void MissingRootAndEmptySplitAreBadInput()
    {
        using var tmp = new TempDir();
        var missing = Assert.Throws<BadInputException>(() => VocDataset.Open(tmp.File("none"), "train"));
        Assert.Contains("not found", missing.Problem);
        var notVoc = Assert.Throws<BadInputException>(() => VocDataset.Open(tmp.Path, "train"));
        Assert.Contains("not a VOC2012 tree", notVoc.Problem);

        using var voc = new TinyVoc();
        var list = Path.Combine(voc.Root, VocLayout.SegmentationLists, "val.txt");
        File.WriteAllText(list, "\n\n");
        var empty = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "val"));
        Assert.Equal((list, "split list holds no ids"), (empty.Subject, empty.Problem));
    }

    [Fact]
    public void SkippingEverySampleIsAnError()
    {
        using var voc = new TinyVoc();
        foreach (var id in voc.Result.ValIds)
            File.Delete(voc.Layout.AnnotationPath(id));
        var e = Assert.Throws<BadInputException>(() => VocDataset.Open(voc.Root, "val", Skip));
        Assert.Contains("every one of its 2 ids is bad", e.Problem);
    }

    // ---- real VOC 2012 photos ----

    [RealDataFact]
    public void RealSampleReadsAllFiveWithLabelsEqualToTheMaskClasses()
    {
        var ds = VocDataset.Open(RealVocSample.Root!, "val", new VocOptions { Masks = MaskUse.Required });
        Assert.Equal(RealVocSample.MaskClasses.Keys.Order(), ds.Samples.Select(s => s.Id).Order());
        foreach (var s in ds.Samples)
        {
            var image = ds.LoadImage(s.Id);
            var mask = ds.LoadMask(s.Id);
            Assert.Equal((image.Width, image.Height), (mask.Width, mask.Height));
            Assert.Contains(mask.Labels, v => v == 255); // VOC's void borders survive decoding
            var maskClasses = mask.Labels.Where(v => v is > 0 and < 255).Select(v => (int)v).Distinct().Order();
            Assert.Equal(RealVocSample.MaskClasses[s.Id], maskClasses);
            Assert.Equal(RealVocSample.MaskClasses[s.Id], s.Labels.Order());
        }
    }
}
