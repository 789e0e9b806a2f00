using EcsNet.Control.Reports;
using EcsNet.Data;
using EcsNet.Testing;

namespace EcsNet.Control.Tests.Reports;

/// <summary>The report as a real browser sees it: headless Chromium's DOM of the page, and a screenshot of it.</summary>
public sealed class ReportInChromiumTests : IDisposable
{
    private readonly TempDir temp = new();

    public void Dispose() => temp.Dispose();

    /// <summary>A full synthetic run's report written to a file.</summary>
    private string Page()
    {
        var run = SyntheticRun.Write(temp.File("run"));
        var page = temp.File("report.html");
        File.WriteAllText(page, RunReport.Build(run.Dir));
        return page;
    }

    [Fact]
    public void ChromiumsDomHasTheLossLinesTheClassBarsAndTheOverlayImages()
    {
        var result = HeadlessChromium.Render(Page(), temp.Path, "--dump-dom");
        Assert.True(result.Exit == 0, result.ToString());
        var dom = result.Out;

        var losses = ReportHtml.Charts(dom, "loss-chart");
        Assert.True(losses.Keys.Order().SequenceEqual(SyntheticRun.Logs.Keys.Order()), $"loss charts {string.Join(",", losses.Keys)}\n{result}");
        foreach (var (stage, (terms, steps)) in SyntheticRun.Logs)
        {
            var lines = ReportHtml.Elements(losses[stage], "polyline", "loss-line");
            Assert.Equal(terms.Length, lines.Count);
            Assert.All(lines, l => Assert.Equal(steps, ReportHtml.PointCount(l)));
        }
        var bars = ReportHtml.Elements(ReportHtml.Section(dom, "class-iou"), "rect", "iou-bar");
        Assert.Equal(4 * 3, bars.Count);   // cam, crf, rw, seg × background, cat, dog
        var images = ReportHtml.Elements(ReportHtml.Section(dom, "overlays"), "img", "overlay");
        Assert.Equal(3 * 5 + 1, images.Count);
        Assert.All(images, img => Assert.StartsWith("data:image/png;base64,", ReportHtml.Attribute(img, "src"), StringComparison.Ordinal));
    }

    [Fact]
    public void AScreenshotOfThePageShowsTheChartsInTheirColours()
    {
        var shot = temp.File("shot.png");
        var result = HeadlessChromium.Render(Page(), temp.Path, "--screenshot=" + shot, "--window-size=1280,2000");
        Assert.True(File.Exists(shot), $"no screenshot\n{result}");
        var image = ImageCodec.ReadRgb(shot);
        Assert.True(image.Width == 1280 && image.Height == 2000, $"screenshot is {image.Width}x{image.Height}\n{result}");

        // The loss charts lie below the title and the stage table: there, each of the CAM log's three term colours
        // (SvgCharts' first palette entries) and a spread of anti-aliased shades; further down, the class-IoU bars
        // of dog in its VOC palette colour (64, 0, 128).
        var charts = Region(image, top: 200, bottom: 1200);
        var lines = new[] { (0x4e, 0x79, 0xa7), (0xf2, 0x8e, 0x2b), (0xe1, 0x57, 0x59) }.Select(c => Near(charts, c)).ToArray();
        int shades = charts.Distinct().Count(), dog = Near(Region(image, 0, image.Height), (64, 0, 128));
        Assert.True(lines.All(n => n >= 10) && shades >= 20 && dog >= 50,
            $"pixels of the three line colours {string.Join(", ", lines)}, distinct colours {shades}, dog-bar pixels {dog}: a blank chart?\n{result}");
    }

    private static List<(int R, int G, int B)> Region(RgbImage image, int top, int bottom)
    {
        var pixels = new List<(int, int, int)>();
        for (int y = top; y < Math.Min(bottom, image.Height); y++)
            for (int x = 0; x < image.Width; x++)
                pixels.Add((image[y, x, 0], image[y, x, 1], image[y, x, 2]));
        return pixels;
    }

    private static int Near(List<(int R, int G, int B)> pixels, (int R, int G, int B) colour) =>
        pixels.Count(p => Math.Abs(p.R - colour.R) + Math.Abs(p.G - colour.G) + Math.Abs(p.B - colour.B) <= 24);
}
