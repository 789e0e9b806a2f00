using EcsNet.Data;

namespace EcsNet.Labels.Cams;

/// <summary>PNG overlays for people: CAM heatmaps and label maps blended over the image.</summary>
public static class Overlays
{
    /// <summary>Writes &lt;id&gt;_cam_&lt;class&gt;.png per present class and &lt;id&gt;_labels.png.</summary>
    public static void WriteCamOverlays(string dir, string id, RgbImage image, CamMaps cams, LabelMask labels)
    {
        for (int k = 0; k < cams.Classes.Count; k++)
            ImageCodec.WriteRgbPng(Path.Combine(dir, $"{id}_cam_{VocClasses.Names[cams.Classes[k]]}.png"), Heatmap(image, cams.Maps[k]));
        ImageCodec.WriteRgbPng(Path.Combine(dir, $"{id}_labels.png"), LabelBlend(image, labels));
    }

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
