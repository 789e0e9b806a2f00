using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace EcsNet.Data;

/// <summary>
/// The PNG container facts SkiaSharp does not expose: the header fields and the palette of an indexed PNG
/// (so a decoded colour can be mapped back to its palette index), and writing an indexed (colour type 3)
/// PNG, which Skia's encoder cannot produce. Pixel decoding itself is left to SkiaSharp.
/// </summary>
public static class IndexedPng
{
    private static readonly byte[] Signature = { 137, 80, 78, 71, 13, 10, 26, 10 };

    /// <summary>IHDR colour types (PNG spec §11.2.2).</summary>
    public const byte ColourGrey = 0, ColourRgb = 2, ColourPalette = 3, ColourGreyAlpha = 4, ColourRgba = 6;

    /// <summary>Header fields and palette of a PNG file.</summary>
    /// <param name="Palette">PLTE entries as RGBA (alpha from tRNS, 255 where absent); empty when no PLTE.</param>
    public sealed record Info(int Width, int Height, byte BitDepth, byte ColourType, IReadOnlyList<(byte R, byte G, byte B, byte A)> Palette);

    public static bool HasSignature(ReadOnlySpan<byte> data) => data.Length >= 8 && data[..8].SequenceEqual(Signature);

    /// <summary>Reads IHDR, PLTE and tRNS; throws <see cref="BadInputException"/> naming <paramref name="name"/> when the container is malformed.</summary>
    public static Info ReadInfo(ReadOnlySpan<byte> data, string name)
    {
        if (!HasSignature(data))
            throw new BadInputException(name, "not a PNG file (bad signature)");
        int pos = 8;
        Info? header = null;
        var palette = new List<(byte, byte, byte, byte)>();
        ReadOnlySpan<byte> alpha = default;
        while (pos + 8 <= data.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(data[pos..]);
            string type = Encoding.ASCII.GetString(data.Slice(pos + 4, 4));
            if (length < 0 || pos + 12L + length > data.Length)
                throw new BadInputException(name, $"truncated PNG (chunk {type} runs past the end of the file)");
            var body = data.Slice(pos + 8, length);
            switch (type)
            {
                case "IHDR" when length >= 13:
                    header = new Info(
                        BinaryPrimitives.ReadInt32BigEndian(body), BinaryPrimitives.ReadInt32BigEndian(body[4..]),
                        body[8], body[9], palette);
                    break;
                case "PLTE":
                    for (int i = 0; i + 2 < length; i += 3)
                        palette.Add((body[i], body[i + 1], body[i + 2], 255));
                    break;
                case "tRNS":
                    alpha = body;
                    break;
                case "IDAT":
                case "IEND":
                    pos = data.Length; // everything we need precedes the image data
                    continue;
            }
            pos += 12 + length;
        }
        if (header is null)
            throw new BadInputException(name, "PNG without an IHDR header");
        if (header.ColourType == ColourPalette)
            for (int i = 0; i < Math.Min(alpha.Length, palette.Count); i++)
                palette[i] = (palette[i].Item1, palette[i].Item2, palette[i].Item3, alpha[i]);
        return header;
    }

    /// <summary>
    /// Encodes an 8-bit indexed PNG: IHDR (colour type 3), PLTE with every palette entry, one zlib IDAT
    /// (filter type None on every row: label maps are flat, so deflate does the work), IEND.
    /// </summary>
    public static byte[] Encode(int width, int height, ReadOnlySpan<byte> indices, IReadOnlyList<(byte R, byte G, byte B)> palette)
    {
        if (width <= 0 || height <= 0 || indices.Length != (long)width * height)
            throw new ArgumentException($"indices hold {indices.Length} values, expected {width}x{height}");
        if (palette.Count is 0 or > 256)
            throw new ArgumentException("a PNG palette has 1..256 entries", nameof(palette));

        using var png = new MemoryStream();
        png.Write(Signature);

        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], height);
        ihdr[8] = 8;             // bit depth
        ihdr[9] = ColourPalette; // colour type
        ihdr[10] = ihdr[11] = ihdr[12] = 0; // deflate, adaptive filtering, no interlace
        WriteChunk(png, "IHDR", ihdr);

        var plte = new byte[palette.Count * 3];
        for (int i = 0; i < palette.Count; i++)
            (plte[3 * i], plte[3 * i + 1], plte[3 * i + 2]) = palette[i];
        WriteChunk(png, "PLTE", plte);

        using (var idat = new MemoryStream())
        {
            using (var z = new ZLibStream(idat, CompressionLevel.Optimal, leaveOpen: true))
            {
                for (int y = 0; y < height; y++)
                {
                    z.WriteByte(0); // filter: None
                    z.Write(indices.Slice(y * width, width));
                }
            }
            WriteChunk(png, "IDAT", idat.GetBuffer().AsSpan(0, (int)idat.Length));
        }
        WriteChunk(png, "IEND", ReadOnlySpan<byte>.Empty);
        return png.ToArray();
    }

    private static void WriteChunk(Stream s, string type, ReadOnlySpan<byte> body)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, body.Length);
        s.Write(word);
        Span<byte> typeBytes = stackalloc byte[4];
        Encoding.ASCII.GetBytes(type, typeBytes);
        s.Write(typeBytes);
        s.Write(body);
        uint crc = Crc32.Update(Crc32.Update(0xFFFFFFFFu, typeBytes), body) ^ 0xFFFFFFFFu;
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        s.Write(word);
    }
}
