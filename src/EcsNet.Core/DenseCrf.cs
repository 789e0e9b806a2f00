using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using EcsNet.Data;

namespace EcsNet.Core;

/// <summary>
/// Hyperparameters of the dense CRF (SPEC §3). Defaults are PSA's <c>crf_inference</c>
/// (jiwoon-ahn/psa tool/imutils.py, scale_factor 1): pydensecrf's <c>unary_from_softmax</c> (clip 1e-5),
/// <c>addPairwiseGaussian(sxy=3, compat=3)</c>, <c>addPairwiseBilateral(sxy=80, srgb=13, compat=10)</c>, each with
/// densecrf's defaults DIAG_KERNEL and NORMALIZE_SYMMETRIC and a Potts compatibility, then <c>inference(10)</c>.
/// </summary>
public sealed record DenseCrfOptions
{
    /// <summary>Mean-field iterations (PSA: t = 10).</summary>
    public int Iterations { get; init; } = 10;

    /// <summary>Spatial standard deviation of the appearance-free smoothness kernel, in pixels (PSA: 3).</summary>
    public float GaussianSxy { get; init; } = 3f;

    /// <summary>Potts weight of the smoothness kernel (PSA: compat 3).</summary>
    public float GaussianCompat { get; init; } = 3f;

    /// <summary>Spatial standard deviation of the bilateral (appearance) kernel, in pixels (PSA: 80).</summary>
    public float BilateralSxy { get; init; } = 80f;

    /// <summary>Colour standard deviation of the bilateral kernel, in 0..255 RGB units (PSA: 13).</summary>
    public float BilateralSrgb { get; init; } = 13f;

    /// <summary>Potts weight of the bilateral kernel (PSA: compat 10).</summary>
    public float BilateralCompat { get; init; } = 10f;

    /// <summary>Probabilities are clipped to [floor, 1] before the unary −log p (pydensecrf unary_from_softmax: 1e-5).</summary>
    public float ProbabilityFloor { get; init; } = 1e-5f;

    /// <summary>Threads for one image (and images at once in a batch). Not a model parameter: results do not depend on it.</summary>
    public int MaxDegreeOfParallelism { get; init; } = Environment.ProcessorCount;

    internal void Validate()
    {
        static void Positive(float v, string name)
        {
            if (!(v > 0) || float.IsInfinity(v))
                throw new BadInputException("dense CRF options", $"{name} must be a positive finite number, got {v}");
        }
        if (Iterations < 0)
            throw new BadInputException("dense CRF options", $"iterations must be ≥ 0, got {Iterations}");
        Positive(GaussianSxy, "gaussian sxy");
        Positive(BilateralSxy, "bilateral sxy");
        Positive(BilateralSrgb, "bilateral srgb");
        if (!float.IsFinite(GaussianCompat) || !float.IsFinite(BilateralCompat))
            throw new BadInputException("dense CRF options", "compatibility weights must be finite");
        if (!(ProbabilityFloor > 0) || ProbabilityFloor >= 1)
            throw new BadInputException("dense CRF options", $"probability floor must lie in (0, 1), got {ProbabilityFloor}");
        if (MaxDegreeOfParallelism < 1)
            throw new BadInputException("dense CRF options", $"degree of parallelism must be ≥ 1, got {MaxDegreeOfParallelism}");
    }
}

/// <summary>One image and its per-label probabilities [labels][H][W] for <see cref="DenseCrf.InferBatch"/>.</summary>
public sealed record DenseCrfInput(RgbImage Image, float[] Probabilities, int Labels);

