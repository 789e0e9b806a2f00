namespace EcsNet.Data.Tests;

public class ResizeTests
{
    [Fact]
    public void BilinearUpscaleInterpolatesBetweenPixelCentres()
    {
        // 2x1 image, values 0 and 200, upscaled to 4x1: output centres sit at source positions
        // 0.25, 0.75, 1.25, 1.75 (in pixel units, centres at .5) → 0, 50, 150, 200 with edge clamping.
        var src = new RgbImage(2, 1, new byte[] { 0, 0, 0, 200, 200, 200 });
        var up = Resize.Bilinear(src, 4, 1);
        Assert.Equal(new byte[] { 0, 50, 150, 200 }, Enumerable.Range(0, 4).Select(x => up[0, x, 0]));
    }

    [Fact]
    public void BilinearDownscaleAveragesInsteadOfAliasing()
    {
        // A one-pixel checkerboard of 0/255 halved: plain point-sampled bilinear would return one of the
        // two values; the widened filter returns mid-grey everywhere.
        var px = new byte[8 * 8 * 3];
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
                for (int c = 0; c < 3; c++)
                    px[(y * 8 + x) * 3 + c] = (byte)((x + y) % 2 == 0 ? 255 : 0);
        var half = Resize.Bilinear(new RgbImage(8, 8, px), 4, 4);
        Assert.All(half.Pixels, v => Assert.InRange(v, 100, 155));
        var constant = Resize.Bilinear(new RgbImage(5, 3, Enumerable.Repeat((byte)77, 45).ToArray()), 2, 7);
        Assert.All(constant.Pixels, v => Assert.Equal(77, v));
    }

    [Fact]
    public void NearestKeepsLabelsExactly()
    {
        var m = new LabelMask(2, 2, new byte[] { 1, 2, 255, 0 });
        var up = Resize.Nearest(m, 4, 4);
        Assert.Equal(new byte[] { 1, 1, 2, 2, 1, 1, 2, 2, 255, 255, 0, 0, 255, 255, 0, 0 }, up.Labels);
        var down = Resize.Nearest(up, 2, 2);
        Assert.Equal(m.Labels, down.Labels);
    }
}
