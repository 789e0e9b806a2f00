namespace EcsNet.Data.Tests;

public class AugmentationTests
{
    private static (RgbImage Image, LabelMask Mask) Sample(int w = 120, int h = 90)
    {
        var px = new byte[w * h * 3];
        var labels = new byte[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int p = y * w + x;
                px[3 * p] = (byte)(x * 2);
                px[3 * p + 1] = (byte)(y * 2);
                px[3 * p + 2] = (byte)((x + y) % 256);
                labels[p] = (byte)(x < w / 2 ? 8 : y < h / 2 ? 0 : 255);
            }
        return (new RgbImage(w, h, px), new LabelMask(w, h, labels));
    }

    [Fact]
    public void SpecDefaultsAreTheSeamRecipe()
    {
        var o = new AugmentOptions();
        Assert.Equal((448, 768, 448, 0.5), (o.LongEdgeMin, o.LongEdgeMax, o.CropSize, o.FlipProbability));
        Assert.Equal((0.3, 0.3, 0.3, 0.1), (o.Brightness, o.Contrast, o.Saturation, o.Hue));
        Assert.Equal(new[] { 0.485f, 0.456f, 0.406f }, o.Mean);
        Assert.Equal(new[] { 0.229f, 0.224f, 0.225f }, o.Std);
        Assert.Equal(255, o.MaskPad);
    }

    [Fact]
    public void SameSeedSameSampleAndDifferentSeedsDiffer()
    {
        var (img, mask) = Sample();
        var o = new AugmentOptions { LongEdgeMin = 100, LongEdgeMax = 160, CropSize = 96 };
        var a = Augmentation.Apply(img, mask, o, new Random(42));
        var b = Augmentation.Apply(img, mask, o, new Random(42));
        Assert.Equal(a.Chw, b.Chw);
        Assert.Equal(a.Mask!.Labels, b.Mask!.Labels);
        Assert.Equal(a.Valid, b.Valid);
        var outputs = Enumerable.Range(0, 6).Select(s => Augmentation.Apply(img, mask, o, new Random(s)).Chw).ToList();
        Assert.Contains(outputs.Skip(1), c => !c.SequenceEqual(outputs[0]));
    }

    [Fact]
    public void CropPadsImageWithZeroAndMaskWithIgnoreOutsideTheValidBox()
    {
        var (img, mask) = Sample();
        // Long edge 120 → rescaled to [100, 110] then placed in a 128 crop: padding on both axes.
        var o = new AugmentOptions { LongEdgeMin = 100, LongEdgeMax = 110, CropSize = 128 };
        for (int seed = 0; seed < 5; seed++)
        {
            var s = Augmentation.Apply(img, mask, o, new Random(seed));
            Assert.Equal((128, 128, 3 * 128 * 128), (s.Width, s.Height, s.Chw.Length));
            Assert.InRange(s.Valid.Width, 100, 110);
            Assert.Equal((int)Math.Round(90 * s.Scale), s.Valid.Height);
            int plane = 128 * 128;
            for (int y = 0; y < 128; y++)
                for (int x = 0; x < 128; x++)
                {
                    if (s.Valid.Contains(x, y))
                        continue;
                    Assert.Equal(255, s.Mask!.Labels[y * 128 + x]);
                    for (int c = 0; c < 3; c++)
                        Assert.Equal(0f, s.Chw[c * plane + y * 128 + x]);
                }
            // Inside, the mask only holds labels it had (nearest neighbour invents nothing).
            var inside = new HashSet<byte>();
            for (int y = s.Valid.Y; y < s.Valid.Y + s.Valid.Height; y++)
                for (int x = s.Valid.X; x < s.Valid.X + s.Valid.Width; x++)
                    inside.Add(s.Mask!.Labels[y * 128 + x]);
            Assert.Equal(new byte[] { 0, 8, 255 }, inside.Order());
        }
    }

