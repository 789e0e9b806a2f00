using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EcsNet.Data;

namespace EcsNet.Labels.Propagation;

/// <summary>Options of the random-walk stage (docs/METHOD.md §4); defaults are PSA infer_aff.py's.</summary>
public sealed record RandomWalkOptions
{
    /// <summary>Affinities are raised to β before normalising, sharpening them (PSA <c>--beta 8</c>).</summary>
    public int Beta { get; init; } = 8;

    /// <summary>The walk takes t = 2^logt steps (PSA <c>--logt 8</c>, t = 256).</summary>
    public int LogT { get; init; } = 8;

    /// <summary>Pair radius on the stride-8 grid; must be the one AffinityNet was trained with (PSA 5).</summary>
    public int Radius { get; init; } = 5;

    /// <summary>Background channel (1 − max_c cam_c)^α before the walk (PSA infer_aff.py <c>--alpha 16</c>).</summary>
    public int Alpha { get; init; } = 16;

    /// <summary>Feature stride: the CAMs are mean-pooled by this to the grid and the walked scores upsampled back
    /// (PSA: <c>F.avg_pool2d(cam, 8, 8)</c> on the zero-padded CAM, bilinear upsampling).</summary>
    public int Stride { get; init; } = 8;

    /// <summary>Threads for the propagation steps; 0 uses every core. Changes speed only, never the result
    /// (each node's update is one thread's fixed-order sum).</summary>
    public int Threads { get; init; }

    public long Steps => 1L << LogT;

    public void Validate()
    {
        if (Beta < 1 || LogT < 0 || LogT > 20 || Radius < 2 || Alpha < 1 || Stride < 1 || Threads < 0)
            throw new BadInputException("random walk options",
                $"beta {Beta}, logt {LogT}, radius {Radius}, alpha {Alpha}, stride {Stride}, threads {Threads}: " +
                "need beta ≥ 1, 0 ≤ logt ≤ 20, radius ≥ 2, alpha ≥ 1, stride ≥ 1, threads ≥ 0");
    }
}

/// <summary>What the walk produced for one image: the label map at image size and the walked grid scores
/// <c>[21][GridHeight][GridWidth]</c> (channel 0 background, channel c VOC class c).</summary>
public sealed record RandomWalkResult(LabelMask Labels, float[] GridScores, int GridHeight, int GridWidth);

/// <summary>
/// The random walk of PSA (Ahn &amp; Kwak 2018, §3.3; infer_aff.py) without its dense matrices.
/// <para>
/// PSA builds the dense N×N affinity matrix A (pairs of <see cref="AffinityPairs"/> both ways, A_ii = 1), raises it
/// to β elementwise, forms T = A / colsum(A) and squares T logt times, then computes cam · T^t. Because A is
/// symmetric, colsum(A) = rowsum(A) = d and T = (D⁻¹A)ᵀ = Pᵀ with P the row-normalised transition matrix, so
/// cam · T^t = (P^t · camᵀ)ᵀ: each of the t steps replaces a node's score vector by the P-weighted average of
/// its own and its ≤ 68 neighbours' (x ← P x, "gather" form, rows of P summing to 1).
/// </para>
/// <para>
/// On the grid P is a fixed stencil: node i talks to i + δ_s for 2·K + 1 flat offsets δ_s (self, K half-plane
/// offsets, their mirrors), so P is stored as weights <c>[N][2K+1]</c> (zero where PSA has no pair) and a step
/// is a vectorised, row-parallel stencil over the node-major score matrix <c>[N][channels]</c>. The 256 steps
/// cost 256 · N · (2K+1) · channels multiply-adds (≈ 1.3·10⁹ at PSA's size) instead of 8 dense N³ products
/// (≈ 2.5·10¹¹), and memory stays O(N·K) instead of several N² matrices.
/// </para>
/// </summary>
public static class RandomWalk
{
    /// <summary>
    /// Runs the stage for one image: background channel, pooling to the grid, t steps on the features' graph,
    /// bilinear upsampling, argmax.
    /// </summary>
    /// <param name="features">AffinityNet features <c>[C][gridH][gridW]</c> of the image padded to a multiple of
    /// the stride (PSA pads with zeros on the bottom/right).</param>
    /// <param name="cams">Normalised CAMs <c>[20][H][W]</c> at image size (channel c is VOC class c+1).</param>
    /// <param name="classes">The image's VOC classes (1..20); other CAM channels are treated as zero.</param>
    public static RandomWalkResult Run(float[] features, int channels, int gridHeight, int gridWidth,
        float[] cams, IReadOnlyList<int> classes, int height, int width, RandomWalkOptions options)
    {
        options.Validate();
        int gh = (height + options.Stride - 1) / options.Stride, gw = (width + options.Stride - 1) / options.Stride;
        if (gh != gridHeight || gw != gridWidth)
            throw new BadInputException("random walk features",
                $"grid {gridHeight}x{gridWidth} does not match the {height}x{width} image at stride {options.Stride} ({gh}x{gw})");
        var scores = BackgroundAndCams(cams, classes, height, width, options.Alpha);
        var grid = AffinityLabels.BlockMean(scores, VocClasses.Count, height, width, options.Stride);
        var transition = RandomWalkTransition.FromFeatures(features, channels, gridHeight, gridWidth, options);
        var walked = transition.Propagate(grid, VocClasses.Count, options.Steps, options.Threads);
        var labels = UpsampleArgmax(walked, VocClasses.Count, gridHeight, gridWidth, options.Stride, height, width);
        return new RandomWalkResult(labels, walked, gridHeight, gridWidth);
    }

