using EcsNet.Data;
using EcsNet.Labels.Propagation;

namespace EcsNet.Labels.Tests.Propagation;

public class AffinityLabelsTests
{
    private const int Fg = VocClasses.Foreground;

    private static RgbImage Image(int width, int height) => new(width, height, new byte[width * height * 3]);

    /// <summary>A 20-channel CAM stack with one class's map given per pixel (others zero).</summary>
    private static float[] Cams(int width, int height, int cls, Func<int, int, float> value)
    {
        var cams = new float[Fg * width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                cams[((cls - 1) * height + y) * width + x] = value(y, x);
        return cams;
    }

    [Fact]
    public void BackgroundIsOneMinusMaxCamToTheAlpha()
    {
        var cams = new float[Fg * 2];
        cams[(3 - 1) * 2 + 0] = 0.5f;  // class 3, pixel 0
        cams[(3 - 1) * 2 + 1] = 0.2f;
        cams[(9 - 1) * 2 + 1] = 0.8f;  // class 9, pixel 1
        cams[(12 - 1) * 2 + 0] = 0.9f; // class 12 is not in the image: never read
        var stack = AffinityLabels.BackgroundAndClasses(cams, new[] { 3, 9 }, 1, 2, alpha: 4);
        // pixel 0: max = 0.5 → 0.5^4 = 0.0625; pixel 1: max = 0.8 → 0.2^4 = 0.0016
        Assert.Equal(0.0625f, stack[0], 6);
        Assert.Equal(0.0016f, stack[1], 6);
        Assert.Equal(new[] { 0.5f, 0.2f, 0f, 0.8f }, stack[2..]);
    }

    [Fact]
    public void BlockMeanPadsTheFarEdgesWithZero()
    {
        // 1 channel, 3x5 map, stride 2 → 2x3 grid; the last row/column blocks are partly padding
        var map = new float[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
        var pooled = AffinityLabels.BlockMean(map, 1, 3, 5, 2);
        Assert.Equal(new[] { (1 + 2 + 6 + 7) / 4f, (3 + 4 + 8 + 9) / 4f, (5 + 10) / 4f,
                             (11 + 12) / 4f, (13 + 14) / 4f, 15 / 4f }, pooled);
    }

    [Fact]
    public void ConfidentForegroundBackgroundAndIgnoreFollowPsaRule()
    {
        // 32x8 image → 4x1 grid at stride 8. One class (15) whose CAM per 8x8 block is:
        //   block 0: 0.9 → la bg = 0.1^4 = 1e-4, ha bg ≈ 0: both maps say class → confident foreground 15
        //   block 1: 0.0 → la bg = ha bg = 1: both say background → confident background 0
        //   block 2: 0.2 → la bg = 0.8^4 = 0.41 > 0.2 (background), ha bg = 0.8^32 = 8e-4 < 0.2 (class) → ignore
        //   block 3: 0.9
        var cam = new[] { 0.9f, 0f, 0.2f, 0.9f };
        var cams = Cams(32, 8, 15, (y, x) => cam[x / 8]);
        var options = new AffinityLabelOptions();
        var maps = AffinityLabels.ScoreMaps(Image(32, 8), cams, new[] { 15 }, options, AffinityLabels.IdentityCrf);
        Assert.Equal(new[] { 0, 15 }, maps.Classes);
        var labels = AffinityLabels.Decide(maps, options);
        Assert.Equal(4, labels.Width);
        Assert.Equal(1, labels.Height);
        Assert.Equal(new byte[] { 15, 0, 255, 15 }, labels.Labels);
        Assert.Equal(labels.Labels, AffinityLabels.Run(Image(32, 8), cams, new[] { 15 }, options, AffinityLabels.IdentityCrf).Labels);

        // A crop window shifted 8 px left: its first block lies outside the image (no score) → ignore.
        Assert.Equal(new byte[] { 255, 15, 0, 255 }, AffinityLabels.Decide(maps.Crop(0, -8, 8, 32), options).Labels);
    }

    [Fact]
    public void ForegroundClassComesFromLaArgmaxAndIsAVocIndex()
    {
        // two classes (4 and 17) in a 16x8 image → 2x1 grid; class 17 dominates the left block, class 4 the right
        var cams = new float[Fg * 16 * 8];
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 16; x++)
            {
                cams[((4 - 1) * 8 + y) * 16 + x] = x < 8 ? 0.7f : 0.95f;
                cams[((17 - 1) * 8 + y) * 16 + x] = x < 8 ? 0.98f : 0.6f;
            }
        var labels = AffinityLabels.Run(Image(16, 8), cams, new[] { 4, 17 }, new AffinityLabelOptions(), AffinityLabels.IdentityCrf);
        Assert.Equal(new byte[] { 17, 4 }, labels.Labels);
    }

    [Fact]
    public void CrfDelegateRefinesBothMapsAndDecides()
    {
        // The "CRF" sees [1 + K][H][W] scores and K+1 labels, twice (la then ha). This one turns the la map into
        // pure background everywhere and leaves ha alone: every cell the ha map calls foreground becomes ignore.
        var calls = new List<(int Labels, float Background0)>();
        float[] Crf(RgbImage img, float[] probs, int labels)
        {
            Assert.Equal(labels * img.Width * img.Height, probs.Length);
            calls.Add((labels, probs[0]));
            if (calls.Count == 2)
                return probs;
            var q = new float[probs.Length];
            Array.Fill(q, 1f, 0, img.Width * img.Height);
            return q;
        }
        var cams = Cams(16, 8, 2, (y, x) => x < 8 ? 0.9f : 0f);
        var labels = AffinityLabels.Run(Image(16, 8), cams, new[] { 2 }, new AffinityLabelOptions(), Crf);
        Assert.Equal(2, calls.Count);
        Assert.All(calls, c => Assert.Equal(2, c.Labels));
        Assert.Equal(MathF.Pow(0.1f, 4), calls[0].Background0, 6);   // la: α = 4
        Assert.InRange(calls[1].Background0 / MathF.Pow(0.1f, 32), 0.999f, 1.001f); // ha: α = 32
        Assert.Equal(new byte[] { 255, 0 }, labels.Labels);
    }

    [Fact]
    public void CropPlacesTheWindowWithZeroOutsideAndFlips()
    {
        var maps = new AffinityScoreMaps(3, 1, new[] { 0 }, new float[] { 1, 2, 3 }, new float[] { 4, 5, 6 });
        var c = maps.Crop(0, -1, 1, 4);
        Assert.Equal(new float[] { 0, 1, 2, 3 }, c.La);
        Assert.Equal(new float[] { 0, 4, 5, 6 }, c.Ha);
        var f = maps.Crop(0, 1, 1, 3, flipHorizontal: true);
        Assert.Equal(new float[] { 0, 3, 2 }, f.La);
    }

    [Fact]
    public void BadInputsNameTheProblem()
    {
        var options = new AffinityLabelOptions();
        var e = Assert.Throws<BadInputException>(() =>
            AffinityLabels.Run(Image(8, 8), new float[10], new[] { 1 }, options, AffinityLabels.IdentityCrf));
        Assert.Contains("CAM stack", e.Message);
        e = Assert.Throws<BadInputException>(() =>
            AffinityLabels.Run(Image(8, 8), new float[Fg * 64], new[] { 21 }, options, AffinityLabels.IdentityCrf));
        Assert.Contains("class 21", e.Message);
        e = Assert.Throws<BadInputException>(() =>
            AffinityLabels.Run(Image(8, 8), new float[Fg * 64], new[] { 1 }, options, (_, p, _) => new float[p.Length - 1]));
        Assert.Contains("CRF on the la map", e.Message);
        e = Assert.Throws<BadInputException>(() =>
            AffinityLabels.Run(Image(8, 8), new float[Fg * 64], new[] { 1 }, options with { AlphaLow = 40 }, AffinityLabels.IdentityCrf));
        Assert.Contains("low alpha", e.Message);
    }
}
