using EcsNet.Data;
using EcsNet.Labels.Evaluation;

namespace EcsNet.Labels.Tests.Evaluation;

public class MetricsTests
{
    [Fact]
    public void HandWorkedThreeClassMatrix()
    {
        // gt   : 0 0 1 1 2 255
        // pred : 0 1 1 1 0 2
        // counted pairs (gt,pred): (0,0) (0,1) (1,1) (1,1) (2,0); the ignore pixel is not counted.
        var m = new ConfusionMatrix(classes: 3);
        m.Add(new byte[] { 0, 1, 1, 1, 0, 2 }, new byte[] { 0, 0, 1, 1, 2, 255 });
        Assert.Equal(5, m.Pixels);
        Assert.Equal((1L, 1L, 0L), (m[0, 0], m[0, 1], m[0, 2]));
        Assert.Equal((0L, 2L, 0L), (m[1, 0], m[1, 1], m[1, 2]));
        Assert.Equal((1L, 0L, 0L), (m[2, 0], m[2, 1], m[2, 2]));
        // IoU_0 = 1 / (2 + 2 − 1) = 1/3; IoU_1 = 2 / (2 + 3 − 2) = 2/3; IoU_2 = 0 / (1 + 0 − 0) = 0.
        Assert.Equal(1 / 3.0, m.IoU(0), 12);
        Assert.Equal(2 / 3.0, m.IoU(1), 12);
        Assert.Equal(0.0, m.IoU(2), 12);
        Assert.Equal(1 / 3.0, m.MeanIoU, 12);
        Assert.Equal(3 / 5.0, m.PixelAccuracy, 12);
    }

    [Fact]
    public void ClassesAbsentFromGroundTruthAndPredictionAreLeftOutOfTheMean()
    {
        // Background and person only; a false "cat" prediction makes cat present with IoU 0.
        var m = new ConfusionMatrix();
        m.Add(new byte[] { 0, 0, 15, 15, 8 }, new byte[] { 0, 0, 15, 15, 15 });
        Assert.True(double.IsNaN(m.IoU(3)));
        Assert.Equal(1.0, m.IoU(0), 12);
        Assert.Equal(2 / 3.0, m.IoU(15), 12);
        Assert.Equal(0.0, m.IoU(8), 12);
        Assert.Equal((1.0 + 2 / 3.0 + 0.0) / 3, m.MeanIoU, 12);
        var score = m.Score();
        Assert.Equal(3, score.ClassesCounted);
        Assert.False(score.Classes[3].Present);
        Assert.Equal((3L, 2L), (score.Classes[15].GroundTruthPixels, score.Classes[15].PredictedPixels));
    }

    [Fact]
    public void PredictionOutsideTheClassesCountsAsAMiss()
    {
        var m = new ConfusionMatrix();
        m.Add(new byte[] { 1, 255 }, new byte[] { 1, 1 });
        Assert.Equal(1, m.Missed(1));
        Assert.Equal(0.5, m.IoU(1), 12);          // 1 / (2 + 1 − 1)
        Assert.Equal(0.5, m.PixelAccuracy, 12);
        Assert.Equal(1.0 / 2, m.MeanIoU, 12);      // only class 1 is present
    }

    [Fact]
    public void PerfectPredictionScoresOne()
    {
        var gt = new LabelMask(3, 2, new byte[] { 0, 5, 5, 255, 20, 0 });
        var m = new ConfusionMatrix();
        m.Add(gt, gt);
        Assert.Equal(1.0, m.MeanIoU);
        Assert.Equal(1.0, m.PixelAccuracy);
        Assert.Equal(3, m.Score().ClassesCounted);
    }

    [Fact]
    public void MergeEqualsAddingEverythingToOneMatrix()
    {
        var rng = new Random(9);
        byte[] Random(int n) => Enumerable.Range(0, n).Select(_ => (byte)(rng.Next(10) == 0 ? 255 : rng.Next(21))).ToArray();
        var (p1, g1, p2, g2) = (Random(500), Random(500), Random(300), Random(300));
        var whole = new ConfusionMatrix();
        whole.Add(p1, g1);
        whole.Add(p2, g2);
        var a = new ConfusionMatrix();
        a.Add(p1, g1);
        var b = new ConfusionMatrix();
        b.Add(p2, g2);
        a.Merge(b);
        Assert.Equal(whole.Score().Table7Row(), a.Score().Table7Row());
        Assert.Equal(whole.Pixels, a.Pixels);
        for (int g = 0; g < 21; g++)
            for (int p = 0; p < 21; p++)
                Assert.Equal(whole[g, p], a[g, p]);
    }

    [Fact]
    public void SizeMismatchAndBadGroundTruthAreRejected()
    {
        var m = new ConfusionMatrix();
        var e = Assert.Throws<ArgumentException>(() => m.Add(new LabelMask(2, 2, new byte[4]), new LabelMask(4, 1, new byte[4])));
        Assert.Contains("2x2", e.Message);
        Assert.Throws<ArgumentException>(() => m.Add(new byte[3], new byte[4]));
        Assert.Throws<ArgumentException>(() => m.Add(new byte[] { 0 }, new byte[] { 21 }));
        Assert.Throws<ArgumentException>(() => m.Merge(new ConfusionMatrix(3)));
        Assert.Equal(0, m.Pixels);
        Assert.True(double.IsNaN(m.MeanIoU));
    }

    [Fact]
    public void Table7ColumnsFollowThePapersOrder()
    {
        // The paper's header: bkg aero bike bird boat bottle bus car cat chair cow table dog horse mbk person plant sheep sofa train tv mean
        Assert.Equal("bkg aero bike bird boat bottle bus car cat chair cow table dog horse mbk person plant sheep sofa train tv",
            string.Join(' ', Metrics.Table7Columns));
        Assert.Equal(VocClasses.Count, Metrics.Table7Order.Count);
        var m = new ConfusionMatrix();
        m.Add(new byte[] { 0, 14, 14, 11 }, new byte[] { 0, 14, 11, 11 });
        var score = m.Score();
        Assert.Equal(("mbk", "motorbike"), (score.Classes[14].Column, score.Classes[14].Name));
        Assert.Equal(("table", "diningtable"), (score.Classes[11].Column, score.Classes[11].Name));
        // bkg 100, table 1/2, mbk 1/2, others absent; mean (1 + .5 + .5) / 3.
        var row = score.Table7Row().Split(' ');
        Assert.Equal(22, row.Length);
        Assert.Equal(("100.0", "50.0", "50.0", "-", "66.7"), (row[0], row[11], row[14], row[1], row[21]));
    }
}
