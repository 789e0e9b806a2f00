using static TorchSharp.torch;

namespace EcsNet.Core.Tests;

internal static class TensorAssert
{
    /// <summary>Same dtype, same shape, every element equal.</summary>
    public static bool Identical(Tensor a, Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
