using System.Text.Json;
using EcsNet.Data;
using SkiaSharp;

namespace EcsNet.Cli.Tests;

public sealed class CrfCommandTests : IDisposable
{
    private const int W = 48, H = 36;
    private readonly string root = Path.Combine(Path.GetTempPath(), "ecsnet-crf-" + Guid.NewGuid().ToString("N"));

    public CrfCommandTests()
    {
        // One image: top-left blue "cat", top-right orange "dog", a grey band at the bottom.
        Directory.CreateDirectory(Path.Combine(root, "JPEGImages"));
        Directory.CreateDirectory(Path.Combine(root, "Annotations"));
        Directory.CreateDirectory(Path.Combine(root, "ImageSets", "Segmentation"));
        Directory.CreateDirectory(Path.Combine(root, "cams"));
        using (var bitmap = new SKBitmap(W, H))
        {
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    bitmap.SetPixel(x, y, Region(x, y) switch { 8 => new SKColor(30, 40, 200), 12 => new SKColor(230, 140, 30), _ => new SKColor(128, 128, 128) });
            using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 95);
            File.WriteAllBytes(Path.Combine(root, "JPEGImages", "img1.jpg"), data.ToArray());
        }
        File.WriteAllText(Path.Combine(root, "Annotations", "img1.xml"),
            "<annotation><filename>img1.jpg</filename><object><name>cat</name></object><object><name>dog</name></object><object><name>cat</name></object></annotation>");
        File.WriteAllText(Path.Combine(root, "ImageSets", "Segmentation", "train.txt"), "img1\n");

        // CAMs: the right class scores 0.6 in its region, 0.1 elsewhere; a wrong class (bird, not in the image) scores 1 everywhere.
        var cam = new float[20 * H * W];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                int p = y * W + x;
                cam[(8 - 1) * H * W + p] = Region(x, y) == 8 ? 0.6f : 0.1f;
                cam[(12 - 1) * H * W + p] = Region(x, y) == 12 ? 0.6f : 0.1f;
                cam[(3 - 1) * H * W + p] = 1f;
            }
        NpyFile.Write(Path.Combine(root, "cams", "img1.npy"), cam, 20, H, W);
    }

    public void Dispose()
    {
        try { Directory.Delete(root, recursive: true); } catch (IOException) { }
    }

    private static int Region(int x, int y) => y >= 26 ? 0 : x < W / 2 ? 8 : 12;

    [Theory]
    [InlineData("--bg-threshold", "0.2")]
    [InlineData("--bg-alpha", "4")]
    public async Task WritesLabelMapsWithBackgroundAndImageClasses(string bgOption, string bgValue)
    {
        var (code, stdout, stderr) = await Run("crf", "--voc", root, "--split", "train", "--cams", Path.Combine(root, "cams"), "--out", Path.Combine(root, "out"), bgOption, bgValue);
        Assert.True(code == 0, stderr);
        Assert.Contains("wrote 1 label maps", stdout);

        var labels = ImageCodec.ReadLabelPng(Path.Combine(root, "out", "img1.png"));
        Assert.Equal((W, H), (labels.Width, labels.Height));
        int wrong = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                if (labels[y, x] != Region(x, y)) wrong++;
        Assert.Equal(0, wrong);
    }

    [Fact]
    public async Task CamOfWrongSizeNamesTheFile()
    {
        NpyFile.Write(Path.Combine(root, "cams", "img1.npy"), new float[20 * 10 * 10], 20, 10, 10);
        var (code, _, stderr) = await Run("crf", "--voc", root, "--split", "train", "--cams", Path.Combine(root, "cams"), "--out", Path.Combine(root, "out"));
        Assert.Equal(2, code);
        Assert.Contains("img1.npy: CAM is 10x10 but image img1 is 48x36", stderr);
    }

    [Fact]
    public async Task MissingSplitAndConflictingOptionsAreBadInput()
    {
        var (code, _, stderr) = await Run("crf", "--voc", root, "--split", "nosuch", "--cams", Path.Combine(root, "cams"), "--out", Path.Combine(root, "out"));
        Assert.Equal(2, code);
        Assert.Contains("split list 'nosuch' not found", stderr);

        (code, _, stderr) = await Run("crf", "--voc", root, "--split", "train", "--cams", Path.Combine(root, "cams"), "--out", Path.Combine(root, "out"), "--bg-alpha", "4", "--bg-threshold", "0.2");
        Assert.Equal(2, code);
        Assert.Contains("not both", stderr);

        (code, _, stderr) = await Run("crf", "--voc", root, "--split", "train", "--cams", Path.Combine(root, "cams"), "--out", Path.Combine(root, "out"), "--bilateral-srgb", "0");
        Assert.Equal(2, code);
        Assert.Contains("bilateral srgb must be a positive", stderr);
    }

    [Fact]
    public async Task BenchPrintsMedianTimesAsJson()
    {
        var (code, stdout, stderr) = await Run("bench", "crf", "--width", "40", "--height", "30", "--labels", "3", "--runs", "1", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal(1200, json.RootElement.GetProperty("sum_q").GetDouble(), 1);
        Assert.True(json.RootElement.GetProperty("inference_ms").GetDouble() > 0);
        Assert.True(json.RootElement.GetProperty("setup_ms").GetDouble() > 0);
    }

    [Fact]
    public async Task BenchWritesTheWorkloadForAnotherImplementation()
    {
        string dir = Path.Combine(root, "workload");
        var (code, _, stderr) = await Run("bench", "crf", "--width", "20", "--height", "10", "--labels", "4", "--runs", "1", "--json", "--save-input", dir);
        Assert.True(code == 0, stderr);
        var image = NpyFile.Read(Path.Combine(dir, "image.npy"));
        var probs = NpyFile.Read(Path.Combine(dir, "probs.npy"));
        Assert.Equal(new[] { 10, 20, 3 }, image.Shape);
        Assert.Equal(new[] { 4, 10, 20 }, probs.Shape);
        Assert.All(probs.Data, v => Assert.InRange(v, 0f, 1f));
    }

    [Fact]
    public async Task HelpDescribesEveryOption()
    {
        var (code, stdout, _) = await Run("crf", "--help");
        Assert.Equal(0, code);
        foreach (var option in new[] { "--voc", "--split", "--cams", "--out", "--bg-threshold", "--bg-alpha", "--iterations", "--bilateral-srgb" })
            Assert.Contains(option, stdout);
    }

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await EcsNetCli.RunAsync(args, CliIo.ToWriters(output, error));
        return (code, output.ToString(), error.ToString());
    }
}
