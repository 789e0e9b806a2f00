using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace EcsNet.Labels.Crf;

/// <summary>
/// A fixed-width row of label values held in SIMD registers. The dense CRF stores every per-pixel and
/// per-vertex vector with the labels as the inner, contiguous dimension, padded to a block width; making the
/// hot loops generic over the block struct lets the JIT emit fully unrolled AVX code per width (4 lanes for up
/// to 4 labels so the common 3-label case wastes one lane, 24 lanes for VOC's 21) while the accumulators stay
/// in registers.
/// </summary>
internal interface ILabelBlock<TSelf> where TSelf : struct, ILabelBlock<TSelf>
{
    static abstract int Width { get; }

    static abstract TSelf Load(ref float src);

    static abstract void Store(ref float dst, TSelf value);

    /// <summary>acc + w·src.</summary>
    static abstract TSelf MultiplyAdd(TSelf acc, float w, ref float src);

    /// <summary>acc + w·x.</summary>
    static abstract TSelf MultiplyAdd(TSelf acc, float w, TSelf x);

    /// <summary>dst = centre + ½(a + b): one step of the lattice's [½ 1 ½] blur.</summary>
    static abstract void Blur(ref float dst, ref float centre, ref float a, ref float b);

    static abstract float Max(TSelf value);

    /// <summary>exp(value − shift), lane-wise, with the sum of the lanes.</summary>
    static abstract TSelf ExpShifted(TSelf value, float shift, out float sum);

    static abstract TSelf Scale(TSelf value, float factor);
}

internal struct LabelBlock4 : ILabelBlock<LabelBlock4>
{
    private Vector128<float> v0;

