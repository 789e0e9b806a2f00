using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Testing;

namespace EcsNet.Labels.Tests.Cams;

public class OverlaysTests
{
    private static (RgbImage Image, LabelMask Labels) Picture(int width, int height, byte cls)
    {
        var px = new byte[width * height * 3];
        Array.Fill(px, (byte)100);
        var labels = new byte[width * height];
        for (int y = height / 4; y < height / 2; y++)
            for (int x = width / 4; x < width / 2; x++)
                labels[y * width + x] = cls;
        return (new RgbImage(width, height, px), new LabelMask(width, height, labels));
    }

    private static bool HasColour(RgbImage image, int fromRow, (byte R, byte G, byte B) c)
    {
        for (int i = fromRow * image.Width * 3; i < image.Pixels.Length; i += 3)
            if (image.Pixels[i] == c.R && image.Pixels[i + 1] == c.G && image.Pixels[i + 2] == c.B)
                return true;
        return false;
    }

    [Fact]
    public void ALabelOverlayIsEnlargedToTheLongEdgeWithTheClassesInItsLegend()
    {
        using var dir = new TempDir();
        int dog = VocClasses.IndexOf("dog");
        var (image, labels) = Picture(64, 48, (byte)dog);
        var path = dir.File("o.png");
        Overlays.WriteLabelOverlay(path, image, labels);

        var written = ImageCodec.ReadRgb(path);
        Assert.Equal(OverlayOptions.DefaultLongEdge, written.Width);
        Assert.True(written.Height > 288, $"no legend strip under the 384×288 picture: height {written.Height}");
        // Nearest-neighbour enlargement: the blended label colour is exact, each source pixel a 6×6 block.
        var blended = Overlays.LabelBlend(image, labels);
        Assert.Equal(blended[20, 20, 0], written[6 * 20 + 5, 6 * 20 + 5, 0]);
        // The legend's swatch carries the class's palette colour, and text is drawn in the strip.
        Assert.True(HasColour(written, 288, VocClasses.Palette[dog]));
        Assert.Equal(["dog"], Overlays.LabelLegend(labels).Select(e => e.Name));
    }

    [Fact]
    public void TheLegendNamesEveryClassDrawnAndSaysSoWhenThereIsNone()
    {
        var labels = new LabelMask(4, 1, [VocClasses.Background, 12, 3, VocClasses.Ignore]);
        Assert.Equal(["bird", "dog"], Overlays.LabelLegend(labels).Select(e => e.Name));
        var empty = new LabelMask(2, 1, [0, 255]);
        Assert.Equal(["background only"], Overlays.LabelLegend(empty).Select(e => e.Name));
    }

    [Fact]
    public void ManyClassesWrapIntoMoreLegendRows()
    {
        var image = new RgbImage(384, 288, new byte[384 * 288 * 3]);
        var one = Overlays.WithLegend(image, [new LegendEntry("dog", (1, 2, 3))]);
        var all = Overlays.WithLegend(image, VocClasses.Names.Skip(1).Select((n, i) => new LegendEntry(n, VocClasses.Palette[i + 1])).ToList());
        Assert.True(all.Height > one.Height + 20, $"{all.Height} vs {one.Height}");
        Assert.Equal(384, all.Width);
    }

    [Fact]
    public void TheOptionsKeepTheSizeOrLeaveTheLegendOut()
    {
        var (image, labels) = Picture(64, 48, 8);
        var blend = Overlays.LabelBlend(image, labels);
        var legend = Overlays.LabelLegend(labels);
        var native = Overlays.Present(blend, legend, new OverlayOptions { LongEdge = 0, Legend = false }, smooth: false);
        Assert.Equal((64, 48), (native.Width, native.Height));
        Assert.Equal(blend.Pixels, native.Pixels);
        // A large image is never shrunk.
        var big = Overlays.Present(Overlays.Enlarge(blend, 500, smooth: true), legend, new OverlayOptions { Legend = false }, smooth: true);
        Assert.Equal(500, big.Width);
        var e = Assert.Throws<BadInputException>(() => new OverlayOptions { LongEdge = -1 }.Validate());
        Assert.Equal("overlays.longEdge", e.Subject);
    }

    [Fact]
    public void CamOverlaysCarryTheHeatScaleAndTheClassName()
    {
        using var dir = new TempDir();
        var (image, labels) = Picture(32, 32, 8);
        var cams = new CamMaps(32, 32, [8], [Enumerable.Range(0, 32 * 32).Select(i => i / 1024f).ToArray()]);
        Overlays.WriteCamOverlays(dir.Path, "x", image, cams, labels, new OverlayOptions { LongEdge = 128 });
        var cam = ImageCodec.ReadRgb(dir.File("x_cam_cat.png"));
        Assert.Equal(128, cam.Width);
        Assert.True(cam.Height > 128);
        // The scale's low end is jet's dark blue.
        Assert.True(HasColour(cam, 128, (0, 0, 128)));
        Assert.True(File.Exists(dir.File("x_labels.png")));
    }
}
