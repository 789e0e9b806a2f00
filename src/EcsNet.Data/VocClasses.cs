namespace EcsNet.Data;

/// <summary>PASCAL VOC 2012 class order (docs/METHOD.md §0): background is index 0, 255 is void/ignore.</summary>
public static class VocClasses
{
    public const int Count = 21;
    public const int Foreground = 20;
    public const byte Background = 0;
    public const byte Ignore = 255;

    public static readonly IReadOnlyList<string> Names = new[]
    {
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    };

    /// <summary>Index of a class name (0..20), or -1 when the name is not a VOC class.</summary>
    public static int IndexOf(string name) => NameToIndex.TryGetValue(name.Trim(), out var i) ? i : -1;

    private static readonly Dictionary<string, int> NameToIndex =
        Names.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i, StringComparer.Ordinal);

    /// <summary>The standard VOC colour map (bit-interleaved), 256 RGB entries; index 255 is (224,224,192).</summary>
    public static readonly IReadOnlyList<(byte R, byte G, byte B)> Palette = BuildPalette();

    private static (byte, byte, byte)[] BuildPalette()
    {
        var p = new (byte, byte, byte)[256];
        for (int i = 0; i < 256; i++)
        {
            int r = 0, g = 0, b = 0, c = i;
            for (int j = 0; j < 8; j++)
            {
                r |= ((c >> 0) & 1) << (7 - j);
                g |= ((c >> 1) & 1) << (7 - j);
                b |= ((c >> 2) & 1) << (7 - j);
                c >>= 3;
            }
            p[i] = ((byte)r, (byte)g, (byte)b);
        }
        return p;
    }
}
