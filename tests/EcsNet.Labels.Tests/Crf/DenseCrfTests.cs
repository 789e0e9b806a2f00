using EcsNet.Data;
using EcsNet.Labels.Crf;

namespace EcsNet.Labels.Tests.Crf;

public class DenseCrfTests
{
    private static readonly string FixtureDir = Path.Combine(AppContext.BaseDirectory, "Fixtures");

    /// <summary>Matches Krähenbühl's densecrf (see Fixtures/README.md) to 1e-3 on every marginal.</summary>
    [Theory]
    [InlineData("l3", 10, 3f, 3f, 80f, 13f, 10f)]
    [InlineData("l6", 10, 3f, 3f, 80f, 13f, 10f)]
    [InlineData("l13", 5, 1.5f, 2f, 6f, 20f, 4f)]
    [InlineData("l21", 10, 3f, 3f, 80f, 13f, 10f)]
    [InlineData("l40", 5, 1.5f, 2f, 6f, 20f, 4f)]
    public void MarginalsMatchReferenceImplementation(string name, int iterations, float gs, float gc, float bs, float br, float bc)
    {
        var image = NpyFile.Read(Path.Combine(FixtureDir, $"crf-{name}-image.npy"));
        var probs = NpyFile.Read(Path.Combine(FixtureDir, $"crf-{name}-probs.npy"));
        var expected = NpyFile.Read(Path.Combine(FixtureDir, $"crf-{name}-q.npy"));
        int h = image.Shape[0], w = image.Shape[1], labels = probs.Shape[0];
        var rgb = new RgbImage(w, h, image.Data.Select(v => (byte)v).ToArray());
        var options = new DenseCrfOptions
        {
            Iterations = iterations, GaussianSxy = gs, GaussianCompat = gc, BilateralSxy = bs, BilateralSrgb = br, BilateralCompat = bc,
        };

        var q = DenseCrf.Infer(rgb, probs.Data, labels, options);

        Assert.Equal(expected.Data.Length, q.Length);
        double worst = q.Zip(expected.Data, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst < 1e-3, $"max |ΔQ| = {worst}");
        // Not trivially close: the CRF moved the marginals away from the input probabilities.
        Assert.True(q.Zip(probs.Data, (a, b) => Math.Abs(a - b)).Max() > 0.05);
    }

