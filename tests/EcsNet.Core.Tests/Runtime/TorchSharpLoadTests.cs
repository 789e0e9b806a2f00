using static TorchSharp.torch;

namespace EcsNet.Core.Tests.Runtime;

/// <summary>
/// Proves the native LibTorch stack loads on this OS (see src/EcsNet.Build/TorchSharpLoadFix.targets)
/// and computes correctly: a 2x2 all-ones convolution over a 3x3 ramp, forward and backward, checked
/// against values worked out by hand.
/// </summary>
public class TorchSharpLoadTests
{
    [Fact]
    public void ConvForwardBackwardMatchesHandComputedValues()
    {
        using var scope = NewDisposeScope();
        var x = arange(1, 10, dtype: float32).reshape(1, 1, 3, 3).requires_grad_(true);
        var w = ones(1, 1, 2, 2, dtype: float32).requires_grad_(true);
        var y = nn.functional.conv2d(x, w);
        Assert.Equal(new long[] { 1, 1, 2, 2 }, y.shape);
        Assert.Equal(new float[] { 12, 16, 24, 28 }, y.data<float>().ToArray());

        var loss = y.sum();
        loss.backward();
        Assert.Equal(80f, loss.item<float>());
        // dL/dw[i,j] = sum of the input window at offset (i,j).
        Assert.Equal(new float[] { 12, 16, 24, 28 }, w.grad!.data<float>().ToArray());
        // dL/dx = number of 2x2 windows that cover each pixel.
        Assert.Equal(new float[] { 1, 2, 1, 2, 4, 2, 1, 2, 1 }, x.grad!.data<float>().ToArray());
    }

    [Fact]
    public void LibTorchSharpVersionNeedIsWeakInTheLoadedCopy()
    {
        var lib = Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories);
        Assert.NotEmpty(lib);
        foreach (var path in lib)
        {
            var needs = ElfVersionNeeds.Read(path);
            if (needs.TryGetValue("GLIBCXX_3.4.32", out var flags))
                Assert.True((flags & 0x2) != 0, $"{path}: GLIBCXX_3.4.32 is not marked weak");
        }
    }
}