    /// <summary>
    /// <c>[21][H][W]</c>: channel c (1..20) the CAM of class c if the image has it, else 0; channel 0 =
    /// (1 − max_c cam_c)^α (PSA infer_aff.py <c>cam_full_arr</c>).
    /// </summary>
    public static float[] BackgroundAndCams(float[] cams, IReadOnlyList<int> classes, int height, int width, int alpha)
    {
        int n = height * width;
        if (cams.Length != VocClasses.Foreground * n)
            throw new BadInputException("CAM stack",
                $"has {cams.Length} values, expected {VocClasses.Foreground} classes x {height}x{width} = {VocClasses.Foreground * n}");
        var full = new float[VocClasses.Count * n];
        foreach (var c in classes)
        {
            if (c < 1 || c > VocClasses.Foreground)
                throw new BadInputException("image classes", $"class {c} is not a VOC foreground class (1..20)");
            Array.Copy(cams, (c - 1) * n, full, c * n, n);
        }
        for (int p = 0; p < n; p++)
        {
            float m = 0f;
            for (int c = 1; c < VocClasses.Count; c++)
                m = MathF.Max(m, full[c * n + p]);
            full[p] = MathF.Pow(1f - m, alpha);
        }
        return full;
    }

    /// <summary>
    /// Bilinear upsampling of grid scores by the stride (PyTorch <c>align_corners=False</c>: source coordinate
    /// (dst + ½)/s − ½, clamped at 0), cropped to H×W, argmax over channels (first maximum wins).
    /// </summary>
    public static LabelMask UpsampleArgmax(float[] grid, int channels, int gridHeight, int gridWidth, int stride, int height, int width)
    {
        var y0 = new int[height]; var y1 = new int[height]; var fy = new float[height];
        var x0 = new int[width]; var x1 = new int[width]; var fx = new float[width];
        SourceTaps(height, gridHeight, stride, y0, y1, fy);
        SourceTaps(width, gridWidth, stride, x0, x1, fx);
        int g = gridHeight * gridWidth;
        var labels = new byte[height * width];
        Parallel.For(0, height, y =>
        {
            for (int x = 0; x < width; x++)
            {
                float best = float.NegativeInfinity;
                int arg = 0;
                for (int c = 0; c < channels; c++)
                {
                    int b = c * g;
                    float top = (1 - fx[x]) * grid[b + y0[y] * gridWidth + x0[x]] + fx[x] * grid[b + y0[y] * gridWidth + x1[x]];
                    float bottom = (1 - fx[x]) * grid[b + y1[y] * gridWidth + x0[x]] + fx[x] * grid[b + y1[y] * gridWidth + x1[x]];
                    float v = (1 - fy[y]) * top + fy[y] * bottom;
                    if (v > best) { best = v; arg = c; }
                }
                labels[y * width + x] = (byte)arg;
            }
        });
        return new LabelMask(width, height, labels);
    }

