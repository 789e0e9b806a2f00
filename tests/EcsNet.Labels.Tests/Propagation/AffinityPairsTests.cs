using EcsNet.Data;
using EcsNet.Labels.Propagation;

namespace EcsNet.Labels.Tests.Propagation;

public class AffinityPairsTests
{
    /// <summary>
    /// Brute force over every ordered pair of grid pixels: (p, q) is a pair when q − p lies in the forward half-plane
    /// (dy &gt; 0, or dy = 0 and dx &gt; 0), strictly inside the radius, and p lies in PSA's from-block.
    /// </summary>
    internal static HashSet<(int From, int To)> BruteForcePairs(int radius, int height, int width)
    {
        var set = new HashSet<(int, int)>();
        int rf = radius - 1;
        for (int py = 0; py < height; py++)
            for (int px = 0; px < width; px++)
            {
                bool inBlock = py < height - rf && px >= rf && px < width - rf;
                if (!inBlock)
                    continue;
                for (int qy = 0; qy < height; qy++)
                    for (int qx = 0; qx < width; qx++)
                    {
                        int dy = qy - py, dx = qx - px;
                        bool forward = dy > 0 || (dy == 0 && dx > 0);
                        if (forward && dx * dx + dy * dy < radius * radius)
                            set.Add((py * width + px, qy * width + qx));
                    }
            }
        return set;
    }

    [Fact]
    public void SearchOffsetsAreTheForwardHalfDiscInPsaOrder()
    {
        var offsets = AffinityPairs.SearchOffsets(5);
        Assert.Equal(34, offsets.Length);
        Assert.Equal(new[] { (0, 1), (0, 2), (0, 3), (0, 4), (1, -4) }, offsets.Take(5).ToArray());
        Assert.Equal((4, 2), offsets[^1]);
        // row counts: dy=0: 4, dy=1: 9, dy=2: 9, dy=3: 7 (|dx| ≤ 3), dy=4: 5 (|dx| ≤ 2)
        Assert.Equal(new[] { 4, 9, 9, 7, 5 }, Enumerable.Range(0, 5).Select(dy => offsets.Count(o => o.Dy == dy)).ToArray());
    }

    [Theory]
    [InlineData(5, 5, 9)]
    [InlineData(5, 9, 12)]
    [InlineData(3, 7, 6)]
    [InlineData(2, 4, 4)]
    public void PairsEqualBruteForceEnumeration(int radius, int height, int width)
    {
        var pairs = AffinityPairs.Create(radius, height, width);
        var expected = BruteForcePairs(radius, height, width);
        var got = new HashSet<(int, int)>();
        for (int p = 0; p < pairs.PairCount; p++)
            Assert.True(got.Add((pairs.From[p % pairs.FromCount], pairs.To[p])), $"pair {p} repeats");
        Assert.True(expected.SetEquals(got));
        // offset-major layout: To[k·F + j] = From[j] + (dy·W + dx) of offset k
        for (int k = 0; k < pairs.Offsets.Count; k++)
            for (int j = 0; j < pairs.FromCount; j++)
                Assert.Equal(pairs.From[j] + pairs.Offsets[k].Dy * width + pairs.Offsets[k].Dx, pairs.To[k * pairs.FromCount + j]);
    }

    [Fact]
    public void PsaSizeHasTheBaselineCounts()
    {
        // PSA's get_indices_of_pairs at the random-walk benchmark's size (docs/BENCHMARKS-randomwalk.md):
        // 56x56, radius 5 → 34 offsets × 2496 from-nodes = 84 864 pairs.
        var pairs = AffinityPairs.Create(5, 56, 56);
        Assert.Equal(2496, pairs.FromCount);
        Assert.Equal(84864, pairs.PairCount);
    }

    [Fact]
    public void TooSmallGridIsBadInput()
    {
        var e = Assert.Throws<BadInputException>(() => AffinityPairs.Create(5, 8, 8));
        Assert.Contains("8x8", e.Message);
        Assert.Contains("9 columns", e.Message);
    }

    [Fact]
    public void LabelsSplitIntoBackgroundForegroundNegativeAndIgnore()
    {
        // radius 2 on a 2x3 grid: from-block = row 0, column 1 (the pixel 1); offsets (0,1), (1,-1), (1,0), (1,1).
        // grid:  0 | 0 | 7
        //        255 | 7 | 7
        var pairs = AffinityPairs.Create(2, 2, 3);
        Assert.Equal(new[] { 1 }, pairs.From);
        Assert.Equal(new[] { 2, 3, 4, 5 }, pairs.To);
        var labels = pairs.Labels(new byte[] { 0, 0, 7, 255, 7, 7 });
        // pixel 1 (label 0) with 2 (7): negative; with 3 (255): ignored; with 4 (7): negative; with 5 (7): negative
        Assert.Equal(new float[] { 0, 0, 0, 0 }, labels.BackgroundPositive);
        Assert.Equal(new float[] { 0, 0, 0, 0 }, labels.ForegroundPositive);
        Assert.Equal(new float[] { 1, 0, 1, 1 }, labels.Negative);

        labels = pairs.Labels(new byte[] { 9, 7, 7, 0, 255, 0 });
        // pixel 1 (7): with 2 (7) fg-positive; with 3 (0) negative; with 4 (255) ignored; with 5 (0) negative
        Assert.Equal(new float[] { 0, 0, 0, 0 }, labels.BackgroundPositive);
        Assert.Equal(new float[] { 1, 0, 0, 0 }, labels.ForegroundPositive);
        Assert.Equal(new float[] { 0, 1, 0, 1 }, labels.Negative);

        labels = pairs.Labels(new byte[] { 3, 0, 0, 0, 4, 255 });
        Assert.Equal(new float[] { 1, 1, 0, 0 }, labels.BackgroundPositive);
        Assert.Equal(new float[] { 0, 0, 0, 0 }, labels.ForegroundPositive);
        Assert.Equal(new float[] { 0, 0, 1, 0 }, labels.Negative);
    }

    [Fact]
    public void LabelMapOfWrongSizeIsBadInput()
    {
        var pairs = AffinityPairs.Create(2, 2, 3);
        Assert.Throws<BadInputException>(() => pairs.Labels(new byte[5]));
    }
}
