namespace EcsNet.Data;

/// <summary>
/// The training augmentation of docs/METHOD.md §1 in the order SEAM applies it: rescale longest edge → flip → colour
/// jitter → normalise → random crop with padding. Every random draw comes from the caller's
/// <see cref="Random"/>, in a fixed order, so a seeded generator gives the same sample every time.
/// </summary>
public static class Augmentation
{
    public static AugmentedSample Apply(RgbImage image, LabelMask? mask, AugmentOptions options, Random rng)
    {
        options.Validate();
        if (mask is not null && (mask.Width != image.Width || mask.Height != image.Height))
            throw new ArgumentException($"mask is {mask.Width}x{mask.Height} but the image is {image.Width}x{image.Height}");

        // 1. Random longest-edge rescale (bilinear for the image, nearest for the mask).
        double scale = 1;
        if (options.LongEdgeMin > 0)
        {
            int target = rng.Next(options.LongEdgeMin, options.LongEdgeMax + 1);
            scale = (double)target / Math.Max(image.Width, image.Height);
            int w = Math.Max(1, (int)Math.Round(image.Width * scale));
            int h = Math.Max(1, (int)Math.Round(image.Height * scale));
            if (w != image.Width || h != image.Height)
            {
                image = Resize.Bilinear(image, w, h);
                mask = mask is null ? null : Resize.Nearest(mask, w, h);
            }
        }

        // 2. Horizontal flip (always draw, so the number of draws does not depend on the options' values).
        bool flip = rng.NextDouble() < options.FlipProbability;

        // 3. Colour jitter on [0,1] floats, then 4. normalisation, both in HWC.
        var hwc = ToUnitFloats(image);
        ColourJitter(hwc, options, rng);

        // 5. Random crop (or placement inside the crop when the image is smaller), padded.
        int width = image.Width, height = image.Height;
        int outW = options.CropSize > 0 ? options.CropSize : width;
        int outH = options.CropSize > 0 ? options.CropSize : height;
        var (srcX, dstX, spanX) = CropAxis(width, outW, rng);
        var (srcY, dstY, spanY) = CropAxis(height, outH, rng);

        var chw = new float[3 * outH * outW]; // zero = the mean colour after normalisation
        var mean = options.Mean;
        var std = options.Std;
        for (int y = 0; y < spanY; y++)
        {
            int sy = srcY + y;
            for (int x = 0; x < spanX; x++)
            {
                int sx = srcX + x;
                if (flip)
                    sx = width - 1 - sx;
                int s = (sy * width + sx) * 3;
                int d = (dstY + y) * outW + dstX + x;
                for (int c = 0; c < 3; c++)
                    chw[c * outH * outW + d] = (hwc[s + c] - mean[c]) / std[c];
            }
        }

        LabelMask? outMask = null;
        if (mask is not null)
        {
            var labels = new byte[outW * outH];
            Array.Fill(labels, options.MaskPad);
            for (int y = 0; y < spanY; y++)
                for (int x = 0; x < spanX; x++)
                {
                    int sx = srcX + x;
                    if (flip)
                        sx = width - 1 - sx;
                    labels[(dstY + y) * outW + dstX + x] = mask.Labels[(srcY + y) * width + sx];
                }
            outMask = new LabelMask(outW, outH, labels);
        }
        return new AugmentedSample(chw, outW, outH, outMask, new PixelBox(dstX, dstY, spanX, spanY), flip, scale);
    }

    /// <summary>Normalises a whole image to CHW floats: (pixel/255 − mean) / std per channel (ImageNet by default).</summary>
    public static float[] Normalize(RgbImage image, IReadOnlyList<float>? mean = null, IReadOnlyList<float>? std = null)
    {
        mean ??= AugmentOptions.ImageNetMean;
        std ??= AugmentOptions.ImageNetStd;
        int plane = image.Width * image.Height;
        var chw = new float[3 * plane];
        for (int p = 0; p < plane; p++)
            for (int c = 0; c < 3; c++)
                chw[c * plane + p] = (image.Pixels[3 * p + c] / 255f - mean[c]) / std[c];
        return chw;
    }