    private static void SourceTaps(int outCount, int inCount, int stride, int[] i0, int[] i1, float[] frac)
    {
        // PyTorch's scale for an explicit output size is in/out; the padded output is in·stride.
        float scale = (float)inCount / (inCount * stride);
        for (int d = 0; d < outCount; d++)
        {
            float src = MathF.Max((d + 0.5f) * scale - 0.5f, 0f);
            int lo = Math.Min((int)src, inCount - 1);
            i0[d] = lo;
            i1[d] = lo < inCount - 1 ? lo + 1 : lo;
            frac[d] = src - lo;
        }
    }
}

/// <summary>
/// The row-normalised transition matrix P = D⁻¹A^β of the random walk as a grid stencil: weights
/// <c>[N][2K+1]</c> for the flat offsets <see cref="Deltas"/> (self, the K half-plane offsets, their mirrors).
/// A weight is zero where PSA's pair set has no edge, so the stencil is exactly PSA's matrix.
/// </summary>
public sealed class RandomWalkTransition
{
    private RandomWalkTransition(int height, int width, int[] deltas, float[] weights)
    {
        Height = height;
        Width = width;
        Deltas = deltas;
        Weights = weights;
    }

    public int Height { get; }
    public int Width { get; }
    public int NodeCount => Height * Width;

    /// <summary>Flat index offsets of the stencil, length 2K+1; <c>Deltas[0] = 0</c> (self).</summary>
    public int[] Deltas { get; }

    /// <summary>P[i, i + Deltas[s]] at <c>Weights[i·(2K+1) + s]</c>; each row sums to 1.</summary>
    public float[] Weights { get; }

    public int StencilSize => Deltas.Length;

    /// <summary>
    /// P from AffinityNet features <c>[C][H][W]</c> (channel-major, as a tensor's memory): a_ij =
    /// exp(−mean_c |f_ci − f_cj|) on PSA's pairs, then a^β, A_ii = 1, rows normalised.
    /// </summary>
    public static RandomWalkTransition FromFeatures(float[] features, int channels, int height, int width, RandomWalkOptions options)
    {
        options.Validate();
        int n = height * width;
        if (channels < 1 || features.Length != (long)channels * n)
            throw new BadInputException("random walk features",
                $"have {features.Length} values, expected {channels} channels x {height}x{width} = {(long)channels * n}");
        var pairs = AffinityPairs.Create(options.Radius, height, width);
        var aff = PairAffinities(features, channels, pairs, options.Threads);
        return FromPairAffinities(aff, pairs, options.Beta);
    }