/// <summary>
/// Fully connected CRF with Gaussian edge potentials (Krähenbühl &amp; Koltun 2011, SPEC §3), managed and
/// vectorised. The energy is E(x) = Σ_i −log p_i(x_i) + Σ_{i&lt;j} μ(x_i, x_j) Σ_k w_k k_k(f_i, f_j) with a Potts μ,
/// a smoothness kernel on positions and an appearance kernel on positions and RGB. Mean-field inference:
/// Q ← softmax(log p + Σ_k w_k · n_k ⊙ K_k(n_k ⊙ Q)), where K_k is the kernel's permutohedral-lattice filter
/// and n_k = (K_k 1)^-½ its symmetric normalisation — the computation densecrf performs with DIAG_KERNEL,
/// NORMALIZE_SYMMETRIC and PottsCompatibility, so outputs agree with pydensecrf to float precision.
/// </summary>
/// <remarks>
/// An instance holds the per-image part (both lattices, built once: "setup"); <see cref="Infer(ReadOnlySpan{float}, int)"/>
/// runs the label-dependent part and may be called many times (e.g. PSA's low- and high-α maps of one image) and
/// from several threads. Values live as [pixel][labels padded to a SIMD block]; splatting is a gather over the
/// transposed splat matrix, so every phase is a race-free parallel loop.
/// </remarks>
public sealed class DenseCrf
{
    private readonly Kernel[] _kernels;

    /// <summary>Builds the pairwise structure for one image: the two permutohedral lattices and their normalisation.</summary>
    public DenseCrf(RgbImage image, DenseCrfOptions? options = null)
    {
        Options = options ?? new DenseCrfOptions();
        Options.Validate();
        CheckImage(image);
        Width = image.Width;
        Height = image.Height;
        int n = Width * Height;

        var kernels = new List<Func<Kernel>>();
        if (Options.GaussianCompat != 0)
            kernels.Add(() => Kernel.Create(SmoothnessFeatures(Width, Height, Options.GaussianSxy), n, 2, Options.GaussianCompat, false));
        if (Options.BilateralCompat != 0)
            kernels.Add(() => Kernel.Create(AppearanceFeatures(image, Options.BilateralSxy, Options.BilateralSrgb), n, 5, Options.BilateralCompat, false));
        _kernels = new Kernel[kernels.Count];
        if (Options.MaxDegreeOfParallelism > 1 && kernels.Count > 1)
            Parallel.For(0, kernels.Count, new ParallelOptions { MaxDegreeOfParallelism = Options.MaxDegreeOfParallelism }, k => _kernels[k] = kernels[k]());
        else
            for (int k = 0; k < kernels.Count; k++) _kernels[k] = kernels[k]();
    }

    public int Width { get; }

    public int Height { get; }

    public DenseCrfOptions Options { get; }

    /// <summary>Lattice vertex counts of the kernels (smoothness, appearance), for diagnostics and benchmarks.</summary>
    public IReadOnlyList<int> LatticeSizes => _kernels.Select(k => k.Lattice.VertexCount).ToArray();

    /// <summary>
    /// Mean-field marginals Q, laid out [labels][H][W], for probabilities <paramref name="probs"/> laid out
    /// [labels][H][W]. Probabilities are used as given (not renormalised), clipped to [floor, 1].
    /// </summary>
    public static float[] Infer(RgbImage image, ReadOnlySpan<float> probs, int labels, DenseCrfOptions? options = null)
    {
        CheckProbabilities(image, probs, labels, "dense CRF");
        return new DenseCrf(image, options).Infer(probs, labels);
    }