    [Fact]
    public void NoisySquareIsCleaned()
    {
        // A bright square on a dark background; the unary says "square" with 0.7 inside and 0.3 outside,
        // but a quarter of the pixels have their evidence flipped.
        const int W = 40, H = 40;
        var rng = new Random(7);
        var pixels = new byte[W * H * 3];
        var truth = new bool[W * H];
        var probs = new float[2 * W * H];
        int noisyWrong = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                int p = y * W + x;
                truth[p] = x is >= 12 and < 28 && y is >= 12 and < 28;
                byte level = (byte)((truth[p] ? 200 : 50) + rng.Next(-8, 9));
                pixels[3 * p] = pixels[3 * p + 1] = pixels[3 * p + 2] = level;
                bool flip = rng.NextDouble() < 0.25;
                float fg = truth[p] ^ flip ? 0.7f : 0.3f;
                probs[p] = 1 - fg;
                probs[W * H + p] = fg;
                if (flip) noisyWrong++;
            }
        var q = DenseCrf.Infer(new RgbImage(W, H, pixels), probs, 2);
        int wrong = 0;
        for (int p = 0; p < W * H; p++)
            if ((q[W * H + p] > q[p]) != truth[p]) wrong++;
        Assert.True(noisyWrong > 300, $"the toy is noisy: {noisyWrong} flipped pixels");
        Assert.Equal(0, wrong);
    }

    /// <summary>
    /// Every code path of the vectorised inference (one kernel only, several 32-lane blocks, the unrolled default
    /// pair) against a plain mean-field loop written from the equations over <see cref="PermutohedralLattice.Filter"/>.
    /// </summary>
    [Theory]
    [InlineData(5, 0f, 10f)]
    [InlineData(2, 3f, 0f)]
    [InlineData(37, 3f, 10f)]
    [InlineData(7, 3f, 10f)]
    public void VectorisedInferenceMatchesPlainMeanField(int labels, float gaussianCompat, float bilateralCompat)
    {
        var (image, probs) = Toy(19, 14, labels, seed: 11);
        var options = new DenseCrfOptions { GaussianCompat = gaussianCompat, BilateralCompat = bilateralCompat, BilateralSxy = 7, Iterations = 6 };
        var q = DenseCrf.Infer(image, probs, labels, options);
        var expected = PlainMeanField(image, probs, labels, options);
        Assert.True(q.Zip(expected, (a, b) => Math.Abs(a - b)).Max() < 1e-5);
    }

    private static float[] PlainMeanField(RgbImage image, float[] probs, int labels, DenseCrfOptions o)
    {
        int w = image.Width, h = image.Height, n = w * h;
        var kernels = new List<(PermutohedralLattice Lattice, double[] Norm, float Weight)>();
        void AddKernel(float[] f, int d, float weight)
        {
            if (weight == 0) return;
            var lattice = PermutohedralLattice.Build(f, n, d);
            var k1 = new float[n];
            lattice.Filter(Enumerable.Repeat(1f, n).ToArray(), k1, 1);
            kernels.Add((lattice, k1.Select(v => 1 / Math.Sqrt(v + 1e-20)).ToArray(), weight));
        }
        var g = new float[n * 2];
        var b = new float[n * 5];
        for (int p = 0; p < n; p++)
        {
            int x = p % w, y = p / w;
            g[2 * p] = x / o.GaussianSxy; g[2 * p + 1] = y / o.GaussianSxy;
            b[5 * p] = x / o.BilateralSxy; b[5 * p + 1] = y / o.BilateralSxy;
            for (int c = 0; c < 3; c++) b[5 * p + 2 + c] = image.Pixels[3 * p + c] / o.BilateralSrgb;
        }
        AddKernel(g, 2, o.GaussianCompat);
        AddKernel(b, 5, o.BilateralCompat);

        var unary = new double[n * labels]; // [pixel][label] = log p
        for (int p = 0; p < n; p++)
            for (int l = 0; l < labels; l++)
                unary[p * labels + l] = Math.Log(Math.Clamp(probs[l * n + p], o.ProbabilityFloor, 1f));
        var q = Softmax(unary, labels);
        for (int it = 0; it < o.Iterations; it++)
        {
            var logits = (double[])unary.Clone();
            foreach (var (lattice, norm, weight) in kernels)
            {
                var scaled = new float[n * labels];
                for (int i = 0; i < scaled.Length; i++) scaled[i] = (float)(q[i] * norm[i / labels]);
                var filtered = new float[n * labels];
                lattice.Filter(scaled, filtered, labels);
                for (int i = 0; i < logits.Length; i++) logits[i] += weight * norm[i / labels] * filtered[i];
            }
            q = Softmax(logits, labels);
        }
        var result = new float[labels * n];
        for (int p = 0; p < n; p++)
            for (int l = 0; l < labels; l++)
                result[l * n + p] = (float)q[p * labels + l];
        return result;
    }

    private static double[] Softmax(double[] logits, int labels)
    {
        var q = new double[logits.Length];
        for (int p = 0; p < logits.Length / labels; p++)
        {
            var row = logits.AsSpan(p * labels, labels);
            double max = double.NegativeInfinity, sum = 0;
            foreach (var v in row) max = Math.Max(max, v);
            for (int l = 0; l < labels; l++) sum += q[p * labels + l] = Math.Exp(row[l] - max);
            for (int l = 0; l < labels; l++) q[p * labels + l] /= sum;
        }
        return q;
    }

    [Fact]
    public void ZeroIterationsGiveTheClippedNormalisedInput()
    {
        var (image, probs) = Toy(9, 7, 3, seed: 1);
        var q = DenseCrf.Infer(image, probs, 3, new DenseCrfOptions { Iterations = 0 });
        int n = 9 * 7;
        for (int p = 0; p < n; p++)
        {
            float sum = 0;
            for (int l = 0; l < 3; l++) sum += Math.Clamp(probs[l * n + p], 1e-5f, 1f);
            for (int l = 0; l < 3; l++)
                Assert.Equal(Math.Clamp(probs[l * n + p], 1e-5f, 1f) / sum, q[l * n + p], 5);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(21)]
    [InlineData(37)]
    public void MarginalsAreDistributionsAndDoNotDependOnThreadCount(int labels)
    {
        var (image, probs) = Toy(64, 80, labels, seed: labels);
        var one = DenseCrf.Infer(image, probs, labels, new DenseCrfOptions { MaxDegreeOfParallelism = 1 });
        var two = DenseCrf.Infer(image, probs, labels, new DenseCrfOptions { MaxDegreeOfParallelism = 2 });
        int n = 64 * 80;
        for (int p = 0; p < n; p++)
        {
            float sum = 0;
            for (int l = 0; l < labels; l++)
            {
                Assert.InRange(one[l * n + p], 0f, 1f);
                sum += one[l * n + p];
            }
            Assert.Equal(1f, sum, 4);
        }
        Assert.True(one.Zip(two, (a, b) => Math.Abs(a - b)).Max() < 1e-5);
    }

    [Fact]
    public void BatchAndReusedInstanceGiveTheSameAsSingleCalls()
    {
        var a = Toy(20, 15, 3, seed: 1);
        var b = Toy(11, 13, 21, seed: 2);
        var batch = DenseCrf.InferBatch(new[] { new DenseCrfInput(a.Image, a.Probs, 3), new DenseCrfInput(b.Image, b.Probs, 21) });
        Assert.Equal(DenseCrf.Infer(a.Image, a.Probs, 3), batch[0]);
        Assert.Equal(DenseCrf.Infer(b.Image, b.Probs, 21), batch[1]);

        var crf = new DenseCrf(a.Image);
        var into = new float[a.Probs.Length];
        crf.Infer(a.Probs, 3, into);
        Assert.Equal(batch[0], into);
        Assert.Equal(batch[0], crf.Infer(a.Probs, 3));
    }

    [Fact]
    public void ReusedSmoothnessKernelGivesIdenticalResults()
    {
        var a = Toy(23, 17, 4, seed: 3);
        var b = Toy(23, 17, 4, seed: 4);
        var fresh = new DenseCrfOptions { ReuseSmoothnessKernel = false };
        var cached = new DenseCrfOptions { ReuseSmoothnessKernel = true };
        Assert.Equal(DenseCrf.Infer(a.Image, a.Probs, 4, fresh), DenseCrf.Infer(a.Image, a.Probs, 4, cached));
        // The second image of the same size takes the kernel from the cache.
        Assert.Equal(DenseCrf.Infer(b.Image, b.Probs, 4, fresh), DenseCrf.Infer(b.Image, b.Probs, 4, cached));
    }

    [Fact]
    public void InferLabelsKeepsBackgroundAndImageClassesOnly()
    {
        // Left half scores class 7, right half class 12; class 3 scores highest everywhere but is not in the image.
        const int W = 24, H = 16, C = 21, N = W * H;
        var pixels = new byte[N * 3];
        var scores = new float[C * N];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                int p = y * W + x;
                pixels[3 * p] = (byte)(x < W / 2 ? 30 : 220);
                scores[p] = 0.1f;
                scores[3 * N + p] = 0.9f;
                scores[7 * N + p] = x < W / 2 ? 0.8f : 0.05f;
                scores[12 * N + p] = x < W / 2 ? 0.05f : 0.8f;
            }
        var mask = DenseCrf.InferLabels(new RgbImage(W, H, pixels), scores, C, new[] { 12, 7, 7 });
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                Assert.Equal(x < W / 2 ? 7 : 12, mask[y, x]);
    }

    [Fact]
    public void WrongShapeIsRejected()
    {
        var (image, probs) = Toy(8, 6, 3, seed: 1);
        var e = Assert.Throws<BadInputException>(() => DenseCrf.Infer(image, probs, 4));
        Assert.Contains("expected 4×6×8", e.Message);
        Assert.Contains("label count or the image size", e.Message);
        e = Assert.Throws<BadInputException>(() => DenseCrf.Infer(image, probs.AsSpan(1).ToArray(), 3));
        Assert.Contains("probabilities hold 143 values", e.Message);
    }

    [Fact]
    public void ImageAndProbabilitySizeMismatchIsRejected()
    {
        var (_, probs) = Toy(8, 6, 3, seed: 1);
        var (other, _) = Toy(6, 8 * 2, 3, seed: 1);
        var e = Assert.Throws<BadInputException>(() => DenseCrf.Infer(other, probs, 3));
        Assert.StartsWith("dense CRF: probabilities hold 144 values, expected 3×16×6", e.Message);
        var broken = new RgbImage(8, 6, new byte[10]);
        e = Assert.Throws<BadInputException>(() => DenseCrf.Infer(broken, probs, 3));
        Assert.Contains("needs 144 RGB bytes, got 10", e.Message);
    }

    [Fact]
    public void NaNIsRejectedWithItsPosition()
    {
        var (image, probs) = Toy(8, 6, 3, seed: 1);
        probs[2 * 48 + 3 * 8 + 5] = float.NaN;
        var e = Assert.Throws<BadInputException>(() => DenseCrf.Infer(image, probs, 3));
        Assert.Equal("dense CRF: probability of label 2 at pixel (x=5, y=3) is NaN", e.Message);
    }

    [Fact]
    public void ZeroLabelsAreRejected()
    {
        var (image, _) = Toy(8, 6, 3, seed: 1);
        var e = Assert.Throws<BadInputException>(() => DenseCrf.Infer(image, Array.Empty<float>(), 0));
        Assert.Contains("at least one label", e.Message);
        e = Assert.Throws<BadInputException>(() => DenseCrf.InferLabels(image, new float[21 * 48], 21, new[] { 21 }));
        Assert.Contains("class 21 is outside 1..20", e.Message);
    }

    [Fact]
    public void BadOptionsAreRejected()
    {
        var (image, probs) = Toy(8, 6, 3, seed: 1);
        Assert.Throws<BadInputException>(() => DenseCrf.Infer(image, probs, 3, new DenseCrfOptions { Iterations = -1 }));
        Assert.Throws<BadInputException>(() => DenseCrf.Infer(image, probs, 3, new DenseCrfOptions { BilateralSrgb = 0 }));
        Assert.Throws<BadInputException>(() => DenseCrf.Infer(image, probs, 3, new DenseCrfOptions { ProbabilityFloor = 0 }));
        Assert.Throws<BadInputException>(() => DenseCrf.Infer(image, probs, 3, new DenseCrfOptions { GaussianCompat = float.NaN }));
    }

    private static (RgbImage Image, float[] Probs) Toy(int w, int h, int labels, int seed)
    {
        var rng = new Random(seed);
        var pixels = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    pixels[(y * w + x) * 3 + c] = (byte)Math.Clamp((x * 7 + y * 3 * (c + 1)) % 256 + rng.Next(-5, 6), 0, 255);
        var probs = new float[labels * w * h];
        int n = w * h;
        for (int p = 0; p < n; p++)
        {
            float sum = 0;
            for (int l = 0; l < labels; l++) sum += probs[l * n + p] = rng.NextSingle() + 0.01f;
            for (int l = 0; l < labels; l++) probs[l * n + p] /= sum;
        }
        return (new RgbImage(w, h, pixels), probs);
    }
}
