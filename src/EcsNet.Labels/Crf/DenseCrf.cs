using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using EcsNet.Data;

namespace EcsNet.Labels.Crf;

/// <summary>
/// Hyperparameters of the dense CRF (docs/METHOD.md §3). Defaults are PSA's <c>crf_inference</c>
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

    /// <summary>
    /// The smoothness kernel depends only on the image size and its σ: keep it in a small process-wide cache and
    /// reuse it for later images of the same size (results are identical). Not a model parameter.
    /// </summary>
    public bool ReuseSmoothnessKernel { get; init; } = true;

    /// <summary>
    /// Threads for one image (and images at once in a batch). Not a model parameter: results agree across thread
    /// counts to float rounding (about 1e-7).
    /// </summary>
    public int MaxDegreeOfParallelism { get; init; } = Environment.ProcessorCount;

    public void Validate()
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
/// Fully connected CRF with Gaussian edge potentials (Krähenbühl &amp; Koltun 2011; docs/METHOD.md §3), managed and
/// vectorised. The energy is E(x) = Σ_i −log p_i(x_i) + Σ_{i&lt;j} μ(x_i, x_j) Σ_k w_k k_k(f_i, f_j) with a Potts μ,
/// a smoothness kernel on positions and an appearance kernel on positions and RGB. Mean-field inference:
/// Q ← softmax(log p + Σ_k w_k · n_k ⊙ K_k(n_k ⊙ Q)), where K_k is the kernel's permutohedral-lattice filter
/// and n_k = (K_k 1)^-½ its symmetric normalisation — the computation densecrf performs with DIAG_KERNEL,
/// NORMALIZE_SYMMETRIC and PottsCompatibility, so outputs agree with pydensecrf to float precision.
/// </summary>
/// <remarks>
/// An instance holds the per-image part (both lattices, built once: "setup"); <see cref="Infer(ReadOnlySpan{float}, int)"/>
/// runs the label-dependent part and may be called many times (e.g. PSA's low- and high-α maps of one image) and
/// from several threads. Values live as [pixel][labels padded to a SIMD block]; each pass slices the blurred
/// lattices, takes the softmax and splats the new Q into per-partition lattice copies in one sweep over the pixels,
/// so every phase is a race-free parallel loop.
/// </remarks>
public sealed class DenseCrf
{
    private readonly Kernel[] pairwiseKernels;

    /// <summary>Builds the pairwise structure for one image: the two permutohedral lattices and their normalisation.</summary>
    public DenseCrf(RgbImage image, DenseCrfOptions? options = null)
    {
        Options = options ?? new DenseCrfOptions();
        Options.Validate();
        CheckImage(image);
        Width = image.Width;
        Height = image.Height;
        int n = Width * Height;

        bool parallel = Options.MaxDegreeOfParallelism > 1;
        var kernels = new List<Func<Kernel>>();
        if (Options.GaussianCompat != 0)
            kernels.Add(() => Options.ReuseSmoothnessKernel
                ? SmoothnessKernels.Get(Width, Height, Options.GaussianSxy, Options.GaussianCompat, parallel)
                : Kernel.Create(SmoothnessFeatures(Width, Height, Options.GaussianSxy), n, 2, Options.GaussianCompat, parallel));
        if (Options.BilateralCompat != 0)
            kernels.Add(() => Kernel.Create(AppearanceFeatures(image, Options.BilateralSxy, Options.BilateralSrgb), n, 5, Options.BilateralCompat, parallel));
        pairwiseKernels = new Kernel[kernels.Count];
        ParallelRanges.Tasks(kernels.Count, Options.MaxDegreeOfParallelism, k => pairwiseKernels[k] = kernels[k]());
    }

    public int Width { get; }

    public int Height { get; }

    public DenseCrfOptions Options { get; }

