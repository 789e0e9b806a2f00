using EcsNet.Testing;

namespace EcsNet.Data.Tests;

public class VocValidatorTests
{
    [Fact]
    public void CleanTreeHasNoProblemsAndMatchingHistograms()
    {
        using var voc = new TinyVoc();
        var r = VocValidator.Check(voc.Root, "trainval");
        Assert.True(r.Ok);
        Assert.Equal((8, 8, 8), (r.Listed, r.Valid, r.ImagesWithMasks));
        Assert.Empty(r.Warnings);
        for (int c = 1; c < VocClasses.Count; c++)
        {
            Assert.Equal(voc.Result.ImagesPerClass[c], r.ImagesPerClass[c]);
            Assert.Equal(r.ImagesPerClass[c], r.MaskImagesPerClass[c]);
        }
        // Pixel counts add up to every mask pixel.
        long pixels = voc.Result.TrainIds.Concat(voc.Result.ValIds)
            .Sum(id => (long)ImageCodec.ReadLabelPng(voc.Layout.MaskPath(id)).Labels.Length);
        Assert.Equal(pixels, r.MaskPixelsPerClass.Sum() + r.IgnorePixels);
    }

    [Fact]
    public void CollectsEveryProblemInsteadOfStoppingAtTheFirst()
    {
        using var voc = new TinyVoc();
        var ids = voc.Result.TrainIds;
        var jpeg = voc.Layout.ImagePath(ids[0]);
        File.WriteAllBytes(jpeg, File.ReadAllBytes(jpeg)[..200]);
        File.Delete(voc.Layout.AnnotationPath(ids[1]));
        ImageCodec.WriteLabelPng(voc.Layout.MaskPath(ids[2]), new LabelMask(3, 3, new byte[9]));
        var bad = ImageCodec.ReadLabelPng(voc.Layout.MaskPath(ids[3]));
        bad.Labels[0] = 77;
        ImageCodec.WriteLabelPng(voc.Layout.MaskPath(ids[3]), bad);

        var r = VocValidator.Check(voc.Root, "train");
        Assert.False(r.Ok);
        Assert.Equal(6, r.Listed);
        Assert.Equal(2, r.Valid);
        Assert.Equal(new[] { jpeg, voc.Layout.AnnotationPath(ids[1]), voc.Layout.MaskPath(ids[2]), voc.Layout.MaskPath(ids[3]) },
            r.Problems.Select(p => p.File));
        Assert.Contains("77", r.Problems[3].Problem);
    }

    [Fact]
    public void LabelMaskDisagreementIsAWarningNotAProblem()
    {
        using var voc = new TinyVoc();
        var id = voc.FirstTrainId;
        var mask = ImageCodec.ReadLabelPng(voc.Layout.MaskPath(id));
        Array.Fill(mask.Labels, (byte)0);
        ImageCodec.WriteLabelPng(voc.Layout.MaskPath(id), mask);
        var r = VocValidator.Check(voc.Root, "train");
        Assert.True(r.Ok);
        Assert.StartsWith(id + ": annotation labels", Assert.Single(r.Warnings));
    }

    [RealDataFact]
    public void RealSamplePassesAndItsLabelHistogramMatchesTheMasks()
    {
        var r = VocValidator.Check(RealVocSample.Root!, "train");
        Assert.True(r.Ok, string.Join("; ", r.Problems));
        Assert.Equal((5, 5, 5), (r.Listed, r.Valid, r.ImagesWithMasks));
        Assert.Empty(r.Warnings);
        var expected = new int[VocClasses.Count];
        foreach (var classes in RealVocSample.MaskClasses.Values)
            foreach (int c in classes)
                expected[c]++;
        for (int c = 1; c < VocClasses.Count; c++)
        {
            Assert.Equal(expected[c], r.ImagesPerClass[c]);
            Assert.Equal(expected[c], r.MaskImagesPerClass[c]);
        }
        Assert.True(r.IgnorePixels > 0);
    }
}
