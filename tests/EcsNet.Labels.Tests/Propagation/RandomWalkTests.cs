using EcsNet.Data;
using EcsNet.Labels.Propagation;

namespace EcsNet.Labels.Tests.Propagation;

public class RandomWalkTests
{
    /// <summary>Features <c>[C][H][W]</c>: two regions (left/right of a slanted boundary) with different means,
    /// plus noise, so the walk neither mixes everything nor nothing.</summary>
    private static float[] RegionFeatures(int channels, int height, int width, int seed)
    {
        var rng = new Random(seed);
        var f = new float[channels * height * width];
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    bool left = x < width / 2 + (y - height / 2) / 2;
                    f[(c * height + y) * width + x] = (left ? 0.2f * c : 1f - 0.1f * c) + 0.3f * (float)rng.NextDouble();
                }
        return f;
    }

    /// <summary>
    /// PSA's dense path, written out in double from the definitions: A_ij = exp(−mean_c |f_ci − f_cj|)^β for the
    /// brute-force pair set (both directions), A_ii = 1; T = A / colsum(A); T ← T·T logt times; out = cam · T.
    /// </summary>
    private static double[] DenseReference(float[] features, int channels, int height, int width, float[] cam, int k,
        int radius, int beta, int logt)
    {
        int n = height * width;
        var a = new double[n, n];
        for (int i = 0; i < n; i++)
            a[i, i] = 1;
        foreach (var (p, q) in AffinityPairsTests.BruteForcePairs(radius, height, width))
        {
            double sum = 0;
            for (int c = 0; c < channels; c++)
                sum += Math.Abs((double)features[c * n + p] - features[c * n + q]);
            double v = Math.Pow(Math.Exp(-sum / channels), beta);
            a[p, q] = v;
            a[q, p] = v;
        }
        var t = new double[n, n];
        for (int j = 0; j < n; j++)
        {
            double col = 0;
            for (int i = 0; i < n; i++)
                col += a[i, j];
            for (int i = 0; i < n; i++)
                t[i, j] = a[i, j] / col;
        }
        for (int s = 0; s < logt; s++)
        {
            var sq = new double[n, n];
            for (int i = 0; i < n; i++)
                for (int m = 0; m < n; m++)
                {
                    double tim = t[i, m];
                    if (tim == 0)
                        continue;
                    for (int j = 0; j < n; j++)
                        sq[i, j] += tim * t[m, j];
                }
            t = sq;
        }
        var outp = new double[k * n];
        for (int c = 0; c < k; c++)
            for (int i = 0; i < n; i++)
            {
                double v = cam[c * n + i];
                if (v == 0)
                    continue;
                for (int j = 0; j < n; j++)
                    outp[c * n + j] += v * t[i, j];
            }
        return outp;
    }

    [Theory]
    [InlineData(0, 10, 12)]
    [InlineData(1, 10, 12)]
    [InlineData(3, 9, 11)]
    [InlineData(8, 10, 12)]
    public void SparseStepsEqualDensePsaPath(int logt, int height, int width)
    {
        const int channels = 7, k = 21;
        int n = height * width;
        var features = RegionFeatures(channels, height, width, seed: 11);
        var rng = new Random(5);
        var cam = new float[k * n];
        for (int i = 0; i < cam.Length; i++)
            cam[i] = (float)rng.NextDouble();
        var options = new RandomWalkOptions { LogT = logt };
        var transition = RandomWalkTransition.FromFeatures(features, channels, height, width, options);
        var got = transition.Propagate(cam, k, options.Steps);
        var expected = DenseReference(features, channels, height, width, cam, k, options.Radius, options.Beta, logt);
        double max = expected.Max(Math.Abs), worst = 0;
        for (int i = 0; i < got.Length; i++)
            worst = Math.Max(worst, Math.Abs(got[i] - expected[i]));
        Assert.True(worst / max < 1e-5, $"max relative difference {worst / max:E2}");
        if (logt > 0)
        {
            // the walk really moves mass: the result differs from the input by much more than the tolerance
            double moved = 0;
            for (int i = 0; i < got.Length; i++)
                moved = Math.Max(moved, Math.Abs(got[i] - cam[i]));
            Assert.True(moved > 0.05, $"walk moved at most {moved}");
        }
    }

    [Fact]
    public void TransitionRowsSumToOneAndComeFromASymmetricMatrix()
    {
        var features = RegionFeatures(5, 9, 10, seed: 2);
        var t = RandomWalkTransition.FromFeatures(features, 5, 9, 10, new RandomWalkOptions());
        int s = t.StencilSize, n = t.NodeCount;
        Assert.Equal(69, s);
        Assert.Equal(0, t.Deltas[0]);
        // D·P = A is symmetric: d_i P[i, j] = d_j P[j, i]. With A_ii = 1, d_i = 1 / P[i, i].
        for (int i = 0; i < n; i++)
        {
            double row = 0;
            for (int q = 0; q < s; q++)
            {
                float p = t.Weights[i * s + q];
                row += p;
                int j = i + t.Deltas[q];
                if (p == 0 || q == 0)
                    continue;
                int back = Array.IndexOf(t.Deltas, -t.Deltas[q]);
                float pj = t.Weights[j * s + back];
                Assert.Equal(p / t.Weights[i * s], pj / t.Weights[j * s], 5);
            }
            Assert.Equal(1.0, row, 5);
        }
    }

    [Fact]
    public void ThreadCountDoesNotChangeTheResult()
    {
        // 40x43 = 1720 nodes: several row chunks per step with 2 or more threads, chunk edges at odd nodes
        const int h = 40, w = 43;
        var features = RegionFeatures(4, h, w, seed: 3);
        var cam = Enumerable.Range(0, 21 * h * w).Select(i => (float)((i * 37) % 101) / 101f).ToArray();
        var one = RandomWalkTransition.FromFeatures(features, 4, h, w, new RandomWalkOptions { Threads = 1 }).Propagate(cam, 21, 64, threads: 1);
        var two = RandomWalkTransition.FromFeatures(features, 4, h, w, new RandomWalkOptions { Threads = 2 }).Propagate(cam, 21, 64, threads: 2);
        var five = RandomWalkTransition.FromFeatures(features, 4, h, w, new RandomWalkOptions()).Propagate(cam, 21, 64, threads: 5);
        Assert.Equal(one, two);
        Assert.Equal(one, five);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(12)]
    [InlineData(21)]
    [InlineData(37)]
    public void AnyChannelCountPropagatesLikeSingleChannels(int channels)
    {
        // the vector paths (2, 3 or any number of vectors per row) must agree with one channel at a time
        var features = RegionFeatures(3, 9, 11, seed: 4);
        var t = RandomWalkTransition.FromFeatures(features, 3, 9, 11, new RandomWalkOptions());
        int n = 99;
        var rng = new Random(channels);
        var x = Enumerable.Range(0, channels * n).Select(_ => (float)rng.NextDouble()).ToArray();
        var all = t.Propagate(x, channels, 16);
        for (int c = 0; c < channels; c++)
        {
            var single = t.Propagate(x[(c * n)..((c + 1) * n)], 1, 16);
            for (int i = 0; i < n; i++)
                Assert.Equal(single[i], all[c * n + i], 5);
        }
    }

    [Fact]
    public void WalkSpreadsASparseCamOverItsRegion()
    {
        // 96x96 image → 12x12 grid; features: left half vector 0, right half vector 10 (affinity across ≈ e^−80).
        // Class 5's CAM is 0.9 on 40 % of the left pixels (a stripe pattern) and 0.05 elsewhere on the left; the
        // raw argmax with the α = 16 background labels only the stripes, the walk fills the left half.
        const int size = 96, grid = 12, channels = 4;
        var features = new float[channels * grid * grid];
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < grid; y++)
                for (int x = grid / 2; x < grid; x++)
                    features[(c * grid + y) * grid + x] = 10f;
        var cams = new float[VocClasses.Foreground * size * size];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size / 2; x++)
                cams[((5 - 1) * size + y) * size + x] = (x % 10) < 4 ? 0.9f : 0.05f;
        var result = RandomWalk.Run(features, channels, grid, grid, cams, new[] { 5 }, size, size, new RandomWalkOptions());

        Assert.Equal(size, result.Labels.Width);
        int leftFive = 0, rightBg = 0;
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                byte l = result.Labels[y, x];
                if (x < size / 2 && l == 5) leftFive++;
                if (x >= size / 2 && l == 0) rightBg++;
            }
        // PSA's pair set leaves the bottom corner cells unconnected (they keep their pooled CAM); allow for them.
        Assert.True(leftFive > 0.9 * size * size / 2, $"only {leftFive} of the left pixels became class 5");
        Assert.Equal(size * size / 2, rightBg);
        Assert.Equal(21 * grid * grid, result.GridScores.Length);
    }

    [Fact]
    public void RunChecksItsInputs()
    {
        var o = new RandomWalkOptions();
        var e = Assert.Throws<BadInputException>(() =>
            RandomWalk.Run(new float[4 * 12 * 12], 4, 12, 12, new float[20 * 100 * 100], new[] { 1 }, 100, 100, o));
        Assert.Contains("grid 12x12", e.Message);
        Assert.Contains("(13x13)", e.Message);
        e = Assert.Throws<BadInputException>(() =>
            RandomWalkTransition.FromFeatures(new float[10], 4, 12, 12, o));
        Assert.Contains("features", e.Message);
        e = Assert.Throws<BadInputException>(() =>
            RandomWalk.Run(new float[4 * 12 * 12], 4, 12, 12, new float[20 * 96 * 96], new[] { 1 }, 96, 96, o with { LogT = -1 }));
        Assert.Contains("logt", e.Message);
    }
}