    /// <summary>Lattice vertex counts of the kernels (smoothness, appearance), for diagnostics and benchmarks.</summary>
    public IReadOnlyList<int> LatticeSizes => pairwiseKernels.Select(k => k.Lattice.VertexCount).ToArray();

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
        ParallelRanges.Tasks(inputs.Count, options.MaxDegreeOfParallelism, i =>
        {
            cancellationToken.ThrowIfCancellationRequested();
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
        var q = GC.AllocateUninitializedArray<float>(labels * Width * Height);
        InferInto(probs, labels, q);
        return q;
    }

    /// <summary>As <see cref="Infer(ReadOnlySpan{float}, int)"/>, writing Q [labels][H][W] into <paramref name="output"/>.</summary>
    public void Infer(ReadOnlySpan<float> probs, int labels, Span<float> output)
    {
        CheckProbabilities(Width, Height, probs, labels, "dense CRF");
        if (output.Length != probs.Length)
            throw new BadInputException("dense CRF", $"output holds {output.Length} values, expected {probs.Length}");
        InferInto(probs, labels, output);
    }

    private void InferInto(ReadOnlySpan<float> probs, int labels, Span<float> output)
    {
        // Labels are the inner dimension, padded to a block the JIT unrolls: 4, 8, 16, 24 or 32 lanes, or
        // several 32-lane blocks past that.
        int width = labels <= 4 ? 4 : labels <= 8 ? 8 : labels <= 16 ? 16 : labels <= 24 ? 24 : 32;
        int blocks = (labels + width - 1) / width;
        switch (width)
        {
            case 4: Run<LabelBlock4>(probs, labels, blocks, output); break;
            case 8: Run<LabelBlock8>(probs, labels, blocks, output); break;
            case 16: Run<LabelBlock16>(probs, labels, blocks, output); break;
            case 24: Run<LabelBlock24>(probs, labels, blocks, output); break;
            default: Run<LabelBlock32>(probs, labels, blocks, output); break;
        }
    }

    /// <summary>
    /// Mean field, organised as T+1 pixel passes. Pass t computes Q_t[p] = softmax(log p + messages from the
    /// blurred lattices of Q_{t−1}) for each pixel and at once splats Q_t[p] onto the next lattices (one private
    /// copy per thread partition, summed afterwards), so Q is never stored or re-read; the last pass writes Q_T out.
    /// Between passes each lattice is reduced and blurred along its d+1 axes.
    /// </summary>
    private unsafe void Run<TB>(ReadOnlySpan<float> probs, int labels, int blocks, Span<float> output) where TB : struct, ILabelBlock<TB>
    {
        int n = Width * Height, lp = TB.Width * blocks, dop = Options.MaxDegreeOfParallelism, kernels = pairwiseKernels.Length;
        const int PixelChunk = 4096, VertexChunk = 2048;
        // Static pixel partitions (one splat copy each) keep the sums' order, hence the result, fixed for a given thread count.
        int parts = Math.Max(1, Math.Min(dop, n / PixelChunk));
        var pool = ArrayPool<float>.Shared;
        var rented = new List<float[]>();
        float[] Rent(int length)
        {
            var a = pool.Rent(length);
            rented.Add(a);
            return a;
        }

        try
        {
            var logP = Rent(n * lp);
            float floor = Options.ProbabilityFloor;
            fixed (float* src = probs)
            {
                var srcPtr = (nint)src;
                ParallelRanges.For(n, PixelChunk, dop, (lo, hi) => LogUnary(new ReadOnlySpan<float>((float*)srcPtr, labels * n), logP, n, labels, lp, floor, lo, hi));
            }

            var passes = new Pass(kernels, parts);
            for (int k = 0; k < kernels; k++)
            {
                int rows = (pairwiseKernels[k].Lattice.VertexCount + 1) * lp;
                passes.Filtered[k] = Rent(rows);
                passes.Spare[k] = Rent(rows);
                // Row M stands for missing blur neighbours and must read as zero in both blur buffers.
                passes.Filtered[k].AsSpan(rows - lp, lp).Clear();
                passes.Spare[k].AsSpan(rows - lp, lp).Clear();
                for (int t = 0; t < parts; t++) passes.Splats[k, t] = Rent(rows);
            }

            // The usual configuration (both kernels, labels in one block) has a hand-unrolled pass.
            bool standard = blocks == 1 && kernels == 2 && pairwiseKernels[0].Lattice.Dimensions == 2 && pairwiseKernels[1].Lattice.Dimensions == 5;
            fixed (float* outPtr = output)
            {
                var outAt = (nint)outPtr;
                for (int pass = 0; pass <= Options.Iterations; pass++)
                {
                    bool first = pass == 0, last = pass == Options.Iterations;
                    ParallelRanges.Tasks(parts, dop, t =>
                    {
                        int lo = (int)((long)n * t / parts), hi = (int)((long)n * (t + 1) / parts);
                        if (!last)
                            for (int k = 0; k < kernels; k++)
                                passes.Splats[k, t].AsSpan(0, pairwiseKernels[k].Lattice.VertexCount * lp).Clear();
                        var o = last ? new Span<float>((float*)outAt, labels * n) : Span<float>.Empty;
                        if (standard)
                            StandardPixelPass<TB>(pairwiseKernels[0], pairwiseKernels[1], passes, t, logP, lp, labels, n, lo, hi, messages: !first, splat: !last, o);
                        else
                            PixelPass<TB>(pairwiseKernels, passes, t, logP, lp, blocks, labels, n, lo, hi, messages: !first, splat: !last, o);
                    });
                    if (last) break;

                    for (int k = 0; k < kernels; k++)
                    {
                        var kernel = pairwiseKernels[k];
                        int m = kernel.Lattice.VertexCount;
                        float[] a = passes.Filtered[k], b = passes.Spare[k];
                        ParallelRanges.For(m, VertexChunk, dop, (lo, hi) => SumCopies(passes, k, parts, a, lp, lo, hi));
                        for (int axis = 0; axis <= kernel.Lattice.Dimensions; axis++)
                        {
                            float[] src = a, dst = b;
                            ParallelRanges.For(m, VertexChunk, dop, (lo, hi) => Blur<TB>(kernel, axis, src, dst, lp, blocks, lo, hi));
                            (a, b) = (b, a);
                        }
                        passes.Filtered[k] = a;
                        passes.Spare[k] = b;
                    }
                }
            }
        }
        finally
        {
            foreach (var a in rented) pool.Return(a);
        }
    }

    /// <summary>Per-run buffers: the blurred lattice values read by a pass and the splat copies it writes.</summary>
    private sealed class Pass(int kernels, int parts)
    {
        public readonly float[][] Filtered = new float[kernels][];
        public readonly float[][] Spare = new float[kernels][];
        public readonly float[,][] Splats = new float[kernels, parts][];
    }

    /// <summary>
    /// log clip(p, floor, 1) of pixels [lo, hi), transposed from [labels][N] to [pixel][lp]; padding lanes get
    /// log 0 = −∞, which keeps their probability at exactly 0. With AVX, 8 pixels × 8 labels at a time: the log is
    /// taken in the source layout and an 8×8 register transpose writes the rows.
    /// </summary>
    private static void LogUnary(ReadOnlySpan<float> probs, float[] logP, int n, int labels, int lp, float floor, int lo, int hi)
    {
        ref float src = ref MemoryMarshal.GetReference(probs);
        ref float dst = ref MemoryMarshal.GetArrayDataReference(logP);
        int p = lo;
        if (Avx.IsSupported && lp % 8 == 0)
        {
            var low = Vector256.Create(floor);
            var none = Vector256.Create(float.NegativeInfinity);
            Span<Vector256<float>> r = stackalloc Vector256<float>[8];
            for (; p + 8 <= hi; p += 8)
                for (int g = 0; g < lp; g += 8)
                {
                    for (int k = 0; k < 8; k++)
                    {
                        int l = g + k;
                        r[k] = l < labels
                            ? Vector256.Log(Vector256.Min(Vector256.Max(Vector256.LoadUnsafe(ref src, (nuint)((long)l * n + p)), low), Vector256<float>.One))
                            : none;
                    }
                    Transpose8(r);
                    for (int k = 0; k < 8; k++)
                        r[k].StoreUnsafe(ref dst, (nuint)((long)(p + k) * lp + g));
                }
        }
        for (; p < hi; p++)
            for (int l = 0; l < lp; l++)
                Unsafe.Add(ref dst, (nint)p * lp + l) = l < labels
                    ? MathF.Log(Math.Clamp(Unsafe.Add(ref src, (nint)l * n + p), floor, 1f))
                    : float.NegativeInfinity;
    }

    /// <summary>In-register transpose of an 8×8 float block (rows r[0..7]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8(Span<Vector256<float>> r)
    {
        var t0 = Avx.UnpackLow(r[0], r[1]);
        var t1 = Avx.UnpackHigh(r[0], r[1]);
        var t2 = Avx.UnpackLow(r[2], r[3]);
        var t3 = Avx.UnpackHigh(r[2], r[3]);
        var t4 = Avx.UnpackLow(r[4], r[5]);
        var t5 = Avx.UnpackHigh(r[4], r[5]);
        var t6 = Avx.UnpackLow(r[6], r[7]);
        var t7 = Avx.UnpackHigh(r[6], r[7]);
        var s0 = Avx.Shuffle(t0, t2, 0x44);
        var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44);
        var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44);
        var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44);
        var s7 = Avx.Shuffle(t5, t7, 0xEE);
        r[0] = Avx.Permute2x128(s0, s4, 0x20);
        r[1] = Avx.Permute2x128(s1, s5, 0x20);
        r[2] = Avx.Permute2x128(s2, s6, 0x20);
        r[3] = Avx.Permute2x128(s3, s7, 0x20);
        r[4] = Avx.Permute2x128(s0, s4, 0x31);
        r[5] = Avx.Permute2x128(s1, s5, 0x31);
        r[6] = Avx.Permute2x128(s2, s6, 0x31);
        r[7] = Avx.Permute2x128(s3, s7, 0x31);
    }

    /// <summary>
    /// Pixels [lo, hi) of partition <paramref name="part"/>: Q[p] = softmax(log p[p] + Σ_k α·w_k·slice_k[p]) (the
    /// messages only after the first pass), then either splat Q[p] into the partition's copies or write it out.
    /// </summary>
    private static void PixelPass<TB>(Kernel[] kernels, Pass passes, int part, float[] logP, int lp, int blocks, int labels, int n,
        int lo, int hi, bool messages, bool splat, Span<float> output) where TB : struct, ILabelBlock<TB>
    {
        Span<float> row = stackalloc float[lp];
        ref float rowRef = ref MemoryMarshal.GetReference(row);
        ref float unary = ref MemoryMarshal.GetArrayDataReference(logP);
        int count = messages || splat ? kernels.Length : 0;
        for (int p = lo; p < hi; p++)
        {
            for (int b = 0; b < blocks; b++)
            {
                int shift = b * TB.Width;
                TB acc = TB.Load(ref Unsafe.Add(ref unary, p * lp + shift));
                if (messages)
                {
                    for (int k = 0; k < kernels.Length; k++)
                    {
                        var kernel = kernels[k];
                        int d1 = kernel.Lattice.Dimensions + 1;
                        ref LatticeEntry e = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(kernel.Entries), p * d1);
                        ref float vals = ref MemoryMarshal.GetArrayDataReference(passes.Filtered[k]);
                        TB sum = default;
                        for (int r = 0; r < d1; r++)
                        {
                            var entry = Unsafe.Add(ref e, r);
                            sum = TB.MultiplyAdd(sum, entry.Weight, ref Unsafe.Add(ref vals, entry.Index * lp + shift));
                        }
                        acc = TB.MultiplyAdd(acc, kernel.MessageScale, sum);
                    }
                }
                TB.Store(ref Unsafe.Add(ref rowRef, shift), acc);
            }
            if (blocks == 1)
            {
                var x = TB.Load(ref rowRef);
                var ex = TB.ExpShifted(x, TB.Max(x), out float total);
                TB.Store(ref rowRef, TB.Scale(ex, 1f / total));
            }
            else
                SoftmaxInPlace<TB>(ref rowRef, blocks);

            if (!splat)
            {
                for (int l = 0; l < labels; l++) output[l * n + p] = row[l];
                continue;
            }
            for (int k = 0; k < count; k++)
            {
                var kernel = kernels[k];
                int d1 = kernel.Lattice.Dimensions + 1;
                ref LatticeEntry e = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(kernel.Entries), p * d1);
                ref float copy = ref MemoryMarshal.GetArrayDataReference(passes.Splats[k, part]);
                for (int b = 0; b < blocks; b++)
                {
                    int shift = b * TB.Width;
                    var qb = TB.Load(ref Unsafe.Add(ref rowRef, shift));
                    for (int r = 0; r < d1; r++)
                    {
                        var entry = Unsafe.Add(ref e, r);
                        ref float at = ref Unsafe.Add(ref copy, entry.Index * lp + shift);
                        TB.Store(ref at, TB.MultiplyAdd(TB.Load(ref at), entry.Weight, qb));
                    }
                }
            }
        }
    }

    /// <summary>
    /// <see cref="PixelPass{TB}"/> for the default pair of kernels (smoothness on 2-D, appearance on 5-D features,
    /// hence 3 and 6 simplex vertices per pixel) with all labels in one block: the vertex loops are unrolled, the
    /// per-kernel arrays hoisted and Q kept in registers from the softmax to the splat.
    /// </summary>
    private static void StandardPixelPass<TB>(Kernel smooth, Kernel appearance, Pass passes, int part, float[] logP, int lp, int labels, int n,
        int lo, int hi, bool messages, bool splat, Span<float> output) where TB : struct, ILabelBlock<TB>
    {
        Span<float> row = stackalloc float[TB.Width];
        ref float rowRef = ref MemoryMarshal.GetReference(row);
        ref float unary = ref MemoryMarshal.GetArrayDataReference(logP);
        ref LatticeEntry e0 = ref MemoryMarshal.GetArrayDataReference(smooth.Entries);
        ref LatticeEntry e1 = ref MemoryMarshal.GetArrayDataReference(appearance.Entries);
        ref float v0 = ref MemoryMarshal.GetArrayDataReference(passes.Filtered[0]);
        ref float v1 = ref MemoryMarshal.GetArrayDataReference(passes.Filtered[1]);
        ref float s0 = ref MemoryMarshal.GetArrayDataReference(passes.Splats[0, part]);
        ref float s1 = ref MemoryMarshal.GetArrayDataReference(passes.Splats[1, part]);
        float m0 = smooth.MessageScale, m1 = appearance.MessageScale;
        for (int p = lo; p < hi; p++)
        {
            ref LatticeEntry a = ref Unsafe.Add(ref e0, 3 * p);
            ref LatticeEntry b = ref Unsafe.Add(ref e1, 6 * p);
            TB x = TB.Load(ref Unsafe.Add(ref unary, p * lp));
            if (messages)
            {
                TB g = Gather<TB>(ref v0, lp, Unsafe.Add(ref a, 0), default);
                g = Gather<TB>(ref v0, lp, Unsafe.Add(ref a, 1), g);
                g = Gather<TB>(ref v0, lp, Unsafe.Add(ref a, 2), g);
                x = TB.MultiplyAdd(x, m0, g);
                TB h = Gather<TB>(ref v1, lp, Unsafe.Add(ref b, 0), default);
                h = Gather<TB>(ref v1, lp, Unsafe.Add(ref b, 1), h);
                h = Gather<TB>(ref v1, lp, Unsafe.Add(ref b, 2), h);
                h = Gather<TB>(ref v1, lp, Unsafe.Add(ref b, 3), h);
                h = Gather<TB>(ref v1, lp, Unsafe.Add(ref b, 4), h);
                h = Gather<TB>(ref v1, lp, Unsafe.Add(ref b, 5), h);
                x = TB.MultiplyAdd(x, m1, h);
            }
            var e = TB.ExpShifted(x, TB.Max(x), out float total);
            var q = TB.Scale(e, 1f / total);
            if (!splat)
            {
                TB.Store(ref rowRef, q);
                for (int l = 0; l < labels; l++) output[l * n + p] = row[l];
                continue;
            }
            Scatter(ref s0, lp, Unsafe.Add(ref a, 0), q);
            Scatter(ref s0, lp, Unsafe.Add(ref a, 1), q);
            Scatter(ref s0, lp, Unsafe.Add(ref a, 2), q);
            Scatter(ref s1, lp, Unsafe.Add(ref b, 0), q);
            Scatter(ref s1, lp, Unsafe.Add(ref b, 1), q);
            Scatter(ref s1, lp, Unsafe.Add(ref b, 2), q);
            Scatter(ref s1, lp, Unsafe.Add(ref b, 3), q);
            Scatter(ref s1, lp, Unsafe.Add(ref b, 4), q);
            Scatter(ref s1, lp, Unsafe.Add(ref b, 5), q);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TB Gather<TB>(ref float values, int lp, LatticeEntry entry, TB acc) where TB : struct, ILabelBlock<TB> =>
        TB.MultiplyAdd(acc, entry.Weight, ref Unsafe.Add(ref values, entry.Index * lp));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scatter<TB>(ref float values, int lp, LatticeEntry entry, TB q) where TB : struct, ILabelBlock<TB>
    {
        ref float at = ref Unsafe.Add(ref values, entry.Index * lp);
        TB.Store(ref at, TB.MultiplyAdd(TB.Load(ref at), entry.Weight, q));
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

    /// <summary>Lattice values of kernel k for vertices [lo, hi) = sum of the partitions' splat copies, in partition order.</summary>
    private static void SumCopies(Pass passes, int k, int parts, float[] dst, int lp, int lo, int hi)
    {
        var target = dst.AsSpan(lo * lp, (hi - lo) * lp);
        passes.Splats[k, 0].AsSpan(lo * lp, target.Length).CopyTo(target);
        for (int t = 1; t < parts; t++)
        {
            var src = passes.Splats[k, t].AsSpan(lo * lp, target.Length);
            ref float s = ref MemoryMarshal.GetReference(src);
            ref float d = ref MemoryMarshal.GetReference(target);
            for (int i = 0; i < target.Length; i += 4)
                (Vector128.LoadUnsafe(ref d, (nuint)i) + Vector128.LoadUnsafe(ref s, (nuint)i)).StoreUnsafe(ref d, (nuint)i);
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

    /// <summary>Process-wide cache of smoothness kernels by image size, σ and weight (immutable, so shared freely).</summary>
    private static class SmoothnessKernels
    {
        private const int Capacity = 8;
        private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int W, int H, float Sxy, float Weight), Lazy<Kernel>> Cache = new();

        public static Kernel Get(int width, int height, float sxy, float weight, bool parallel)
        {
            var key = (width, height, sxy, weight);
            if (!Cache.ContainsKey(key) && Cache.Count >= Capacity)
                Cache.Clear();
            return Cache.GetOrAdd(key, k => new Lazy<Kernel>(() =>
                Kernel.Create(SmoothnessFeatures(k.W, k.H, k.Sxy), k.W * k.H, 2, k.Weight, parallel))).Value;
        }
    }

    /// <summary>One pairwise term: its lattice with the symmetric normalisation folded into the weights.</summary>
    private sealed class Kernel
    {
        private Kernel(PermutohedralLattice lattice, LatticeEntry[] entries, float messageScale)
        {
            Lattice = lattice;
            Entries = entries;
            MessageScale = messageScale;
        }

        public PermutohedralLattice Lattice { get; }

        /// <summary>Per pixel, its simplex vertices with weight barycentric · n[pixel]; used to splat and to slice.</summary>
        public LatticeEntry[] Entries { get; }

        /// <summary>α·w: the lattice's slicing constant times the Potts weight.</summary>
        public float MessageScale { get; }

        public static Kernel Create(float[] features, int n, int d, float weight, bool parallel)
        {
            var lattice = PermutohedralLattice.Build(features, n, d, parallel);
            int d1 = d + 1;

            // NORMALIZE_SYMMETRIC: n = (K·1 + 1e-20)^-½, where K·1 is the lattice filter of a constant image.
            var norm = lattice.FilterOnes();
            var entries = new LatticeEntry[lattice.Slice.Length];
            for (int p = 0; p < n; p++)
            {
                float np = 1f / MathF.Sqrt(norm[p] + 1e-20f);
                for (int r = 0; r < d1; r++)
                {
                    var e = lattice.Slice[p * d1 + r];
                    entries[p * d1 + r] = new LatticeEntry(e.Index, e.Weight * np);
                }
            }
            // Potts: densecrf subtracts compatibility(−w)·(filtered Q), i.e. adds w·(filtered Q) to the same label.
            return new Kernel(lattice, entries, lattice.Alpha * weight);
        }
    }
}
