using EcsNet.Data;
using EcsNet.Labels.Crf;

namespace EcsNet.Labels.Tests.Crf;

/// <summary>The lattice filter against the exact O(N²) Gaussian filter it approximates.</summary>
public class PermutohedralLatticeTests
{
    private const int W = 14, H = 11, N = W * H;

    /// <summary>
    /// Bound on ‖lattice − exact‖₂ / ‖exact‖₂ for the normalised filter K·v / K·1 (the form the CRF uses: the
    /// symmetric normalisation cancels the lattice's d-dependent overall gain). Why 1.2 %: the lattice replaces
    /// the Gaussian by linear splat/slice interpolation and a [½ 1 ½] blur per axis on a grid whose spacing is
    /// about one standard deviation, so errors of order 1 % are expected on smooth data (Adams et al. 2010;
    /// measured here: 0.99 % for d = 2, 0.64 % for d = 5). The bound is also tight enough to matter: the exact
    /// filter with a standard deviation 30 % too small or twice too large differs from the lattice by at least
    /// 1.9 times the bound in both dimensions (checked below), so a scaling mistake cannot pass.
    /// </summary>
    private const double Bound = 0.012;

    [Theory]
    [InlineData(2)]
    [InlineData(5)]
    public void NormalisedLatticeFilterMatchesExactGaussian(int d)
    {
        var features = Features(d);
        var lattice = PermutohedralLattice.Build(features, N, d);
        var rng = new Random(3);
        var v = Enumerable.Range(0, N).Select(_ => rng.NextSingle()).ToArray();
        var kv = new float[N];
        var k1 = new float[N];
        lattice.Filter(v, kv, 1);
        lattice.Filter(Enumerable.Repeat(1f, N).ToArray(), k1, 1);
        var latticeOut = kv.Zip(k1, (a, b) => (double)a / b).ToArray();

        double atUnit = RelativeError(latticeOut, ExactNormalised(features, d, v, 1.0));
        double tooNarrow = RelativeError(latticeOut, ExactNormalised(features, d, v, 0.7));
        double tooWide = RelativeError(latticeOut, ExactNormalised(features, d, v, 2.0));
        Assert.True(atUnit < Bound, $"σ = 1: {atUnit}");
        Assert.True(tooNarrow > Bound, $"σ = 0.7: {tooNarrow}");
        Assert.True(tooWide > Bound, $"σ = 2: {tooWide}");
        Assert.True(lattice.VertexCount > 1 && lattice.VertexCount <= N * (d + 1));
    }

    [Fact]
    public void FilterIsLinearAndFiltersEveryChannelAlike()
    {
        var features = Features(5);
        var lattice = PermutohedralLattice.Build(features, N, 5);
        var rng = new Random(9);
        var a = Enumerable.Range(0, N).Select(_ => rng.NextSingle()).ToArray();
        var b = Enumerable.Range(0, N).Select(_ => rng.NextSingle()).ToArray();
        var two = new float[N * 2];
        for (int i = 0; i < N; i++) { two[2 * i] = a[i]; two[2 * i + 1] = 2 * a[i] + 3 * b[i]; }
        var fa = new float[N];
        var fb = new float[N];
        var f2 = new float[N * 2];
        lattice.Filter(a, fa, 1);
        lattice.Filter(b, fb, 1);
        lattice.Filter(two, f2, 2);
        for (int i = 0; i < N; i++)
        {
            Assert.Equal(fa[i], f2[2 * i], 1e-5 * Math.Abs(fa[i]));
            Assert.Equal(2 * fa[i] + 3 * fb[i], f2[2 * i + 1], 1e-5 * Math.Abs(f2[2 * i + 1]));
        }
    }

    [Fact]
    public void ParallelBuildFiltersExactlyLikeSequentialBuild()
    {
        // Large enough to be split into two parts hashed separately and merged.
        const int w = 220, h = 160, n = w * h, d = 5;
        var rng = new Random(5);
        var f = new float[n * d];
        for (int p = 0; p < n; p++)
        {
            f[p * d] = p % w / 20f;
            f[p * d + 1] = p / w / 20f;
            for (int c = 2; c < d; c++) f[p * d + c] = (p % w < w / 2 ? 3f : 7f) + rng.NextSingle() * 0.8f;
        }
        var sequential = PermutohedralLattice.Build(f, n, d);
        var parallel = PermutohedralLattice.Build(f, n, d, parallel: true);
        Assert.Equal(sequential.VertexCount, parallel.VertexCount);
        var v = Enumerable.Range(0, n * 2).Select(_ => rng.NextSingle()).ToArray();
        var a = new float[n * 2];
        var b = new float[n * 2];
        sequential.Filter(v, a, 2);
        parallel.Filter(v, b, 2);
        Assert.Equal(a, b);
    }

    [Fact]
    public void BadShapesAreRejected()
    {
        var e = Assert.Throws<BadInputException>(() => PermutohedralLattice.Build(new float[10], 4, 2));
        Assert.Contains("expected 4×2", e.Message);
        Assert.Throws<BadInputException>(() => PermutohedralLattice.Build(new float[9], 1, 9));
        e = Assert.Throws<BadInputException>(() => PermutohedralLattice.Build(new[] { 0f, 0f, 1e6f, 0f }, 2, 2));
        Assert.Contains("too large for the lattice (point 1)", e.Message);
        var lattice = PermutohedralLattice.Build(new float[8], 4, 2);
        Assert.Throws<BadInputException>(() => lattice.Filter(new float[3], new float[3], 1));
    }

    [Fact]
    public void NormalisationShortcutEqualsFilteringOnes()
    {
        var lattice = PermutohedralLattice.Build(Features(5), N, 5);
        var expected = new float[N];
        lattice.Filter(Enumerable.Repeat(1f, N).ToArray(), expected, 1);
        Assert.Equal(expected, lattice.FilterOnes());
    }

    /// <summary>Positions over σ_xy and, for d = 5, an image of colour blocks over σ_rgb, as the CRF's kernels build them.</summary>
    private static float[] Features(int d)
    {
        float sxy = d == 2 ? 1.5f : 4f, srgb = 40f;
        var f = new float[N * d];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                int p = y * W + x;
                f[p * d] = x / sxy;
                f[p * d + 1] = y / sxy;
                if (d == 5)
                {
                    f[p * d + 2] = (x < 7 ? 200 : 40) / srgb;
                    f[p * d + 3] = (y < 5 ? 180 : 60) / srgb;
                    f[p * d + 4] = (100 + 30 * MathF.Sin(x * 0.7f)) / srgb;
                }
            }
        return f;
    }

    private static double[] ExactNormalised(float[] f, int d, float[] v, double sigma)
    {
        var result = new double[N];
        for (int i = 0; i < N; i++)
        {
            double kv = 0, k1 = 0;
            for (int j = 0; j < N; j++)
            {
                double d2 = 0;
                for (int k = 0; k < d; k++)
                {
                    double t = f[i * d + k] - f[j * d + k];
                    d2 += t * t;
                }
                double w = Math.Exp(-0.5 * d2 / (sigma * sigma));
                kv += w * v[j];
                k1 += w;
            }
            result[i] = kv / k1;
        }
        return result;
    }

    private static double RelativeError(double[] a, double[] exact)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            num += (a[i] - exact[i]) * (a[i] - exact[i]);
            den += exact[i] * exact[i];
        }
        return Math.Sqrt(num / den);
    }
}