    public static int Width => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock4 Load(ref float src) => new() { v0 = Vector128.LoadUnsafe(ref src) };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(ref float dst, LabelBlock4 value) => value.v0.StoreUnsafe(ref dst);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock4 MultiplyAdd(LabelBlock4 acc, float w, ref float src) =>
        new() { v0 = Vector128.MultiplyAddEstimate(Vector128.Create(w), Vector128.LoadUnsafe(ref src), acc.v0) };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock4 MultiplyAdd(LabelBlock4 acc, float w, LabelBlock4 x) =>
        new() { v0 = Vector128.MultiplyAddEstimate(Vector128.Create(w), x.v0, acc.v0) };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Blur(ref float dst, ref float centre, ref float a, ref float b)
    {
        var sum = Vector128.LoadUnsafe(ref a) + Vector128.LoadUnsafe(ref b);
        Vector128.MultiplyAddEstimate(sum, Vector128.Create(0.5f), Vector128.LoadUnsafe(ref centre)).StoreUnsafe(ref dst);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(LabelBlock4 value) => LaneMath.Max(value.v0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock4 ExpShifted(LabelBlock4 value, float shift, out float sum)
    {
        var e = LaneMath.Exp(value.v0 - Vector128.Create(shift));
        sum = Vector128.Sum(e);
        return new() { v0 = e };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock4 Scale(LabelBlock4 value, float factor) => new() { v0 = value.v0 * factor };
}

internal struct LabelBlock8 : ILabelBlock<LabelBlock8>
{
    private Vector256<float> v0;

    public static int Width => 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock8 Load(ref float src) => new() { v0 = Vector256.LoadUnsafe(ref src) };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(ref float dst, LabelBlock8 value) => value.v0.StoreUnsafe(ref dst);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock8 MultiplyAdd(LabelBlock8 acc, float w, ref float src) =>
        new() { v0 = LaneMath.Fma(acc.v0, Vector256.Create(w), ref src, 0) };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock8 MultiplyAdd(LabelBlock8 acc, float w, LabelBlock8 x) =>
        new() { v0 = Vector256.MultiplyAddEstimate(Vector256.Create(w), x.v0, acc.v0) };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Blur(ref float dst, ref float centre, ref float a, ref float b) => LaneMath.Blur(ref dst, ref centre, ref a, ref b, 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(LabelBlock8 value) => LaneMath.Max(value.v0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock8 ExpShifted(LabelBlock8 value, float shift, out float sum)
    {
        var e = LaneMath.Exp(value.v0 - Vector256.Create(shift));
        sum = Vector256.Sum(e);
        return new() { v0 = e };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock8 Scale(LabelBlock8 value, float factor) => new() { v0 = value.v0 * factor };
}

internal struct LabelBlock16 : ILabelBlock<LabelBlock16>
{
    private Vector256<float> v0, v1;

    public static int Width => 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock16 Load(ref float src) => new() { v0 = Vector256.LoadUnsafe(ref src), v1 = Vector256.LoadUnsafe(ref src, 8) };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(ref float dst, LabelBlock16 value)
    {
        value.v0.StoreUnsafe(ref dst);
        value.v1.StoreUnsafe(ref dst, 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock16 MultiplyAdd(LabelBlock16 acc, float w, ref float src)
    {
        var wv = Vector256.Create(w);
        return new() { v0 = LaneMath.Fma(acc.v0, wv, ref src, 0), v1 = LaneMath.Fma(acc.v1, wv, ref src, 8) };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock16 MultiplyAdd(LabelBlock16 acc, float w, LabelBlock16 x)
    {
        var wv = Vector256.Create(w);
        return new() { v0 = Vector256.MultiplyAddEstimate(wv, x.v0, acc.v0), v1 = Vector256.MultiplyAddEstimate(wv, x.v1, acc.v1) };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Blur(ref float dst, ref float centre, ref float a, ref float b)
    {
        LaneMath.Blur(ref dst, ref centre, ref a, ref b, 0);
        LaneMath.Blur(ref dst, ref centre, ref a, ref b, 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(LabelBlock16 value) => LaneMath.Max(Vector256.MaxNative(value.v0, value.v1));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock16 ExpShifted(LabelBlock16 value, float shift, out float sum)
    {
        var s = Vector256.Create(shift);
        var a = LaneMath.Exp(value.v0 - s);
        var b = LaneMath.Exp(value.v1 - s);
        sum = Vector256.Sum(a + b);
        return new() { v0 = a, v1 = b };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock16 Scale(LabelBlock16 value, float factor) => new() { v0 = value.v0 * factor, v1 = value.v1 * factor };
}

internal struct LabelBlock24 : ILabelBlock<LabelBlock24>
{
    private Vector256<float> v0, v1, v2;

    public static int Width => 24;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock24 Load(ref float src) =>
        new() { v0 = Vector256.LoadUnsafe(ref src), v1 = Vector256.LoadUnsafe(ref src, 8), v2 = Vector256.LoadUnsafe(ref src, 16) };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(ref float dst, LabelBlock24 value)
    {
        value.v0.StoreUnsafe(ref dst);
        value.v1.StoreUnsafe(ref dst, 8);
        value.v2.StoreUnsafe(ref dst, 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock24 MultiplyAdd(LabelBlock24 acc, float w, ref float src)
    {
        var wv = Vector256.Create(w);
        return new() { v0 = LaneMath.Fma(acc.v0, wv, ref src, 0), v1 = LaneMath.Fma(acc.v1, wv, ref src, 8), v2 = LaneMath.Fma(acc.v2, wv, ref src, 16) };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock24 MultiplyAdd(LabelBlock24 acc, float w, LabelBlock24 x)
    {
        var wv = Vector256.Create(w);
        return new()
        {
            v0 = Vector256.MultiplyAddEstimate(wv, x.v0, acc.v0), v1 = Vector256.MultiplyAddEstimate(wv, x.v1, acc.v1),
            v2 = Vector256.MultiplyAddEstimate(wv, x.v2, acc.v2),
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Blur(ref float dst, ref float centre, ref float a, ref float b)
    {
        LaneMath.Blur(ref dst, ref centre, ref a, ref b, 0);
        LaneMath.Blur(ref dst, ref centre, ref a, ref b, 8);
        LaneMath.Blur(ref dst, ref centre, ref a, ref b, 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(LabelBlock24 value) => LaneMath.Max(Vector256.MaxNative(Vector256.MaxNative(value.v0, value.v1), value.v2));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock24 ExpShifted(LabelBlock24 value, float shift, out float sum)
    {
        var s = Vector256.Create(shift);
        var a = LaneMath.Exp(value.v0 - s);
        var b = LaneMath.Exp(value.v1 - s);
        var c = LaneMath.Exp(value.v2 - s);
        sum = Vector256.Sum(a + b + c);
        return new() { v0 = a, v1 = b, v2 = c };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock24 Scale(LabelBlock24 value, float factor) =>
        new() { v0 = value.v0 * factor, v1 = value.v1 * factor, v2 = value.v2 * factor };
}

internal struct LabelBlock32 : ILabelBlock<LabelBlock32>
{
    private Vector256<float> v0, v1, v2, v3;

    public static int Width => 32;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock32 Load(ref float src) => new()
    {
        v0 = Vector256.LoadUnsafe(ref src), v1 = Vector256.LoadUnsafe(ref src, 8),
        v2 = Vector256.LoadUnsafe(ref src, 16), v3 = Vector256.LoadUnsafe(ref src, 24),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(ref float dst, LabelBlock32 value)
    {
        value.v0.StoreUnsafe(ref dst);
        value.v1.StoreUnsafe(ref dst, 8);
        value.v2.StoreUnsafe(ref dst, 16);
        value.v3.StoreUnsafe(ref dst, 24);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock32 MultiplyAdd(LabelBlock32 acc, float w, ref float src)
    {
        var wv = Vector256.Create(w);
        return new()
        {
            v0 = LaneMath.Fma(acc.v0, wv, ref src, 0), v1 = LaneMath.Fma(acc.v1, wv, ref src, 8),
            v2 = LaneMath.Fma(acc.v2, wv, ref src, 16), v3 = LaneMath.Fma(acc.v3, wv, ref src, 24),
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock32 MultiplyAdd(LabelBlock32 acc, float w, LabelBlock32 x)
    {
        var wv = Vector256.Create(w);
        return new()
        {
            v0 = Vector256.MultiplyAddEstimate(wv, x.v0, acc.v0), v1 = Vector256.MultiplyAddEstimate(wv, x.v1, acc.v1),
            v2 = Vector256.MultiplyAddEstimate(wv, x.v2, acc.v2), v3 = Vector256.MultiplyAddEstimate(wv, x.v3, acc.v3),
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Blur(ref float dst, ref float centre, ref float a, ref float b)
    {
        LaneMath.Blur(ref dst, ref centre, ref a, ref b, 0);
        LaneMath.Blur(ref dst, ref centre, ref a, ref b, 8);
        LaneMath.Blur(ref dst, ref centre, ref a, ref b, 16);
        LaneMath.Blur(ref dst, ref centre, ref a, ref b, 24);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(LabelBlock32 value) =>
        LaneMath.Max(Vector256.MaxNative(Vector256.MaxNative(value.v0, value.v1), Vector256.MaxNative(value.v2, value.v3)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock32 ExpShifted(LabelBlock32 value, float shift, out float sum)
    {
        var s = Vector256.Create(shift);
        var a = LaneMath.Exp(value.v0 - s);
        var b = LaneMath.Exp(value.v1 - s);
        var c = LaneMath.Exp(value.v2 - s);
        var d = LaneMath.Exp(value.v3 - s);
        sum = Vector256.Sum((a + b) + (c + d));
        return new() { v0 = a, v1 = b, v2 = c, v3 = d };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LabelBlock32 Scale(LabelBlock32 value, float factor) =>
        new() { v0 = value.v0 * factor, v1 = value.v1 * factor, v2 = value.v2 * factor, v3 = value.v3 * factor };
}
