using EcsNet.Data;
using EcsNet.Labels.Evaluation;

namespace EcsNet.Labels.Tests.Evaluation;

public class LabelDiagnosticsTests
{
    private static LabelMask Mask(int w, params byte[] labels) => new(w, labels.Length / w, labels);

    [Fact]
    public void TheBreakdownCountsEachKindOfErrorOnAHandWorkedImage()
    {
        // truth:  0   0   0   3   3   3   3  255
        // pred :  0   3 255   3   0   5 255   3
        // parts:  0   0   0   3   0   0   3   0
        var truth = Mask(8, 0, 0, 0, 3, 3, 3, 3, 255);
        var pred = Mask(8, 0, 3, 255, 3, 0, 5, 255, 3);
        var parts = Mask(8, 0, 0, 0, 3, 0, 0, 3, 0);
        var b = new LabelBreakdown();
        b.Add(pred, truth, parts);

        Assert.Equal((4L, 1L, 1L, 1L, 1L), (b.ObjectPixels, b.ObjectRight, b.ObjectAsBackground, b.ObjectWrongClass, b.ObjectIgnored));
        Assert.Equal((3L, 1L, 1L), (b.BackgroundPixels, b.BackgroundAsObject, b.BackgroundIgnored));
        Assert.Equal(0.25, b.ObjectRecall);
        // labelled as an object: the right one, the wrong class, the bleed pixel
        Assert.Equal(1.0 / 3, b.ObjectPrecision, 12);
        Assert.Equal(1.0 / 3, b.BleedRate, 12);
        // parts: pixel 3 (right) and pixel 6 (ignored); body: pixels 4 and 5 (both wrong)
        Assert.Equal((2L, 1L, 2L, 0L), (b.PartPixels, b.PartRight, b.BodyPixels, b.BodyRight));
        Assert.Equal(0.5, b.PartRecall);
        Assert.Equal(0.0, b.BodyRecall);

        var merged = new LabelBreakdown();
        merged.Merge(b);
        merged.Merge(b);
        Assert.Equal((8L, 2L, 2), (merged.ObjectPixels, merged.ObjectRight, merged.Images));
        Assert.Equal(b.ObjectRecall, merged.ObjectRecall);
    }

    [Fact]
    public void WithoutPartsThePartColumnsAreUndefinedAndASizeMismatchIsNamed()
    {
        var b = new LabelBreakdown();
        b.Add(Mask(2, 1, 0), Mask(2, 1, 1));
        Assert.True(double.IsNaN(b.PartRecall));
        Assert.Equal(0.5, b.ObjectRecall);
        var e = Assert.Throws<BadInputException>(() => b.Add(Mask(1, 1), Mask(2, 1, 1)));
        Assert.Contains("1x1", e.Message);
    }

    [Fact]
    public void TheGridTruthIsEachBlocksMostFrequentLabel()
    {
        // 4x2 image, stride 2 → a 2x1 grid: block 0 holds {0, 0, 7, 255}, block 1 holds {7, 7, 0, 255}
        var truth = Mask(4, 0, 0, 7, 7, 7, 255, 0, 255);
        var grid = AffinityLabelScore.GridTruth(truth, 2);
        Assert.Equal((2, 1), (grid.Width, grid.Height));
        Assert.Equal(new byte[] { 0, 7 }, grid.Labels);
        // an all-ignore block stays ignore; a 3-wide image at stride 2 has a partial second column
        Assert.Equal(new byte[] { 255, 1 }, AffinityLabelScore.GridTruth(Mask(3, 255, 255, 1), 2).Labels);
    }

