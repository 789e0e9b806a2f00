using EcsNet.Data;
using EcsNet.Labels.Cams;

namespace EcsNet.Labels.Tests.Cams;

public class BitmapFontTests
{
    [Fact]
    public void EveryVocClassNameHasItsGlyphs()
    {
        foreach (var name in VocClasses.Names)
            Assert.True(BitmapFont.CanDraw(name), name);
        Assert.True(BitmapFont.CanDraw("Dog CAM, 0 to 1 (50%)"));
        Assert.False(BitmapFont.CanDraw("é"));
    }

    [Fact]
    public void DrawPaintsTheGlyphPixelsAtTheScale()
    {
        var image = new RgbImage(20, 20, new byte[20 * 20 * 3]);
        BitmapFont.Draw(image, "l", 1, 2, 2, (255, 0, 0));
        // 'l' is the column at font x = 2 from row 1 down, a hook at x = 1 on row 0 and a foot from x = 1 to 3 on row 6.
        for (int y = 0; y < BitmapFont.GlyphHeight; y++)
            for (int x = 0; x < BitmapFont.GlyphWidth; x++)
            {
                bool expected = x == 2 || (y == 0 && x == 1) || (y == 6 && x is >= 1 and <= 3);
                Assert.Equal(expected, BitmapFont.IsSet('l', x, y));
                // Every image pixel of the 2×2 square of this font pixel carries it.
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++)
                        Assert.Equal(expected ? 255 : 0, image[2 + 2 * y + dy, 1 + 2 * x + dx, 0]);
            }
        Assert.Equal(BitmapFont.IsSet('L', 2, 3), BitmapFont.IsSet('l', 2, 3));
    }

    [Fact]
    public void DrawClipsAtTheImageEdgesAndMeasureCountsTheSpacing()
    {
        var image = new RgbImage(8, 4, new byte[8 * 4 * 3]);
        BitmapFont.Draw(image, "dog", 5, -3, 1, (1, 2, 3));   // mostly outside: must not throw
        Assert.Contains(image.Pixels, p => p != 0);
        Assert.Equal((3 * 6 - 1) * 2, BitmapFont.Measure("dog", 2));
        Assert.Equal(0, BitmapFont.Measure("", 2));
    }
}