    /// <summary>
    /// Labels after the CRF restricted to background and the image's classes, PSA style: from a full score map
    /// [channels][H][W] (channel 0 background, channel c class c) keep channel 0 and the present classes, run the
    /// CRF on those (not renormalised) and take the arg-max, mapped back to class indices.
    /// </summary>
    public static LabelMask InferLabels(RgbImage image, ReadOnlySpan<float> scores, int channels, IEnumerable<int> presentClasses, DenseCrfOptions? options = null)
    {
        CheckImage(image);
        int n = image.Width * image.Height;
        if (channels < 1)
            throw new BadInputException("dense CRF", $"score map needs at least the background channel, got {channels} channels");
        if (scores.Length != (long)channels * n)
            throw new BadInputException("dense CRF", $"score map holds {scores.Length} values, expected {channels}×{image.Height}×{image.Width} = {(long)channels * n}");
        var keep = new List<int> { 0 };
        foreach (int c in presentClasses.Distinct().Order())
        {
            if (c < 1 || c >= channels)
                throw new BadInputException("dense CRF", $"image class {c} is outside 1..{channels - 1}");
            keep.Add(c);
        }
        var sub = new float[keep.Count * n];
        for (int i = 0; i < keep.Count; i++)
            scores.Slice(keep[i] * n, n).CopyTo(sub.AsSpan(i * n, n));
        var q = Infer(image, sub, keep.Count, options);
        return ArgMax(q, keep, image.Width, image.Height);
    }