    [Fact]
    public void LargeImagesAreCroppedToTheCropSize()
    {
        var (img, mask) = Sample();
        var s = Augmentation.Apply(img, mask, new AugmentOptions { LongEdgeMin = 200, LongEdgeMax = 200, CropSize = 64 }, new Random(3));
        Assert.Equal(new PixelBox(0, 0, 64, 64), s.Valid);
        Assert.Equal(200.0 / 120, s.Scale, 9);
    }

    [Fact]
    public void FlipWithoutOtherStepsMirrorsTheNormalisedImageAndMask()
    {
        var (img, mask) = Sample(10, 6);
        var o = AugmentOptions.None with { FlipProbability = 1 };
        var s = Augmentation.Apply(img, mask, o, new Random(0));
        Assert.True(s.Flipped);
        Assert.Equal(Augmentation.Normalize(Augmentation.FlipHorizontal(img)), s.Chw);
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 10; x++)
                Assert.Equal(mask[y, 9 - x], s.Mask![y, x]);
    }

    [Fact]
    public void NormalizeUsesImageNetStatisticsChannelMajor()
    {
        var img = new RgbImage(2, 1, new byte[] { 255, 0, 128, 0, 255, 0 });
        var chw = Augmentation.Normalize(img);
        Assert.Equal(6, chw.Length);
        Assert.Equal((1 - 0.485f) / 0.229f, chw[0], 5); // R of pixel 0
        Assert.Equal((0 - 0.485f) / 0.229f, chw[1], 5); // R of pixel 1
        Assert.Equal((0 - 0.456f) / 0.224f, chw[2], 5); // G of pixel 0
        Assert.Equal((1 - 0.456f) / 0.224f, chw[3], 5); // G of pixel 1
        Assert.Equal((128 / 255f - 0.406f) / 0.225f, chw[4], 5);
        Assert.Equal((0 - 0.406f) / 0.225f, chw[5], 5);
    }

    [Fact]
    public void BrightnessJitterScalesWithinItsRange()
    {
        var img = new RgbImage(4, 4, Enumerable.Repeat((byte)100, 48).ToArray());
        var o = AugmentOptions.None with { Brightness = 0.3 };
        var factors = Enumerable.Range(0, 20).Select(seed =>
        {
            var s = Augmentation.Apply(img, null, o, new Random(seed));
            float value = s.Chw[0] * 0.229f + 0.485f; // undo normalisation of R
            return value / (100 / 255f);
        }).ToList();
        Assert.All(factors, f => Assert.InRange(f, 0.7f - 1e-4f, 1.3f + 1e-4f));
        Assert.True(factors.Max() - factors.Min() > 0.2f, "brightness factors should vary across seeds");
    }

    [Fact]
    public void HueJitterLeavesGreyAloneAndTurnsColours()
    {
        var o = AugmentOptions.None with { Hue = 0.1 };
        var grey = new RgbImage(1, 1, new byte[] { 90, 90, 90 });
        var g = Augmentation.Apply(grey, null, o, new Random(1));
        Assert.Equal(Augmentation.Normalize(grey), g.Chw);

        var red = new RgbImage(1, 1, new byte[] { 200, 20, 20 });
        var shifted = Enumerable.Range(0, 10).Select(seed => Augmentation.Apply(red, null, o, new Random(seed)).Chw).ToList();
        Assert.Contains(shifted, chw => !chw.SequenceEqual(Augmentation.Normalize(red)));
        // A hue turn keeps max and min channel values (V and S are unchanged).
        foreach (var chw in shifted)
        {
            var rgb = new[] { chw[0] * 0.229f + 0.485f, chw[1] * 0.224f + 0.456f, chw[2] * 0.225f + 0.406f };
            Assert.Equal(200 / 255f, rgb.Max(), 3);
            Assert.Equal(20 / 255f, rgb.Min(), 3);
        }
    }

    [Fact]
    public void MaskOfAnotherSizeIsRejected()
    {
        var (img, _) = Sample();
        Assert.Throws<ArgumentException>(() => Augmentation.Apply(img, new LabelMask(3, 3, new byte[9]), new AugmentOptions(), new Random(0)));
    }
}
