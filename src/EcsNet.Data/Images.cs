namespace EcsNet.Data;

/// <summary>An 8-bit RGB image, row-major, interleaved R,G,B.</summary>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    public byte this[int y, int x, int c] => Pixels[(y * Width + x) * 3 + c];
}

/// <summary>A per-pixel label map: 0..20 classes, 255 ignore.</summary>
public sealed record LabelMask(int Width, int Height, byte[] Labels)
{
    public byte this[int y, int x] => Labels[y * Width + x];
}
