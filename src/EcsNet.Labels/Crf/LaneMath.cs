using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace EcsNet.Labels.Crf;

/// <summary>SIMD helpers of the dense CRF's label blocks: horizontal max, fused multiply-add, blur step, exp.</summary>
internal static class LaneMath
{
    // exp(x) = 2^n · e^r with n = round(x / ln 2), r = x − n·ln 2 split in two parts for precision, and e^r from
    // the degree-6 minimax polynomial of Cephes' expf (relative error ≈ 1 ulp on [−ln2/2, ln2/2]).
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693359375f;
    private const float Ln2Lo = -2.12194440e-4f;
    private const float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f;
    private const float P3 = 4.1665795894e-2f, P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

    /// <summary>Below this, e^x is flushed to exactly 0 (also for −∞, which marks padding lanes).</summary>
    private const float Underflow = -87f;

    /// <summary>
    /// e^x for x ≤ 0 (the shifted logits of a softmax); about 1 ulp. .NET's Vector256.Exp is exact but ~8× slower,
    /// and the CRF evaluates one exp per pixel and label per iteration.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var keep = Vector256.GreaterThanOrEqual(x, Vector256.Create(Underflow));
        x = Vector256.MaxNative(Vector256.MinNative(x, Vector256.Create(88f)), Vector256.Create(Underflow));
        var n = Vector256.Round(x * Log2E);
        var r = Vector256.MultiplyAddEstimate(n, Vector256.Create(-Ln2Hi), x);
        r = Vector256.MultiplyAddEstimate(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.MultiplyAddEstimate(Vector256.Create(P0), r, Vector256.Create(P1));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(P2));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(P3));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(P4));
        p = Vector256.MultiplyAddEstimate(p, r, Vector256.Create(P5));
        p = Vector256.MultiplyAddEstimate(p, r * r, r + Vector256<float>.One);
        var scale = (Vector256.ConvertToInt32Native(n) + Vector256.Create(127)) << 23;
        return (p * scale.AsSingle()) & keep;
    }

    /// <inheritdoc cref="Exp(Vector256{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Exp(Vector128<float> x)
    {
        var keep = Vector128.GreaterThanOrEqual(x, Vector128.Create(Underflow));
        x = Vector128.MaxNative(Vector128.MinNative(x, Vector128.Create(88f)), Vector128.Create(Underflow));
        var n = Vector128.Round(x * Log2E);
        var r = Vector128.MultiplyAddEstimate(n, Vector128.Create(-Ln2Hi), x);
        r = Vector128.MultiplyAddEstimate(n, Vector128.Create(-Ln2Lo), r);
        var p = Vector128.MultiplyAddEstimate(Vector128.Create(P0), r, Vector128.Create(P1));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(P2));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(P3));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(P4));
        p = Vector128.MultiplyAddEstimate(p, r, Vector128.Create(P5));
        p = Vector128.MultiplyAddEstimate(p, r * r, r + Vector128<float>.One);
        var scale = (Vector128.ConvertToInt32Native(n) + Vector128.Create(127)) << 23;
        return (p * scale.AsSingle()) & keep;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(Vector128<float> m)
    {
        m = Vector128.MaxNative(m, Vector128.Shuffle(m, Vector128.Create(2, 3, 0, 1)));
        m = Vector128.MaxNative(m, Vector128.Shuffle(m, Vector128.Create(1, 0, 3, 2)));
        return m.ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(Vector256<float> v) => Max(Vector128.MaxNative(v.GetLower(), v.GetUpper()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fma(Vector256<float> acc, Vector256<float> w, ref float src, int at) =>
        Vector256.MultiplyAddEstimate(w, Vector256.LoadUnsafe(ref src, (nuint)at), acc);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Blur(ref float dst, ref float centre, ref float a, ref float b, int at)
    {
        var sum = Vector256.LoadUnsafe(ref a, (nuint)at) + Vector256.LoadUnsafe(ref b, (nuint)at);
        Vector256.MultiplyAddEstimate(sum, Vector256.Create(0.5f), Vector256.LoadUnsafe(ref centre, (nuint)at)).StoreUnsafe(ref dst, (nuint)at);
    }
}