    [Fact]
    public void CellsAndPairsAreScoredAgainstTheGroundTruthWithinTheRadius()
    {
        // A 3x1 grid at stride 1 (truth = grid resolution): truth 0 5 5, labels 0 5 255.
        // Radius 2: pairs at distance 1 only: (0,1) and (1,2); (0,2) is at distance 2 ≥ radius.
        var truth = Mask(3, 0, 5, 5);
        var score = new AffinityLabelScore();
        score.Add(Mask(3, 0, 5, 255), truth, stride: 1, radius: 2);
        Assert.Equal((3L, 1L, 1L, 1L, 1L, 1L, 2L), (score.Cells, score.BackgroundCells, score.BackgroundCellsRight,
            score.ObjectCells, score.ObjectCellsRight, score.IgnoredCells, score.TrueObjectCells));
        // (0,1): labelled 0|5, truly different → a right 'different' pair; (1,2): cell 2 ignored → no label, but
        // a true within-object pair
        Assert.Equal((1L, 1L, 0L, 0L), (score.DifferentPairs, score.DifferentPairsRight, score.SameObjectPairs, score.SameBackgroundPairs));
        Assert.Equal((1L, 0L), (score.TrueObjectPairs, score.TrueObjectPairsLabelled));

        // radius 3 adds the pair (0,2) at distance 2; labels 0 0 5 against truth 0 5 5: (0,1) 'same background'
        // but truly different; (1,2) 'different' but truly the same object; (0,2) 'different', right
        var wider = new AffinityLabelScore();
        wider.Add(Mask(3, 0, 0, 5), truth, stride: 1, radius: 3);
        Assert.Equal((1L, 0L), (wider.SameBackgroundPairs, wider.SameBackgroundPairsRight));
        Assert.Equal((2L, 1L), (wider.DifferentPairs, wider.DifferentPairsRight));
        Assert.Equal(0.5, wider.DifferentPrecision);
        Assert.Equal((1L, 1L), (wider.TrueObjectPairs, wider.TrueObjectPairsLabelled));

        // pairs in two dimensions: a 2x2 grid, radius 2 → the 4 side neighbours and the 2 diagonals (distance² 2 < 4)
        var square = new AffinityLabelScore();
        square.Add(Mask(2, 4, 4, 4, 4), Mask(2, 4, 4, 4, 4), stride: 1, radius: 2);
        Assert.Equal((6L, 6L), (square.SameObjectPairs, square.SameObjectPairsRight));
    }

    [Fact]
    public void TheErasedRegionAndPhiAreScoredAgainstPartsAndBodies()
    {
        // truth :  0   0   2   2   2   2  255
        // parts :  0   0   2   0   0   0   0
        // erased:  1   0   1   1   0   0   1
        // phi   :  0   2 255   2   2   0   2
        var truth = Mask(7, 0, 0, 2, 2, 2, 2, 255);
        var parts = Mask(7, 0, 0, 2, 0, 0, 0, 0);
        var erased = Mask(7, 1, 0, 1, 1, 0, 0, 1);
        var phi = Mask(7, 0, 2, 255, 2, 2, 0, 2);
        var r = new ReliableLabelScore();
        r.Add(erased, phi, truth, parts);

        Assert.Equal((6L, 4L, 1L, 3L), (r.Pixels, r.ObjectPixels, r.PartPixels, r.BodyPixels));
        // erased: pixel 0 (background), 2 (part), 3 (body); pixel 6 is ignore in the truth
        Assert.Equal((3L, 2L, 1L, 1L), (r.ErasedPixels, r.ErasedObject, r.ErasedPart, r.ErasedBody));
        Assert.Equal(2.0 / 3, r.ErasedPrecision, 12);
        Assert.Equal(1.0, r.ErasedPartShare);
        Assert.Equal(1.0 / 3, r.ErasedBodyShare, 12);
        // Φ: background labels at 0 (right) and 5 (an object pixel: wrong); object labels at 1 (wrong), 3 and 4 (right, body)
        Assert.Equal((2L, 1L, 3L, 2L, 2L), (r.PhiBackground, r.PhiBackgroundRight, r.PhiObject, r.PhiObjectRight, r.PhiBodyRight));
        Assert.Equal(5.0 / 6, r.PhiShare, 12);
        Assert.Equal(0.5, r.PhiObjectCoverage);
        Assert.Equal(2.0 / 3, r.PhiBodyCoverage, 12);
        Assert.Equal(2.0 / 3, r.PhiObjectPrecision, 12);
        Assert.Equal(0.5, r.PhiBackgroundPrecision);
    }
}
