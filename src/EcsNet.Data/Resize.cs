namespace EcsNet.Data;

/// <summary>Image and mask resampling: bilinear (antialiased when shrinking) for photos, nearest neighbour for labels.</summary>
public static class Resize
{
    /// <summary>
    /// Bilinear resize with pixel-centre alignment (align_corners = false). When shrinking, the triangle
    /// filter widens with the scale factor (as PIL's BILINEAR does), so a downscaled photo does not alias.
    /// </summary>
    public static RgbImage Bilinear(RgbImage src, int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"target size {width}x{height} must be positive");
        if (width == src.Width && height == src.Height)
            return src with { Pixels = (byte[])src.Pixels.Clone() };

        var cols = Contributions(src.Width, width);
        var rows = Contributions(src.Height, height);

        // Horizontal pass: src.Height x width x 3 floats.
        var mid = new float[src.Height * width * 3];
        for (int y = 0; y < src.Height; y++)
        {
            int srcRow = y * src.Width * 3, midRow = y * width * 3;
            for (int x = 0; x < width; x++)
            {
                var (first, weights) = cols[x];
                float r = 0, g = 0, b = 0;
                for (int k = 0; k < weights.Length; k++)
                {
                    int p = srcRow + (first + k) * 3;
                    float w = weights[k];
                    r += w * src.Pixels[p];
                    g += w * src.Pixels[p + 1];
                    b += w * src.Pixels[p + 2];
                }
                int q = midRow + x * 3;
                mid[q] = r;
                mid[q + 1] = g;
                mid[q + 2] = b;
            }
        }

        // Vertical pass into bytes.
        var dst = new byte[width * height * 3];
        int stride = width * 3;
        for (int y = 0; y < height; y++)
        {
            var (first, weights) = rows[y];
            int dstRow = y * stride;
            for (int i = 0; i < stride; i++)
            {
                float v = 0;
                for (int k = 0; k < weights.Length; k++)
                    v += weights[k] * mid[(first + k) * stride + i];
                dst[dstRow + i] = (byte)Math.Clamp((int)MathF.Round(v), 0, 255);
            }
        }
        return new RgbImage(width, height, dst);
    }

    /// <summary>Nearest-neighbour resize of a label map: every output pixel copies the label under its centre.</summary>
    public static LabelMask Nearest(LabelMask src, int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"target size {width}x{height} must be positive");
        var xs = NearestIndex(src.Width, width);
        var ys = NearestIndex(src.Height, height);
        var dst = new byte[width * height];
        for (int y = 0; y < height; y++)
        {
            int srcRow = ys[y] * src.Width;
            for (int x = 0; x < width; x++)
                dst[y * width + x] = src.Labels[srcRow + xs[x]];
        }
        return new LabelMask(width, height, dst);
    }

    private static int[] NearestIndex(int src, int dst)
    {
        var index = new int[dst];
        double scale = (double)src / dst;
        for (int i = 0; i < dst; i++)
            index[i] = Math.Min(src - 1, (int)Math.Floor((i + 0.5) * scale));
        return index;
    }

    /// <summary>For each output position: the first source pixel and the normalised triangle-filter weights.</summary>
    private static (int First, float[] Weights)[] Contributions(int src, int dst)
    {
        double scale = (double)src / dst;
        double support = Math.Max(scale, 1.0); // filter radius in source pixels
        var result = new (int, float[])[dst];
        for (int i = 0; i < dst; i++)
        {
            double centre = (i + 0.5) * scale;
            int lo = Math.Max(0, (int)Math.Floor(centre - support));
            int hi = Math.Min(src, (int)Math.Ceiling(centre + support));
            double total = 0;
            var raw = new double[hi - lo];
            for (int j = lo; j < hi; j++)
            {
                raw[j - lo] = Math.Max(0, 1 - Math.Abs((j + 0.5 - centre) / support));
                total += raw[j - lo];
            }
            // Trim zero-weight ends so the inner loops stay short.
            int a = 0, b = raw.Length;
            while (a < b && raw[a] == 0) a++;
            while (b > a && raw[b - 1] == 0) b--;
            int first = lo + a;
            var w = new float[b - a];
            for (int k = 0; k < w.Length; k++)
                w[k] = (float)(raw[a + k] / total);
            result[i] = (first, w);
        }
        return result;
    }
}