    /// <summary>
    /// P from pair affinities a in <see cref="AffinityPairs"/> layout <c>[K][FromCount]</c> (AffinityNet's
    /// <c>AffinityNet.PairAffinities</c> for one image): A = a^β both ways,
    /// A_ii = 1, rows normalised.
    /// </summary>
    public static RandomWalkTransition FromPairAffinities(float[] affinities, AffinityPairs pairs, int beta)
    {
        if (affinities.Length != pairs.PairCount)
            throw new BadInputException("pair affinities",
                $"have {affinities.Length} values, the {pairs.Height}x{pairs.Width} grid at radius {pairs.Radius} has {pairs.PairCount} pairs");
        int k = pairs.Offsets.Count, s = 2 * k + 1, n = pairs.Height * pairs.Width, f = pairs.FromCount;
        var deltas = new int[s];
        for (int o = 0; o < k; o++)
        {
            deltas[1 + o] = pairs.Offsets[o].Dy * pairs.Width + pairs.Offsets[o].Dx;
            deltas[1 + k + o] = -deltas[1 + o];
        }
        var w = new float[n * s];
        for (int i = 0; i < n; i++)
            w[i * s] = 1f; // A_ii = 1 (and 1^β = 1)
        for (int o = 0; o < k; o++)
            for (int j = 0; j < f; j++)
            {
                float a = affinities[o * f + j];
                if (!float.IsFinite(a) || a < 0)
                    throw new BadInputException("pair affinities", $"pair {o * f + j} has affinity {a}; affinities must be finite and ≥ 0");
                float ab = PowInt(a, beta);
                int from = pairs.From[j], to = from + deltas[1 + o];
                w[from * s + 1 + o] = ab;      // A[from, to]
                w[to * s + 1 + k + o] = ab;    // A[to, from]: seen from `to` the offset is mirrored
            }
        for (int i = 0; i < n; i++)
        {
            // d_i ≥ 1 (the self weight), so no division by zero even for PSA's isolated corner nodes.
            float d = 0f;
            for (int q = 0; q < s; q++)
                d += w[i * s + q];
            float inv = 1f / d;
            for (int q = 0; q < s; q++)
                w[i * s + q] *= inv;
        }
        return new RandomWalkTransition(pairs.Height, pairs.Width, deltas, w);
    }

    /// <summary>
    /// exp(−mean_c |f_ci − f_cj|) for every pair, <c>[K][FromCount]</c>: the features are transposed to node-major
    /// rows once, then each pair is one vectorised L1 distance.
    /// </summary>
    public static float[] PairAffinities(float[] features, int channels, AffinityPairs pairs, int threads = 0)
    {
        int n = pairs.Height * pairs.Width;
        var rows = new float[(long)n * channels];
        // transpose in bands of 16 channels: 16 sequential read streams, one cache line written per node
        for (int cb = 0; cb < channels; cb += 16)
        {
            int ce = Math.Min(cb + 16, channels);
            for (int i = 0; i < n; i++)
                for (int c = cb; c < ce; c++)
                    rows[(long)i * channels + c] = features[(long)c * n + i];
        }
        int k = pairs.Offsets.Count, f = pairs.FromCount;
        var aff = new float[k * f];
        Parallel.For(0, k, Parallelism(threads), o =>
        {
            for (int j = 0; j < f; j++)
            {
                int p = o * f + j, from = pairs.From[j], to = pairs.To[p];
                var a = new ReadOnlySpan<float>(rows, from * channels, channels);
                var b = new ReadOnlySpan<float>(rows, to * channels, channels);
                aff[p] = MathF.Exp(-(L1(a, b) / channels));
            }
        });
        return aff;
    }

    /// <summary>
    /// t steps x ← P x of channel-major scores <c>[channels][N]</c>; returns <c>[channels][N]</c>. Equals
    /// (P^t · x) and hence PSA's cam · T^t.
    /// </summary>
    public float[] Propagate(float[] scores, int channels, long steps, int threads = 0)
    {
        int n = NodeCount;
        if (channels < 1 || scores.Length != (long)channels * n)
            throw new BadInputException("random walk scores",
                $"have {scores.Length} values, expected {channels} channels x {Height}x{Width} = {(long)channels * n}");
        int lanes = Vector<float>.Count;
        int stride = (channels + lanes - 1) / lanes * lanes;   // node-major row, padded to whole vectors
        int pad = Deltas.Max(Math.Abs);                        // zero rows before/after so no bounds checks
        var a = new float[(n + 2 * pad) * stride];
        var b = new float[a.Length];
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < n; i++)
                a[(i + pad) * stride + c] = scores[(long)c * n + i];

