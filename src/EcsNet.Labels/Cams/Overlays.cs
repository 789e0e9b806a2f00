using EcsNet.Data;

namespace EcsNet.Labels.Cams;

/// <summary>One line of an overlay's legend: a colour swatch (or the heatmap's colour scale) and a name.</summary>
public sealed record LegendEntry(string Name, (byte R, byte G, byte B) Colour, bool ColourScale = false)
{
    /// <summary>The heatmap's scale, low (blue) to high (red), with a caption.</summary>
    public static LegendEntry HeatScale(string caption) => new(caption, (0, 0, 0), ColourScale: true);
}

/// <summary>
/// PNG overlays for people: CAM heatmaps and label maps blended over the image, enlarged to
/// <see cref="OverlayOptions.LongEdge"/> and with a legend naming the classes drawn.
/// </summary>
public static class Overlays
{
    /// <summary>Writes &lt;id&gt;_cam_&lt;class&gt;.png per present class and &lt;id&gt;_labels.png.</summary>
    public static void WriteCamOverlays(string dir, string id, RgbImage image, CamMaps cams, LabelMask labels, OverlayOptions? options = null)
    {
        options ??= new OverlayOptions();
        for (int k = 0; k < cams.Classes.Count; k++)
        {
            var name = VocClasses.Names[cams.Classes[k]];
            var legend = new[] { LegendEntry.HeatScale($"{name} cam, 0 to 1") };
            ImageCodec.WriteRgbPng(Path.Combine(dir, $"{id}_cam_{name}.png"), Present(Heatmap(image, cams.Maps[k]), legend, options, smooth: true));
        }
        WriteLabelOverlay(Path.Combine(dir, $"{id}_labels.png"), image, labels, options);
    }

    /// <summary>Writes the label map blended over the image (<see cref="LabelBlend"/>), enlarged, with the legend of its classes.</summary>
    public static void WriteLabelOverlay(string path, RgbImage image, LabelMask labels, OverlayOptions? options = null) =>
        ImageCodec.WriteRgbPng(path, Present(LabelBlend(image, labels), LabelLegend(labels), options ?? new OverlayOptions(), smooth: false));

    /// <summary>The foreground classes a label map paints (in class order), each with its VOC palette colour.</summary>
    public static IReadOnlyList<LegendEntry> LabelLegend(LabelMask labels)
    {
        var present = new bool[VocClasses.Count];
        foreach (var l in labels.Labels)
            if (l < VocClasses.Count)
                present[l] = true;
        var entries = new List<LegendEntry>();
        for (int c = 1; c < VocClasses.Count; c++)
            if (present[c])
                entries.Add(new LegendEntry(VocClasses.Names[c], VocClasses.Palette[c]));
        if (entries.Count == 0)
            entries.Add(new LegendEntry("background only", VocClasses.Palette[VocClasses.Background]));
        return entries;
    }

    /// <summary>
    /// <paramref name="overlay"/> enlarged to the options' long edge (bilinear when <paramref name="smooth"/>, else
    /// nearest neighbour, which keeps label edges exact) with the legend strip under it.
    /// </summary>
    public static RgbImage Present(RgbImage overlay, IReadOnlyList<LegendEntry> legend, OverlayOptions options, bool smooth)
    {
        options.Validate();
        var large = Enlarge(overlay, options.LongEdge, smooth);
        return options.Legend && legend.Count > 0 ? WithLegend(large, legend) : large;
    }

