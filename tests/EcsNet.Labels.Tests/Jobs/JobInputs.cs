using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Testing;

namespace EcsNet.Labels.Tests.Jobs;

/// <summary>Small images with CAMs on disk, as the cam stage leaves them: RGB PNGs and CamStore files.</summary>
internal sealed class JobInputs : IDisposable
{
    private readonly TempDir dir = new();

    public JobInputs(int count = 3, int width = 37, int height = 29)
    {
        Width = width;
        Height = height;
        Directory.CreateDirectory(CamDir);
        for (int i = 0; i < count; i++)
        {
            var id = $"img_{i}";
            var rng = new Random(100 + i);
            // two coloured discs on a textured background; the CAMs peak on the discs
            var px = new byte[width * height * 3];
            var classes = new[] { 1 + i % 20, 1 + (i + 7) % 20 }.Order().ToArray();
            var maps = classes.Select(_ => new float[width * height]).ToArray();
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    int p = y * width + x;
                    bool a = Sq(x - width / 3, y - height / 3) < 60 + 10 * i, b = Sq(x - 2 * width / 3, y - 2 * height / 3) < 50;
                    px[p * 3] = (byte)(a ? 200 : b ? 30 : rng.Next(60, 120));
                    px[p * 3 + 1] = (byte)(a ? 40 : b ? 190 : rng.Next(60, 120));
                    px[p * 3 + 2] = (byte)(rng.Next(40, 90));
                    maps[0][p] = MathF.Exp(-Sq(x - width / 3, y - height / 3) / 120f);
                    maps[1][p] = MathF.Exp(-Sq(x - 2 * width / 3, y - 2 * height / 3) / 90f) * 0.8f;
                }
            ImageCodec.WriteRgbPng(ImagePath(id), new RgbImage(width, height, px));
            CamStore.Write(CamDir, id, new CamMaps(height, width, classes, maps));
            Ids.Add(id);
        }
    }

    public int Width { get; }
    public int Height { get; }
    public List<string> Ids { get; } = new();
    public string CamDir => dir.File("cams");
    public string Root => dir.Path;

    public string ImagePath(string id) => dir.File(id + ".png");

    public string Out(string folder, string file) => dir.File(Path.Combine(folder, file));

    public void Dispose() => dir.Dispose();

    private static int Sq(int dx, int dy) => dx * dx + dy * dy;
}