    /// <summary>Mirrors an image left to right.</summary>
    public static RgbImage FlipHorizontal(RgbImage image)
    {
        var dst = new byte[image.Pixels.Length];
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                int s = (y * image.Width + x) * 3, d = (y * image.Width + image.Width - 1 - x) * 3;
                dst[d] = image.Pixels[s];
                dst[d + 1] = image.Pixels[s + 1];
                dst[d + 2] = image.Pixels[s + 2];
            }
        return new RgbImage(image.Width, image.Height, dst);
    }

    /// <summary>
    /// One axis of the random crop. Larger than the crop: a random window of the image. Smaller: the whole
    /// image at a random offset inside the crop (PSA/SEAM's RandomCrop).
    /// </summary>
    private static (int Src, int Dst, int Span) CropAxis(int size, int crop, Random rng)
    {
        if (size >= crop)
            return (rng.Next(size - crop + 1), 0, crop);
        return (0, rng.Next(crop - size + 1), size);
    }

    private static float[] ToUnitFloats(RgbImage image)
    {
        var f = new float[image.Pixels.Length];
        for (int i = 0; i < f.Length; i++)
            f[i] = image.Pixels[i] / 255f;
        return f;
    }

    /// <summary>
    /// torchvision ColorJitter semantics: factors drawn first, then brightness, contrast, saturation and hue
    /// applied in a random order, each clamped to [0, 1]. A zero strength leaves that step out.
    /// </summary>
    internal static void ColourJitter(float[] hwc, AugmentOptions o, Random rng)
    {
        double b = Factor(o.Brightness, rng), c = Factor(o.Contrast, rng), s = Factor(o.Saturation, rng);
        double h = o.Hue > 0 ? (rng.NextDouble() * 2 - 1) * o.Hue : 0;
        var order = new[] { 0, 1, 2, 3 };
        rng.Shuffle(order);
        foreach (int step in order)
        {
            switch (step)
            {
                case 0 when o.Brightness > 0:
                    for (int i = 0; i < hwc.Length; i++)
                        hwc[i] = Math.Clamp(hwc[i] * (float)b, 0f, 1f);
                    break;
                case 1 when o.Contrast > 0:
                    {
                        double sum = 0;
                        for (int i = 0; i < hwc.Length; i += 3)
                            sum += Grey(hwc, i);
                        float m = (float)(sum / (hwc.Length / 3)), k = (float)c;
                        for (int i = 0; i < hwc.Length; i++)
                            hwc[i] = Math.Clamp(k * hwc[i] + (1 - k) * m, 0f, 1f);
                        break;
                    }
                case 2 when o.Saturation > 0:
                    {
                        float k = (float)s;
                        for (int i = 0; i < hwc.Length; i += 3)
                        {
                            float g = Grey(hwc, i);
                            for (int ch = 0; ch < 3; ch++)
                                hwc[i + ch] = Math.Clamp(k * hwc[i + ch] + (1 - k) * g, 0f, 1f);
                        }
                        break;
                    }
                case 3 when o.Hue > 0:
                    for (int i = 0; i < hwc.Length; i += 3)
                        ShiftHue(hwc, i, (float)h);
                    break;
            }
        }
    }

    private static double Factor(double strength, Random rng) =>
        strength > 0 ? Math.Max(0, 1 - strength) + rng.NextDouble() * (1 + strength - Math.Max(0, 1 - strength)) : 1;

    /// <summary>ITU-R 601 luma, as PIL's "L" conversion that torchvision uses.</summary>
    private static float Grey(float[] hwc, int i) => 0.299f * hwc[i] + 0.587f * hwc[i + 1] + 0.114f * hwc[i + 2];

    private static void ShiftHue(float[] hwc, int i, float shift)
    {
        float r = hwc[i], g = hwc[i + 1], b = hwc[i + 2];
        float max = MathF.Max(r, MathF.Max(g, b)), min = MathF.Min(r, MathF.Min(g, b));
        float v = max, delta = max - min;
        if (delta <= 0)
            return; // grey: hue undefined, shifting changes nothing
        float sat = delta / max;
        float hue = max == r ? (g - b) / delta : max == g ? 2 + (b - r) / delta : 4 + (r - g) / delta;
        hue = hue / 6 + shift;
        hue -= MathF.Floor(hue);
        float h6 = hue * 6;
        int sector = (int)h6 % 6;
        float f = h6 - MathF.Floor(h6);
        float p = v * (1 - sat), q = v * (1 - sat * f), t = v * (1 - sat * (1 - f));
        (hwc[i], hwc[i + 1], hwc[i + 2]) = sector switch
        {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
    }
}