    /// <summary>The image scaled up so its long edge is <paramref name="longEdge"/>; unchanged when already that large or when 0.</summary>
    public static RgbImage Enlarge(RgbImage image, int longEdge, bool smooth)
    {
        int longest = Math.Max(image.Width, image.Height);
        if (longEdge <= longest)
            return image;
        double factor = (double)longEdge / longest;
        int width = Math.Max(1, (int)Math.Round(image.Width * factor));
        int height = Math.Max(1, (int)Math.Round(image.Height * factor));
        if (smooth)
            return Resize.Bilinear(image, width, height);
        var px = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            int sy = Math.Min(image.Height - 1, (int)(y / factor));
            for (int x = 0; x < width; x++)
            {
                int sx = Math.Min(image.Width - 1, (int)(x / factor));
                Array.Copy(image.Pixels, (sy * image.Width + sx) * 3, px, (y * width + x) * 3, 3);
            }
        }
        return new RgbImage(width, height, px);
    }

    private static readonly (byte R, byte G, byte B) LegendBackground = (24, 24, 24);
    private static readonly (byte R, byte G, byte B) LegendText = (240, 240, 240);
    private static readonly (byte R, byte G, byte B) SwatchBorder = (160, 160, 160);

    /// <summary>
    /// The image with a dark strip below it: one swatch and name per entry, laid out in rows as wide as the image.
    /// Font pixels are 2×2 image pixels from a 384-px long edge up (1×1 below, or when the longest name would not fit).
    /// </summary>
    public static RgbImage WithLegend(RgbImage image, IReadOnlyList<LegendEntry> legend)
    {
        int scale = Math.Max(1, Math.Max(image.Width, image.Height) / 192);
        while (scale > 1 && legend.Max(e => EntryWidth(e, scale)) + 2 * Pad(scale) > image.Width)
            scale--;
        int pad = Pad(scale), line = (BitmapFont.GlyphHeight + 4) * scale;

        // Flow the entries into rows.
        var placed = new List<(LegendEntry Entry, int Left, int Row)>();
        int x = pad, row = 0;
        foreach (var e in legend)
        {
            int w = EntryWidth(e, scale);
            if (x > pad && x + w > image.Width - pad)
            {
                row++;
                x = pad;
            }
            placed.Add((e, x, row));
            x += w + EntryGap(scale);
        }
        int strip = pad + (row + 1) * line + pad - 4 * scale;
        var px = new byte[image.Width * (image.Height + strip) * 3];
        Array.Copy(image.Pixels, px, image.Pixels.Length);
        var result = new RgbImage(image.Width, image.Height + strip, px);
        BitmapFont.Fill(result, 0, image.Height, image.Width, strip, LegendBackground);
        foreach (var (e, left, r) in placed)
        {
            int top = image.Height + pad + r * line;
            int box = BitmapFont.GlyphHeight * scale, boxWidth = SwatchWidth(e, scale);
            BitmapFont.Fill(result, left, top, boxWidth, box, SwatchBorder);
            if (e.ColourScale)
                for (int i = 0; i < boxWidth - 2; i++)
                    BitmapFont.Fill(result, left + 1 + i, top + 1, 1, box - 2, Jet((float)i / Math.Max(1, boxWidth - 3)));
            else
                BitmapFont.Fill(result, left + 1, top + 1, boxWidth - 2, box - 2, e.Colour);
            BitmapFont.Draw(result, e.Name, left + boxWidth + 3 * scale, top, scale, LegendText);
        }
        return result;
    }

    private static int Pad(int scale) => 4 * scale;

    private static int EntryGap(int scale) => 10 * scale;

    private static int SwatchWidth(LegendEntry e, int scale) => (e.ColourScale ? 4 : 1) * BitmapFont.GlyphHeight * scale;

    private static int EntryWidth(LegendEntry e, int scale) => SwatchWidth(e, scale) + 3 * scale + BitmapFont.Measure(e.Name, scale);

    /// <summary>Jet-coloured map (0..1) blended 50/50 with the image.</summary>
    public static RgbImage Heatmap(RgbImage image, float[] map, double alpha = 0.5)
    {
        if (map.Length != image.Width * image.Height)
            throw new ArgumentException($"map has {map.Length} values, image has {image.Width * image.Height} pixels");
        var px = new byte[image.Pixels.Length];
        for (int i = 0; i < map.Length; i++)
        {
            var (r, g, b) = Jet(Math.Clamp(map[i], 0f, 1f));
            px[i * 3] = Blend(image.Pixels[i * 3], r, alpha);
            px[i * 3 + 1] = Blend(image.Pixels[i * 3 + 1], g, alpha);
            px[i * 3 + 2] = Blend(image.Pixels[i * 3 + 2], b, alpha);
        }
        return new RgbImage(image.Width, image.Height, px);
    }

    /// <summary>VOC palette colours of a label map blended with the image (background and ignore left as is).</summary>
    public static RgbImage LabelBlend(RgbImage image, LabelMask labels, double alpha = 0.6)
    {
        if (labels.Width != image.Width || labels.Height != image.Height)
            throw new ArgumentException($"label map is {labels.Width}×{labels.Height}, image is {image.Width}×{image.Height}");
        var px = (byte[])image.Pixels.Clone();
        for (int i = 0; i < labels.Labels.Length; i++)
        {
            byte l = labels.Labels[i];
            if (l == VocClasses.Background || l == VocClasses.Ignore) continue;
            var (r, g, b) = VocClasses.Palette[l];
            px[i * 3] = Blend(px[i * 3], r, alpha);
            px[i * 3 + 1] = Blend(px[i * 3 + 1], g, alpha);
            px[i * 3 + 2] = Blend(px[i * 3 + 2], b, alpha);
        }
        return new RgbImage(image.Width, image.Height, px);
    }

    private static byte Blend(byte a, byte b, double alpha) => (byte)Math.Round(a * (1 - alpha) + b * alpha);

    private static (byte R, byte G, byte B) Jet(float v)
    {
        static byte C(double x) => (byte)Math.Round(255 * Math.Clamp(x, 0, 1));
        return (C(1.5 - Math.Abs(4 * v - 3)), C(1.5 - Math.Abs(4 * v - 2)), C(1.5 - Math.Abs(4 * v - 1)));
    }
}
