using System.Runtime.InteropServices;
using SkiaSharp;

namespace EcsNet.Data;

/// <summary>
/// Reads and writes the image files of a VOC tree. Pixels are decoded and encoded by SkiaSharp; only the
/// PNG container facts Skia hides (the palette, the colour type) and the indexed-PNG writer are ours
/// (<see cref="IndexedPng"/>). Every failure on a file is a <see cref="BadInputException"/> naming it.
/// EXIF orientation is not applied (VOC JPEGs carry none).
/// </summary>
public static class ImageCodec
{
    /// <summary>Images larger than this are refused rather than allocated (a corrupt header can claim anything).</summary>
    public const long MaxPixels = 1L << 28;

    /// <summary>Decodes a JPEG or PNG (any format Skia reads) to 8-bit RGB.</summary>
    public static RgbImage ReadRgb(string path) => DecodeRgb(ReadBytes(path), path);

    /// <summary>Decodes encoded image bytes to 8-bit RGB; <paramref name="name"/> names the source in errors.</summary>
    public static RgbImage DecodeRgb(byte[] data, string name)
    {
        var rgba = DecodeRgba(data, name, out int width, out int height);
        var rgb = new byte[width * height * 3];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            rgb[i] = rgba[j];
            rgb[i + 1] = rgba[j + 1];
            rgb[i + 2] = rgba[j + 2];
        }
        return new RgbImage(width, height, rgb);
    }

    /// <summary>Width and height from the file's header, without decoding the pixels.</summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        using var codec = CreateCodec(ReadBytes(path), path);
        return (codec.Info.Width, codec.Info.Height);
    }

    /// <summary>
    /// Reads a label map: an indexed PNG whose palette <em>indices</em> are the labels (the VOC
    /// SegmentationClass convention; colours are ignored), an 8-bit grey PNG whose values are the labels,
    /// or an RGB(A) PNG whose colours are VOC palette colours. Labels must be 0..20 or 255.
    /// </summary>
    public static LabelMask ReadLabelPng(string path) => DecodeLabelPng(ReadBytes(path), path);

    /// <summary>Decodes label-map PNG bytes; see <see cref="ReadLabelPng"/>.</summary>
    public static LabelMask DecodeLabelPng(byte[] data, string name)
    {
        var info = IndexedPng.ReadInfo(data, name);
        LabelMask mask = info.ColourType switch
        {
            IndexedPng.ColourPalette => DecodeIndexed(data, name, info),
            IndexedPng.ColourGrey when info.BitDepth == 8 => DecodeGrey(data, name),
            IndexedPng.ColourRgb or IndexedPng.ColourRgba => DecodeVocColours(data, name),
            _ => throw new BadInputException(name,
                $"unsupported label PNG (colour type {info.ColourType}, bit depth {info.BitDepth}); expected an indexed or 8-bit grey PNG"),
        };
        CheckLabelValues(mask, name);
        return mask;
    }

    /// <summary>Writes a label map as an indexed PNG carrying the VOC palette (as VOC's SegmentationClass files).</summary>
    public static void WriteLabelPng(string path, LabelMask mask) =>
        WriteFile(path, EncodeLabelPng(mask));

    /// <summary>Encodes a label map as an indexed PNG with the 256-entry VOC palette.</summary>
    public static byte[] EncodeLabelPng(LabelMask mask)
    {
        CheckShape(mask.Width, mask.Height, mask.Labels.Length, 1);
        return IndexedPng.Encode(mask.Width, mask.Height, mask.Labels, VocClasses.Palette);
    }

    /// <summary>Writes an RGB image as a baseline JPEG (Skia's encoder).</summary>
    public static void WriteRgbJpeg(string path, RgbImage image, int quality = 90) =>
        WriteFile(path, EncodeRgb(image, SKEncodedImageFormat.Jpeg, Math.Clamp(quality, 1, 100)));

    /// <summary>Writes an RGB image as a lossless PNG (Skia's encoder).</summary>
    public static void WriteRgbPng(string path, RgbImage image) =>
        WriteFile(path, EncodeRgb(image, SKEncodedImageFormat.Png, 100));

    private static byte[] EncodeRgb(RgbImage image, SKEncodedImageFormat format, int quality)
    {
        CheckShape(image.Width, image.Height, image.Pixels.Length, 3);
        var rgba = new byte[image.Width * image.Height * 4];
        for (int i = 0, j = 0; i < image.Pixels.Length; i += 3, j += 4)
        {
            rgba[j] = image.Pixels[i];
            rgba[j + 1] = image.Pixels[i + 1];
            rgba[j + 2] = image.Pixels[i + 2];
            rgba[j + 3] = 255;
        }
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var handle = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        try
        {
            using var pixmap = new SKPixmap(info, handle.AddrOfPinnedObject(), info.RowBytes);
            using var encoded = pixmap.Encode(format, quality)
                ?? throw new InvalidOperationException($"Skia could not encode a {image.Width}x{image.Height} image as {format}");
            return encoded.ToArray();
        }
        finally
        {
            handle.Free();
        }
    }

    private static LabelMask DecodeIndexed(byte[] data, string name, IndexedPng.Info info)
    {
        if (info.Palette.Count == 0)
            throw new BadInputException(name, "indexed PNG without a PLTE palette");
        // Colour → index; the lowest index wins when a palette repeats a colour (zero-padded palettes
        // repeat black after the used entries, and index 0 is the one in use).
        var lookup = new Dictionary<uint, byte>();
        for (int i = info.Palette.Count - 1; i >= 0; i--)
            lookup[Pack(info.Palette[i])] = (byte)i;

        var rgba = DecodeRgba(data, name, out int width, out int height);
        var labels = new byte[width * height];
        uint lastColour = 0;
        byte lastIndex = 0;
        bool haveLast = false;
        for (int p = 0; p < labels.Length; p++)
        {
            uint colour = (uint)(rgba[4 * p] | rgba[4 * p + 1] << 8 | rgba[4 * p + 2] << 16 | rgba[4 * p + 3] << 24);
            if (!haveLast || colour != lastColour)
            {
                if (!lookup.TryGetValue(colour, out lastIndex))
                    throw new BadInputException(name, $"pixel ({p % width},{p / width}) decoded to a colour that is not in the palette");
                lastColour = colour;
                haveLast = true;
            }
            labels[p] = lastIndex;
        }
        return new LabelMask(width, height, labels);
    }

    private static LabelMask DecodeGrey(byte[] data, string name)
    {
        using var codec = CreateCodec(data, name);
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Gray8, SKAlphaType.Opaque);
        var labels = new byte[info.Width * info.Height];
        Decode(codec, info, labels, name);
        return new LabelMask(info.Width, info.Height, labels);
    }

    private static LabelMask DecodeVocColours(byte[] data, string name)
    {
        var lookup = new Dictionary<uint, byte>();
        for (int c = 0; c < VocClasses.Count; c++)
            lookup[Pack(VocClasses.Palette[c])] = (byte)c;
        lookup[Pack(VocClasses.Palette[VocClasses.Ignore])] = VocClasses.Ignore;

        var rgba = DecodeRgba(data, name, out int width, out int height);
        var labels = new byte[width * height];
        for (int p = 0; p < labels.Length; p++)
        {
            uint colour = (uint)(rgba[4 * p] | rgba[4 * p + 1] << 8 | rgba[4 * p + 2] << 16 | 255 << 24);
            if (!lookup.TryGetValue(colour, out labels[p]))
                throw new BadInputException(name,
                    $"pixel ({p % width},{p / width}) has colour ({rgba[4 * p]},{rgba[4 * p + 1]},{rgba[4 * p + 2]}), which is not a VOC palette colour");
        }
        return new LabelMask(width, height, labels);
    }

    private static void CheckLabelValues(LabelMask mask, string name)
    {
        for (int p = 0; p < mask.Labels.Length; p++)
        {
            byte v = mask.Labels[p];
            if (v >= VocClasses.Count && v != VocClasses.Ignore)
                throw new BadInputException(name,
                    $"label {v} at pixel ({p % mask.Width},{p / mask.Width}) is neither a VOC class (0..20) nor ignore (255)");
        }
    }

    private static uint Pack((byte R, byte G, byte B, byte A) c) => (uint)(c.R | c.G << 8 | c.B << 16 | c.A << 24);

    private static uint Pack((byte R, byte G, byte B) c) => Pack((c.R, c.G, c.B, (byte)255));

    private static byte[] DecodeRgba(byte[] data, string name, out int width, out int height)
    {
        using var codec = CreateCodec(data, name);
        // No colour space on the destination: Skia then leaves the stored values untouched (no gamma/ICC
        // conversion), which label maps need and which matches how PIL/OpenCV read VOC photos.
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[info.BytesSize];
        Decode(codec, info, rgba, name);
        (width, height) = (info.Width, info.Height);
        return rgba;
    }

    private static SKCodec CreateCodec(byte[] data, string name)
    {
        if (data.Length == 0)
            throw new BadInputException(name, "empty file");
        var codec = SKCodec.Create(new MemoryStream(data, writable: false), out var result);
        if (codec is null)
            throw new BadInputException(name, result == SKCodecResult.IncompleteInput
                ? "truncated file (ends inside the image header)"
                : $"not a readable image ({Describe(result)})");
        long pixels = (long)codec.Info.Width * codec.Info.Height;
        if (codec.Info.Width <= 0 || codec.Info.Height <= 0 || pixels > MaxPixels)
        {
            codec.Dispose();
            throw new BadInputException(name, $"implausible image size {codec.Info.Width}x{codec.Info.Height}");
        }
        return codec;
    }

    private static unsafe void Decode(SKCodec codec, SKImageInfo info, byte[] target, string name)
    {
        SKCodecResult result;
        fixed (byte* p = target)
            result = codec.GetPixels(info, (IntPtr)p, info.RowBytes, new SKCodecOptions());
        if (result != SKCodecResult.Success)
            throw new BadInputException(name, $"cannot decode pixels: {Describe(result)}");
    }

    private static string Describe(SKCodecResult result) => result switch
    {
        SKCodecResult.IncompleteInput => "truncated file (image data ends early)",
        SKCodecResult.ErrorInInput => "corrupt image data",
        SKCodecResult.InvalidInput or SKCodecResult.Unimplemented => "unrecognised or unsupported image format",
        _ => $"decoder result {result}",
    };

    private static byte[] ReadBytes(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new BadInputException(path, "file not found");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException(path, $"cannot read file ({e.Message})", e);
        }
    }

    // Atomic, so that a reader (or a second writer of the same job) never sees half a file.
    private static void WriteFile(string path, byte[] bytes) => AtomicFile.WriteAllBytes(path, bytes);

    private static void CheckShape(int width, int height, int length, int channels)
    {
        if (width <= 0 || height <= 0 || length != width * height * channels)
            throw new ArgumentException($"buffer of {length} bytes does not hold a {width}x{height}x{channels} image");
    }
}
