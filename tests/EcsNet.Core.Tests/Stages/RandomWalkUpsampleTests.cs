using EcsNet.Labels.Propagation;
using static TorchSharp.torch;

namespace EcsNet.Core.Tests.Stages;

/// <summary>The random walk's torch-free upsampling agrees with the bilinear interpolation the networks use.</summary>
public sealed class RandomWalkUpsampleTests
{
    [Fact]
    public void UpsamplingMatchesTorchBilinear()
    {
        using var scope = NewDisposeScope();
        const int c = 5, gh = 4, gw = 6, h = 29, w = 45;
        var grid = rand(1, c, gh, gw, generator: new Generator(9));
        var up = nn.functional.interpolate(grid, new long[] { gh * 8, gw * 8 }, mode: InterpolationMode.Bilinear, align_corners: false);
        var expected = up[0, .., ..h, ..w].argmax(0).to(ScalarType.Byte).contiguous().data<byte>().ToArray();
        var got = RandomWalk.UpsampleArgmax(grid.contiguous().data<float>().ToArray(), c, gh, gw, 8, h, w);
        Assert.Equal(w, got.Width);
        Assert.Equal(h, got.Height);
        Assert.Equal(expected, got.Labels);
    }
}
