using EcsNet.Testing;

namespace EcsNet.Data.Tests;

public class ImageCodecTests
{
    private static LabelMask Ramp(int w, int h)
    {
        var labels = new byte[w * h];
        for (int i = 0; i < labels.Length; i++)
            labels[i] = (byte)(i % 22 == 21 ? 255 : i % 22);
        return new LabelMask(w, h, labels);
    }

    [Fact]
    public void LabelPngRoundTripsIndicesAndCarriesTheVocPalette()
    {
        using var tmp = new TempDir();
        var mask = Ramp(37, 11);
        var path = tmp.File("m.png");
        ImageCodec.WriteLabelPng(path, mask);

        var bytes = File.ReadAllBytes(path);
        var info = IndexedPng.ReadInfo(bytes, path);
        Assert.Equal((37, 11, (byte)8, IndexedPng.ColourPalette), (info.Width, info.Height, info.BitDepth, info.ColourType));
        Assert.Equal(256, info.Palette.Count);
        Assert.Equal(((byte)128, (byte)0, (byte)0, (byte)255), info.Palette[1]);     // aeroplane
        Assert.Equal(((byte)224, (byte)224, (byte)192, (byte)255), info.Palette[255]); // void

        var back = ImageCodec.ReadLabelPng(path);
        Assert.Equal(mask.Labels, back.Labels);
        // Skia itself reads the file we wrote and sees the palette colours.
        var rgb = ImageCodec.ReadRgb(path);
        Assert.Equal(new byte[] { 128, 0, 0 }, rgb.Pixels[3..6]); // pixel 1 has label 1
    }

    [Fact]
    public void CrcMatchesTheStandardCheckValue()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
    }

    [Fact]
    public void Crc32CMatchesTheCastagnoliCheckValue()
    {
        // the check value of RFC 3720's CRC (the CRC catalogue's CRC-32/ISCSI)
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
    }

    [Fact]
    public void GreyPngValuesAreLabels()
    {
        using var tmp = new TempDir();
        var grey = new RgbImage(4, 2, new byte[] { 0, 0, 0, 15, 15, 15, 255, 255, 255, 3, 3, 3, 20, 20, 20, 1, 1, 1, 0, 0, 0, 7, 7, 7 });
        // Encode an 8-bit grey PNG with Skia: an RGB PNG would be colour type 2, so write Gray8 directly.
        var path = tmp.File("g.png");
        File.WriteAllBytes(path, GreyPng(grey));
        Assert.Equal(IndexedPng.ColourGrey, IndexedPng.ReadInfo(File.ReadAllBytes(path), path).ColourType);
        var mask = ImageCodec.ReadLabelPng(path);
        Assert.Equal(new byte[] { 0, 15, 255, 3, 20, 1, 0, 7 }, mask.Labels);
    }

    internal static byte[] GreyPng(RgbImage grey)
    {
        var values = new byte[grey.Width * grey.Height];
        for (int i = 0; i < values.Length; i++)
            values[i] = grey.Pixels[3 * i];
        var info = new SkiaSharp.SKImageInfo(grey.Width, grey.Height, SkiaSharp.SKColorType.Gray8, SkiaSharp.SKAlphaType.Opaque);
        unsafe
        {
            fixed (byte* p = values)
            {
                using var pixmap = new SkiaSharp.SKPixmap(info, (IntPtr)p, grey.Width);
                using var data = pixmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100)!;
                return data.ToArray();
            }
        }
    }

    [Fact]
    public void LabelOutsideVocRangeIsRejectedNamingTheFile()
    {
        using var tmp = new TempDir();
        var path = tmp.File("bad.png");
        ImageCodec.WriteLabelPng(path, new LabelMask(2, 1, new byte[] { 0, 42 }));
        var e = Assert.Throws<BadInputException>(() => ImageCodec.ReadLabelPng(path));
        Assert.Equal(path, e.Subject);
        Assert.Contains("42", e.Problem);
    }

    [Fact]
    public void RgbPngRoundTripsExactlyAndJpegApproximately()
    {
        using var tmp = new TempDir();
        var rng = new Random(5);
        var px = new byte[24 * 16 * 3];
        for (int i = 0; i < px.Length; i++)
            px[i] = (byte)((i / 3 % 24) * 10 + (i % 3) * 5); // smooth, JPEG-friendly
        var img = new RgbImage(24, 16, px);
        ImageCodec.WriteRgbPng(tmp.File("a.png"), img);
        Assert.Equal(img.Pixels, ImageCodec.ReadRgb(tmp.File("a.png")).Pixels);

        ImageCodec.WriteRgbJpeg(tmp.File("a.jpg"), img, 95);
        var jpg = ImageCodec.ReadRgb(tmp.File("a.jpg"));
        Assert.Equal((24, 16), (jpg.Width, jpg.Height));
        double mae = img.Pixels.Zip(jpg.Pixels, (a, b) => Math.Abs(a - b)).Average();
        Assert.True(mae < 4, $"JPEG mean abs error {mae}");
        Assert.Equal((24, 16), ImageCodec.ReadSize(tmp.File("a.jpg")));
    }

    [Fact]
    public void TruncatedJpegIsBadInputNamingTheFile()
    {
        using var tmp = new TempDir();
        var img = new RgbImage(64, 48, Enumerable.Range(0, 64 * 48 * 3).Select(i => (byte)(i * 7)).ToArray());
        var path = tmp.File("t.jpg");
        ImageCodec.WriteRgbJpeg(path, img);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<BadInputException>(() => ImageCodec.ReadRgb(path));
        Assert.Equal(path, e.Subject);
        Assert.Contains("truncated", e.Problem);
    }

    [Fact]
    public void GarbageAndMissingFilesAreBadInput()
    {
        using var tmp = new TempDir();
        var path = tmp.File("g.jpg");
        File.WriteAllBytes(path, Enumerable.Range(0, 500).Select(i => (byte)(i * 31 + 7)).ToArray());
        var garbage = Assert.Throws<BadInputException>(() => ImageCodec.ReadRgb(path));
        Assert.Contains("not a readable image", garbage.Message);
        var missing = Assert.Throws<BadInputException>(() => ImageCodec.ReadRgb(tmp.File("none.jpg")));
        Assert.Equal("file not found", missing.Problem);
        var notPng = Assert.Throws<BadInputException>(() => ImageCodec.ReadLabelPng(path));
        Assert.Contains("not a PNG", notPng.Problem);
    }

    [RealDataFact]
    public void RealVocMaskReadsAsIndicesWithTheKnownHistogram()
    {
        var voc = Path.Combine(RealVocSample.Root!, "VOCdevkit", "VOC2012");
        var mask = ImageCodec.ReadLabelPng(Path.Combine(voc, "SegmentationClass", "2007_000129.png"));
        var hist = mask.Labels.GroupBy(v => v).ToDictionary(g => (int)g.Key, g => g.Count());
        // The VOC ground truth's pixel counts for this mask (an independent grey-level copy of it has the same).
        Assert.Equal(new Dictionary<int, int> { [0] = 54389, [2] = 34183, [15] = 61143, [255] = 17285 }, hist);
        var image = ImageCodec.ReadRgb(Path.Combine(voc, "JPEGImages", "2007_000129.jpg"));
        Assert.Equal((334, 500), (image.Width, image.Height));
    }
}