    /// <summary>
    /// Runs many images, several at once (each image on one thread, up to the options' degree of parallelism);
    /// returns each image's Q [labels][H][W] in input order.
    /// </summary>
    public static float[][] InferBatch(IReadOnlyList<DenseCrfInput> inputs, DenseCrfOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new DenseCrfOptions();
        options.Validate();
        for (int i = 0; i < inputs.Count; i++)
        {
            var input = inputs[i] ?? throw new BadInputException($"dense CRF batch item {i}", "is null");
            CheckProbabilities(input.Image, input.Probabilities, input.Labels, $"dense CRF batch item {i}");
        }
        var single = options with { MaxDegreeOfParallelism = 1 };
        var results = new float[inputs.Count][];
        Parallel.For(0, inputs.Count, new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism, CancellationToken = cancellationToken }, i =>
        {
            var input = inputs[i];
            results[i] = new DenseCrf(input.Image, single).Infer(input.Probabilities, input.Labels);
        });
        return results;
    }

    /// <summary>Arg-max over labels of Q [labels][H][W], label i mapped to <paramref name="classOf"/>[i].</summary>
    public static LabelMask ArgMax(ReadOnlySpan<float> q, IReadOnlyList<int> classOf, int width, int height)
    {
        int n = width * height, labels = classOf.Count;
        if (q.Length != (long)labels * n)
            throw new BadInputException("dense CRF", $"marginals hold {q.Length} values, expected {labels}×{height}×{width}");
        var winner = new int[n];
        var best = q[..n].ToArray();
        for (int l = 1; l < labels; l++)
        {
            var row = q.Slice(l * n, n);
            for (int p = 0; p < n; p++)
                if (row[p] > best[p]) { best[p] = row[p]; winner[p] = l; }
        }
        var mask = new byte[n];
        for (int p = 0; p < n; p++)
            mask[p] = checked((byte)classOf[winner[p]]);
        return new LabelMask(width, height, mask);
    }

    /// <summary>Mean-field marginals Q [labels][H][W] for probabilities [labels][H][W] on this instance's image.</summary>
    public float[] Infer(ReadOnlySpan<float> probs, int labels)
    {
        CheckProbabilities(Width, Height, probs, labels, "dense CRF");
        // Labels are the inner dimension, padded to a block the JIT unrolls: 4, 8, 16, 24 or 32 lanes, or
        // several 32-lane blocks past that.
        int width = labels <= 4 ? 4 : labels <= 8 ? 8 : labels <= 16 ? 16 : labels <= 24 ? 24 : 32;
        int blocks = (labels + width - 1) / width;
        return width switch
        {
            4 => Run<LabelBlock4>(probs, labels, blocks),
            8 => Run<LabelBlock8>(probs, labels, blocks),
            16 => Run<LabelBlock16>(probs, labels, blocks),
            24 => Run<LabelBlock24>(probs, labels, blocks),
            _ => Run<LabelBlock32>(probs, labels, blocks),
        };
    }

    private float[] Run<TB>(ReadOnlySpan<float> probs, int labels, int blocks) where TB : struct, ILabelBlock<TB>
    {
        int n = Width * Height, lp = TB.Width * blocks, dop = Options.MaxDegreeOfParallelism;
        const int PixelChunk = 4096, VertexChunk = 2048;

        // log p, clipped, as [pixel][lp]; padding lanes get log 0 = −∞ so they stay at probability 0.
        var logP = GC.AllocateUninitializedArray<float>(n * lp);
        float floor = Options.ProbabilityFloor;
        unsafe
        {
            fixed (float* src = probs)
            {
                var srcPtr = (nint)src;
                ParallelRanges.For(n, PixelChunk, dop, (lo, hi) => LogUnary(new ReadOnlySpan<float>((float*)srcPtr, labels * n), logP, n, labels, lp, floor, lo, hi));
            }
        }

        var q = GC.AllocateUninitializedArray<float>(n * lp);
        ParallelRanges.For(n, PixelChunk, dop, (lo, hi) => SoftmaxRows<TB>(logP, q, lp, blocks, lo, hi));

        var front = new float[_kernels.Length][];
        var back = new float[_kernels.Length][];
        for (int k = 0; k < _kernels.Length; k++)
        {
            front[k] = new float[(_kernels[k].Lattice.VertexCount + 1) * lp];
            back[k] = new float[(_kernels[k].Lattice.VertexCount + 1) * lp];
        }
        var filtered = new float[_kernels.Length][];

        for (int it = 0; it < Options.Iterations; it++)
        {
            for (int k = 0; k < _kernels.Length; k++)
            {
                var kernel = _kernels[k];
                int m = kernel.Lattice.VertexCount;
                float[] a = front[k], b = back[k];
                ParallelRanges.For(m, VertexChunk, dop, (lo, hi) => Splat<TB>(kernel, q, a, lp, blocks, lo, hi));
                for (int axis = 0; axis <= kernel.Lattice.Dimensions; axis++)
                {
                    float[] src = a, dst = b;
                    ParallelRanges.For(m, VertexChunk, dop, (lo, hi) => Blur<TB>(kernel, axis, src, dst, lp, blocks, lo, hi));
                    (a, b) = (b, a);
                }
                filtered[k] = a;
            }
            ParallelRanges.For(n, PixelChunk, dop, (lo, hi) => SliceAndSoftmax<TB>(_kernels, filtered, logP, q, lp, blocks, lo, hi));
        }

        var result = GC.AllocateUninitializedArray<float>(labels * n);
        ParallelRanges.For(n, PixelChunk, dop, (lo, hi) =>
        {
            for (int l = 0; l < labels; l++)
            {
                var dst = result.AsSpan(l * n);
                for (int p = lo; p < hi; p++) dst[p] = q[p * lp + l];
            }
        });
        return result;
    }

    private static void LogUnary(ReadOnlySpan<float> probs, float[] logP, int n, int labels, int lp, float floor, int lo, int hi)
    {
        var rows = logP.AsSpan(lo * lp, (hi - lo) * lp);
        rows.Clear();
        for (int l = 0; l < labels; l++)
        {
            var src = probs.Slice(l * n);
            for (int p = lo; p < hi; p++)
                logP[p * lp + l] = Math.Clamp(src[p], floor, 1f);
        }
        ref float r = ref MemoryMarshal.GetReference(rows);
        int i = 0;
        for (; i + 8 <= rows.Length; i += 8)
            Vector256.Log(Vector256.LoadUnsafe(ref r, (nuint)i)).StoreUnsafe(ref r, (nuint)i);
        for (; i < rows.Length; i += 4)
            Vector128.Log(Vector128.LoadUnsafe(ref r, (nuint)i)).StoreUnsafe(ref r, (nuint)i);
    }

    private static void SoftmaxRows<TB>(float[] logits, float[] q, int lp, int blocks, int lo, int hi) where TB : struct, ILabelBlock<TB>
    {
        ref float src = ref MemoryMarshal.GetArrayDataReference(logits);
        ref float dst = ref MemoryMarshal.GetArrayDataReference(q);
        for (int p = lo; p < hi; p++)
        {
            if (blocks == 1)
                StoreSoftmax(ref Unsafe.Add(ref dst, p * lp), TB.Load(ref Unsafe.Add(ref src, p * lp)));
            else
            {
                Unsafe.CopyBlockUnaligned(ref Unsafe.As<float, byte>(ref Unsafe.Add(ref dst, p * lp)), ref Unsafe.As<float, byte>(ref Unsafe.Add(ref src, p * lp)), (uint)(lp * sizeof(float)));
                SoftmaxInPlace<TB>(ref Unsafe.Add(ref dst, p * lp), blocks);
            }
        }

        static void StoreSoftmax(ref float dst, TB x)
        {
            var e = TB.ExpShifted(x, TB.Max(x), out float sum);
            TB.Store(ref dst, TB.Scale(e, 1f / sum));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SoftmaxInPlace<TB>(ref float row, int blocks) where TB : struct, ILabelBlock<TB>
    {
        float max = float.NegativeInfinity;
        for (int b = 0; b < blocks; b++)
            max = MathF.Max(max, TB.Max(TB.Load(ref Unsafe.Add(ref row, b * TB.Width))));
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            ref float at = ref Unsafe.Add(ref row, b * TB.Width);
            TB.Store(ref at, TB.ExpShifted(TB.Load(ref at), max, out float s));
            sum += s;
        }
        float inv = 1f / sum;
        for (int b = 0; b < blocks; b++)
        {
            ref float at = ref Unsafe.Add(ref row, b * TB.Width);
            TB.Store(ref at, TB.Scale(TB.Load(ref at), inv));
        }
    }

    /// <summary>values[v] = Σ over the points splatted onto v of (weight · Q[point]), for vertices [lo, hi).</summary>
    private static void Splat<TB>(Kernel kernel, float[] q, float[] values, int lp, int blocks, int lo, int hi) where TB : struct, ILabelBlock<TB>
    {
        ref float qr = ref MemoryMarshal.GetArrayDataReference(q);
        ref float vr = ref MemoryMarshal.GetArrayDataReference(values);
        ref int start = ref MemoryMarshal.GetArrayDataReference(kernel.Lattice.SplatStart);
        ref LatticeEntry entries = ref MemoryMarshal.GetArrayDataReference(kernel.SplatEntries);
        for (int v = lo; v < hi; v++)
        {
            int e0 = Unsafe.Add(ref start, v), e1 = Unsafe.Add(ref start, v + 1);
            for (int b = 0; b < blocks; b++)
            {
                int shift = b * TB.Width;
                TB acc = default;
                for (int e = e0; e < e1; e++)
                {
                    var entry = Unsafe.Add(ref entries, e);
                    acc = TB.MultiplyAdd(acc, entry.Weight, ref Unsafe.Add(ref qr, entry.Index * lp + shift));
                }
                TB.Store(ref Unsafe.Add(ref vr, v * lp + shift), acc);
            }
        }
    }

    /// <summary>One blur pass along lattice axis <paramref name="axis"/> for vertices [lo, hi).</summary>
    private static void Blur<TB>(Kernel kernel, int axis, float[] src, float[] dst, int lp, int blocks, int lo, int hi) where TB : struct, ILabelBlock<TB>
    {
        int m = kernel.Lattice.VertexCount;
        ref float s = ref MemoryMarshal.GetArrayDataReference(src);
        ref float d = ref MemoryMarshal.GetArrayDataReference(dst);
        ref int nb = ref MemoryMarshal.GetArrayDataReference(kernel.Lattice.BlurNeighbours);
        nb = ref Unsafe.Add(ref nb, axis * m * 2);
        for (int v = lo; v < hi; v++)
        {
            int a = Unsafe.Add(ref nb, 2 * v) * lp, c = Unsafe.Add(ref nb, 2 * v + 1) * lp, o = v * lp;
            for (int b = 0; b < blocks; b++)
            {
                int shift = b * TB.Width;
                TB.Blur(ref Unsafe.Add(ref d, o + shift), ref Unsafe.Add(ref s, o + shift), ref Unsafe.Add(ref s, a + shift), ref Unsafe.Add(ref s, c + shift));
            }
        }
    }

    /// <summary>Q[p] = softmax(log p + Σ_k slice_k(filtered_k)[p]) for pixels [lo, hi), slicing all kernels in one pass.</summary>
    private static void SliceAndSoftmax<TB>(Kernel[] kernels, float[][] filtered, float[] logP, float[] q, int lp, int blocks, int lo, int hi) where TB : struct, ILabelBlock<TB>
    {
        ref float unary = ref MemoryMarshal.GetArrayDataReference(logP);
        ref float qr = ref MemoryMarshal.GetArrayDataReference(q);
        for (int p = lo; p < hi; p++)
        {
            for (int b = 0; b < blocks; b++)
            {
                int shift = b * TB.Width;
                TB acc = TB.Load(ref Unsafe.Add(ref unary, p * lp + shift));
                for (int k = 0; k < kernels.Length; k++)
                {
                    int d1 = kernels[k].Lattice.Dimensions + 1;
                    ref LatticeEntry e = ref MemoryMarshal.GetArrayDataReference(kernels[k].SliceEntries);
                    e = ref Unsafe.Add(ref e, p * d1);
                    ref float vals = ref MemoryMarshal.GetArrayDataReference(filtered[k]);
                    for (int r = 0; r < d1; r++)
                    {
                        var entry = Unsafe.Add(ref e, r);
                        acc = TB.MultiplyAdd(acc, entry.Weight, ref Unsafe.Add(ref vals, entry.Index * lp + shift));
                    }
                }
                if (blocks == 1)
                {
                    var ex = TB.ExpShifted(acc, TB.Max(acc), out float sum);
                    TB.Store(ref Unsafe.Add(ref qr, p * lp), TB.Scale(ex, 1f / sum));
                }
                else
                    TB.Store(ref Unsafe.Add(ref qr, p * lp + shift), acc);
            }
            if (blocks > 1)
                SoftmaxInPlace<TB>(ref Unsafe.Add(ref qr, p * lp), blocks);
        }
    }

    private static float[] SmoothnessFeatures(int width, int height, float sxy)
    {
        var f = new float[width * height * 2];
        for (int y = 0, i = 0; y < height; y++)
            for (int x = 0; x < width; x++, i += 2)
            {
                f[i] = x / sxy;
                f[i + 1] = y / sxy;
            }
        return f;
    }

    private static float[] AppearanceFeatures(RgbImage image, float sxy, float srgb)
    {
        var f = new float[image.Width * image.Height * 5];
        var px = image.Pixels;
        for (int y = 0, i = 0, p = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++, i += 5, p += 3)
            {
                f[i] = x / sxy;
                f[i + 1] = y / sxy;
                f[i + 2] = px[p] / srgb;
                f[i + 3] = px[p + 1] / srgb;
                f[i + 4] = px[p + 2] / srgb;
            }
        return f;
    }

    private static void CheckImage(RgbImage? image)
    {
        if (image is null)
            throw new BadInputException("dense CRF", "image is missing");
        if (image.Width < 1 || image.Height < 1)
            throw new BadInputException("dense CRF", $"image must be at least 1×1, got {image.Width}×{image.Height}");
        if (image.Pixels is null || image.Pixels.Length != (long)image.Width * image.Height * 3)
            throw new BadInputException("dense CRF", $"image {image.Width}×{image.Height} needs {(long)image.Width * image.Height * 3} RGB bytes, got {image.Pixels?.Length ?? 0}");
    }

    private static void CheckProbabilities(RgbImage image, ReadOnlySpan<float> probs, int labels, string subject)
    {
        CheckImage(image);
        CheckProbabilities(image.Width, image.Height, probs, labels, subject);
    }

    private static void CheckProbabilities(int width, int height, ReadOnlySpan<float> probs, int labels, string subject)
    {
        if (labels < 1)
            throw new BadInputException(subject, $"needs at least one label, got {labels}");
        long n = (long)width * height;
        if (probs.Length != labels * n)
        {
            string hint = probs.Length % n == 0
                ? $" ({probs.Length / n} maps of {height}×{width}: the label count or the image size does not match)"
                : $" (not a whole number of {height}×{width} maps: the probabilities are for an image of another size)";
            throw new BadInputException(subject, $"probabilities hold {probs.Length} values, expected {labels}×{height}×{width} = {labels * n}{hint}");
        }
        int bad = IndexOfNaN(probs);
        if (bad >= 0)
        {
            long l = bad / n, p = bad % n;
            throw new BadInputException(subject, $"probability of label {l} at pixel (x={p % width}, y={p / width}) is NaN");
        }
    }

    private static int IndexOfNaN(ReadOnlySpan<float> values)
    {
        ref float r = ref MemoryMarshal.GetReference(values);
        int i = 0;
        for (; i + 8 <= values.Length; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref r, (nuint)i);
            if (!Vector256.EqualsAll(v, v)) break;
        }
        for (; i < values.Length; i++)
            if (float.IsNaN(values[i])) return i;
        return -1;
    }

    /// <summary>One pairwise term: its lattice with the CRF's weights folded in.</summary>
    private sealed class Kernel
    {
        private Kernel(PermutohedralLattice lattice, LatticeEntry[] sliceEntries, LatticeEntry[] splatEntries)
        {
            Lattice = lattice;
            SliceEntries = sliceEntries;
            SplatEntries = splatEntries;
        }

        public PermutohedralLattice Lattice { get; }

        /// <summary>Per pixel, its simplex vertices with weight barycentric · n[pixel] · α · w (the Potts weight).</summary>
        public LatticeEntry[] SliceEntries { get; }

        /// <summary>Per vertex (CSR of the lattice), contributing pixels with weight barycentric · n[pixel].</summary>
        public LatticeEntry[] SplatEntries { get; }

        public static Kernel Create(float[] features, int n, int d, float weight, bool parallel)
        {
            var lattice = PermutohedralLattice.Build(features, n, d, parallel);
            int d1 = d + 1;

            // NORMALIZE_SYMMETRIC: n = (K·1 + 1e-20)^-½, where K·1 is the lattice filter of a constant image.
            var ones = new float[n];
            Array.Fill(ones, 1f);
            var norm = new float[n];
            lattice.Filter(ones, norm, 1);
            for (int i = 0; i < n; i++)
                norm[i] = 1f / MathF.Sqrt(norm[i] + 1e-20f);

            // Potts: the message is +w·(filtered Q) on the same label (densecrf: −(−w·KQ)); α and w go on the slice side.
            float sliceScale = lattice.Alpha * weight;
            var slice = new LatticeEntry[lattice.Slice.Length];
            for (int s = 0; s < slice.Length; s++)
            {
                var e = lattice.Slice[s];
                slice[s] = new LatticeEntry(e.Index, e.Weight * norm[s / d1] * sliceScale);
            }
            var splat = new LatticeEntry[lattice.Splat.Length];
            for (int e = 0; e < splat.Length; e++)
            {
                int pixel = lattice.Splat[e].Index / d1;
                splat[e] = new LatticeEntry(pixel, lattice.Splat[e].Weight * norm[pixel]);
            }
            return new Kernel(lattice, slice, splat);
        }
    }
}