        var scaled = new int[Deltas.Length];
        for (int q = 0; q < Deltas.Length; q++)
            scaled[q] = Deltas[q] * stride;
        int workers = threads > 0 ? threads : Environment.ProcessorCount;
        // a few chunks per worker, so that a thread delayed by other load does not hold up the whole step
        int chunks = workers == 1 ? 1 : Math.Max(1, Math.Min(workers * 4, n / 256));
        var po = Parallelism(threads);
        for (long t = 0; t < steps; t++)
        {
            var src = a;
            var dst = b;
            if (chunks == 1)
                StepRows(src, dst, 0, n, pad, stride, scaled);
            else
                Parallel.For(0, chunks, po, ch =>
                    StepRows(src, dst, (int)((long)n * ch / chunks), (int)((long)n * (ch + 1) / chunks), pad, stride, scaled));
            (a, b) = (b, a);
        }

        var result = new float[(long)channels * n];
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < n; i++)
                result[(long)c * n + i] = a[(i + pad) * stride + c];
        return result;
    }

    /// <summary>Rows [lo, hi) of one step. Weights of a row are read once and broadcast; scores are whole vectors.
    /// Each node sums its stencil in a fixed order, so results do not depend on the thread count.</summary>
    private void StepRows(float[] src, float[] dst, int lo, int hi, int pad, int stride, int[] scaled)
    {
        int s = scaled.Length, lanes = Vector<float>.Count, nv = stride / lanes;
        ref float w0 = ref MemoryMarshal.GetArrayDataReference(Weights);
        ref float x0 = ref MemoryMarshal.GetArrayDataReference(src);
        ref float y0 = ref MemoryMarshal.GetArrayDataReference(dst);
        ref int d0 = ref MemoryMarshal.GetArrayDataReference(scaled);
        for (int i = lo; i < hi; i++)
        {
            nuint wb = (nuint)(i * s);
            int xb = (i + pad) * stride;
            if (nv == 3 && i + 1 < hi)
            {
                // Two nodes at once: six independent FMA chains hide the FMA latency; each node still sums its
                // stencil in the same order as the one-node path, so results do not depend on the pairing.
                Vector<float> a0 = default, a1 = default, a2 = default, b0 = default, b1 = default, b2 = default;
                nuint wb2 = wb + (nuint)s;
                for (int q = 0; q < s; q++)
                {
                    var wa = new Vector<float>(Unsafe.Add(ref w0, wb + (nuint)q));
                    var wv = new Vector<float>(Unsafe.Add(ref w0, wb2 + (nuint)q));
                    nuint at = (nuint)(xb + Unsafe.Add(ref d0, q));
                    nuint bt = at + (nuint)stride;
                    a0 = Vector.FusedMultiplyAdd(wa, Vector.LoadUnsafe(ref x0, at), a0);
                    a1 = Vector.FusedMultiplyAdd(wa, Vector.LoadUnsafe(ref x0, at + (nuint)lanes), a1);
                    a2 = Vector.FusedMultiplyAdd(wa, Vector.LoadUnsafe(ref x0, at + (nuint)(2 * lanes)), a2);
                    b0 = Vector.FusedMultiplyAdd(wv, Vector.LoadUnsafe(ref x0, bt), b0);
                    b1 = Vector.FusedMultiplyAdd(wv, Vector.LoadUnsafe(ref x0, bt + (nuint)lanes), b1);
                    b2 = Vector.FusedMultiplyAdd(wv, Vector.LoadUnsafe(ref x0, bt + (nuint)(2 * lanes)), b2);
                }
                a0.StoreUnsafe(ref y0, (nuint)xb);
                a1.StoreUnsafe(ref y0, (nuint)(xb + lanes));
                a2.StoreUnsafe(ref y0, (nuint)(xb + 2 * lanes));
                b0.StoreUnsafe(ref y0, (nuint)(xb + stride));
                b1.StoreUnsafe(ref y0, (nuint)(xb + stride + lanes));
                b2.StoreUnsafe(ref y0, (nuint)(xb + stride + 2 * lanes));
                i++;
            }
            else if (nv == 3)
            {
                Vector<float> acc0 = default, acc1 = default, acc2 = default;
                for (int q = 0; q < s; q++)
                {
                    var wv = new Vector<float>(Unsafe.Add(ref w0, wb + (nuint)q));
                    nuint at = (nuint)(xb + Unsafe.Add(ref d0, q));
                    acc0 = Vector.FusedMultiplyAdd(wv, Vector.LoadUnsafe(ref x0, at), acc0);
                    acc1 = Vector.FusedMultiplyAdd(wv, Vector.LoadUnsafe(ref x0, at + (nuint)lanes), acc1);
                    acc2 = Vector.FusedMultiplyAdd(wv, Vector.LoadUnsafe(ref x0, at + (nuint)(2 * lanes)), acc2);
                }
                acc0.StoreUnsafe(ref y0, (nuint)xb);
                acc1.StoreUnsafe(ref y0, (nuint)(xb + lanes));
                acc2.StoreUnsafe(ref y0, (nuint)(xb + 2 * lanes));
            }
            else if (nv == 2)
            {
                Vector<float> acc0 = default, acc1 = default;
                for (int q = 0; q < s; q++)
                {
                    var wv = new Vector<float>(Unsafe.Add(ref w0, wb + (nuint)q));
                    nuint at = (nuint)(xb + Unsafe.Add(ref d0, q));
                    acc0 = Vector.FusedMultiplyAdd(wv, Vector.LoadUnsafe(ref x0, at), acc0);
                    acc1 = Vector.FusedMultiplyAdd(wv, Vector.LoadUnsafe(ref x0, at + (nuint)lanes), acc1);
                }
                acc0.StoreUnsafe(ref y0, (nuint)xb);
                acc1.StoreUnsafe(ref y0, (nuint)(xb + lanes));
            }
            else
            {
                for (int v = 0; v < nv; v++)
                {
                    Vector<float> acc = default;
                    for (int q = 0; q < s; q++)
                    {
                        var wv = new Vector<float>(Unsafe.Add(ref w0, wb + (nuint)q));
                        acc = Vector.FusedMultiplyAdd(wv, Vector.LoadUnsafe(ref x0, (nuint)(xb + Unsafe.Add(ref d0, q) + v * lanes)), acc);
                    }
                    acc.StoreUnsafe(ref y0, (nuint)(xb + v * lanes));
                }
            }
        }
    }

    /// <summary>Σ|a − b| with four independent vector sums (one chain would wait on each add's latency).</summary>
    private static float L1(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int lanes = Vector<float>.Count, len = a.Length, c = 0;
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        Vector<float> s0 = default, s1 = default, s2 = default, s3 = default;
        for (; c <= len - 4 * lanes; c += 4 * lanes)
        {
            nuint i = (nuint)c;
            s0 += Vector.Abs(Vector.LoadUnsafe(ref pa, i) - Vector.LoadUnsafe(ref pb, i));
            s1 += Vector.Abs(Vector.LoadUnsafe(ref pa, i + (nuint)lanes) - Vector.LoadUnsafe(ref pb, i + (nuint)lanes));
            s2 += Vector.Abs(Vector.LoadUnsafe(ref pa, i + (nuint)(2 * lanes)) - Vector.LoadUnsafe(ref pb, i + (nuint)(2 * lanes)));
            s3 += Vector.Abs(Vector.LoadUnsafe(ref pa, i + (nuint)(3 * lanes)) - Vector.LoadUnsafe(ref pb, i + (nuint)(3 * lanes)));
        }
        for (; c <= len - lanes; c += lanes)
            s0 += Vector.Abs(Vector.LoadUnsafe(ref pa, (nuint)c) - Vector.LoadUnsafe(ref pb, (nuint)c));
        float sum = Vector.Sum((s0 + s1) + (s2 + s3));
        for (; c < len; c++)
            sum += MathF.Abs(a[c] - b[c]);
        return sum;
    }

    private static float PowInt(float a, int beta)
    {
        // a^β by squaring (exact same float as repeated multiplication for β = 8: ((a²)²)²).
        float result = 1f, x = a;
        for (int e = beta; e > 0; e >>= 1)
        {
            if ((e & 1) != 0)
                result *= x;
            x *= x;
        }
        return result;
    }

    private static ParallelOptions Parallelism(int threads) =>
        new() { MaxDegreeOfParallelism = threads > 0 ? threads : -1 };
}
