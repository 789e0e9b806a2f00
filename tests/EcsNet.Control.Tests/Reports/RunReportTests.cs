using System.Net;
using EcsNet.Control.Reports;
using EcsNet.Core.Stages;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Evaluation;
using EcsNet.Testing;

namespace EcsNet.Control.Tests.Reports;

public sealed class RunReportTests : IDisposable
{
    private readonly TempDir temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void TheStageTableHasOneRowPerStageWithItsMIoUThresholdTimeAndStatus()
    {
        var run = SyntheticRun.Write(temp.File("run"));
        var html = RunReport.Build(run.Dir);
        var rows = ReportHtml.StageRows(html);

        Assert.Equal(new[] { "cam", "crf", "aff", "rw", "seg" }, rows.Select(r => r.Stage));
        var cells = rows.ToDictionary(r => r.Stage, r => r.Cells);
        foreach (var (stage, score) in run.Scores)
            Assert.Equal(SegmentationScore.Percent(score.MeanIoU), cells[stage][2]);
        Assert.Equal("-", cells["aff"][2]);                // AffinityNet has no score
        Assert.Equal("0.25 (50.0)", cells["cam"][3]);      // best background threshold and the mIoU at it
        Assert.Equal("-", cells["crf"][3]);
        foreach (var stage in PipelineStages.Default().Stages)
        {
            Assert.Equal(stage.Title, cells[stage.Name][1]);
            Assert.Equal("12.5", cells[stage.Name][4]);
            Assert.Equal("new", cells[stage.Name][5]);      // all finished after the pipeline started
        }
        // self-contained: no script, no address to fetch anything from
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("://", html);
    }

    [Fact]
    public void AStageFinishedBeforeTheLastPipelineStartIsReused()
    {
        var run = SyntheticRun.Write(temp.File("run"), "cam");
        var cam = StageManifest.TryLoad(Path.Combine(run.Dir, "cam"))!;
        File.SetLastWriteTimeUtc(Path.Combine(run.Dir, "experiment.json"), cam.FinishedUtc.AddSeconds(1));
        Assert.Equal("reused", ReportHtml.StageRows(RunReport.Build(run.Dir)).Single().Cells[5]);
    }

    [Fact]
    public void EachTrainingStageHasALossChartWithAPolylinePerTermAndAPointPerLoggedStep()
    {
        var run = SyntheticRun.Write(temp.File("run"));
        var charts = ReportHtml.Charts(ReportHtml.Section(RunReport.Build(run.Dir), "losses"), "loss-chart");

        Assert.Equal(SyntheticRun.Logs.Keys.Order(), charts.Keys.Order());
        foreach (var (stage, (terms, steps)) in SyntheticRun.Logs)
        {
            var lines = ReportHtml.Elements(charts[stage], "polyline", "loss-line");
            Assert.Equal(terms, lines.Select(l => ReportHtml.Attribute(l, "data-term")));
            // steps 3.. were logged twice (a resumed run appends the steps it redoes): one point per step
            Assert.All(lines, l => Assert.Equal(steps, ReportHtml.PointCount(l)));
            foreach (var term in terms)
                Assert.Contains($">{term}</text>", charts[stage]);   // legend
            Assert.Contains(">step</text>", charts[stage]);          // x-axis title
        }
    }

    [Fact]
    public void ReadLossesKeepsTheLastLineOfARedoneStepAndSkipsATornLine()
    {
        var run = SyntheticRun.Write(temp.File("run"), "seg");
        var log = Path.Combine(run.Dir, "seg", "run", RunReportData.TrainLogFile);
        File.AppendAllText(log, "{\"step\":5,\"epoch\":0,\"lo");   // killed mid-line
        var losses = RunReportData.ReadLosses(log);
        Assert.Equal(4, losses.Steps);
        var loss = Assert.Single(losses.Terms);
        Assert.Equal(new[] { 1, 2, 3, 4 }, loss.Points.Select(p => p.Step));
        Assert.Equal(2.0 / 3 + 0.01, loss.Points[2].Value, 9);
    }

    [Fact]
    public void EachScoredStageHasABarPerClassWithItsIoU()
    {
        var run = SyntheticRun.Write(temp.File("run"));
        var charts = ReportHtml.Charts(ReportHtml.Section(RunReport.Build(run.Dir), "class-iou"), "iou-chart");

        Assert.Equal(run.Scores.Keys.Order(), charts.Keys.Order());
        foreach (var (stage, score) in run.Scores)
        {
            var present = score.Classes.Where(c => c.Present).ToList();
            Assert.Equal(new[] { "background", "cat", "dog" }, present.Select(c => c.Name));
            var rows = ReportHtml.Elements(charts[stage], "g", "iou-row");
            Assert.Equal(present.Select(c => c.Name), rows.Select(r => ReportHtml.Attribute(r, "data-class")));
            Assert.Equal(present.Count, ReportHtml.Elements(charts[stage], "rect", "iou-bar").Count);
            foreach (var c in present)
                Assert.Contains($">{SegmentationScore.Percent(c.IoU)}</text>", charts[stage]);
        }
        // bar lengths follow the IoU: a perfect class fills the 0–100 axis (360 px), a class at 0 has none
        var seg = ReportHtml.Elements(charts["seg"], "rect", "iou-bar").Select(r => double.Parse(ReportHtml.Attribute(r, "width"), System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var segIoUs = run.Scores["seg"].Classes.Where(c => c.Present).Select(c => c.IoU).ToList();
        for (int i = 0; i < seg.Count; i++)
            Assert.Equal(360 * segIoUs[i], seg[i], 1);
    }

    [Fact]
    public void TheOverlayGridInlinesEachStagesPngAndNotesTheMissingOnes()
    {
        var run = SyntheticRun.Write(temp.File("run"));
        var overlays = ReportHtml.Section(RunReport.Build(run.Dir, new RunReportOptions { OverlayImages = 4 }), "overlays");

        var images = ReportHtml.Elements(overlays, "img", "overlay");
        // three train images with five columns each (CAM, pseudo-label, CRF, affinity labels, random walk), one val image
        Assert.Equal(3 * 5 + 1, images.Count);
        foreach (var img in images)
        {
            var src = ReportHtml.Attribute(img, "src");
            Assert.StartsWith("data:image/png;base64,", src, StringComparison.Ordinal);
            var decoded = ImageCodec.DecodeRgb(Convert.FromBase64String(src["data:image/png;base64,".Length..]), "overlay");
            // the 24×16 pictures as written: blends as they are, CAM overlays enlarged to the default long edge
            // (16× here) with a legend strip under them
            if (decoded.Width == 24)
                Assert.Equal(16, decoded.Height);
            else
            {
                Assert.Equal(OverlayOptions.DefaultLongEdge, decoded.Width);
                Assert.True(decoded.Height > 16 * 16, $"{decoded.Width}×{decoded.Height}: no legend under the enlarged CAM overlay");
            }
        }
        Assert.Contains("alt=\"CAM of 2007_000032 (cat)\"", overlays);        // the first class's CAM
        // the val image has no overlay upstream (5 notes), the train images none downstream (3)
        Assert.Equal(5 + 3, CountOf(overlays, "class=\"missing\""));
        Assert.Contains("no segmentation (val) overlay", overlays);
        Assert.Equal(2 * 5, ReportHtml.Elements(RunReport.Build(run.Dir, new RunReportOptions { OverlayImages = 2 }), "img", "overlay").Count);
    }

    [Fact]
    public void TextFromTheRunFolderIsEscaped()
    {
        const string hostile = "<img src=x onerror=alert(1)> & \"q\"";
        var run = SyntheticRun.Write(temp.File(hostile), "cam");
        SyntheticRun.WriteLog(Path.Combine(run.Dir, "cam", "run"), new[] { "<b>term</b>" }, 2);
        SyntheticRun.WritePng(Path.Combine(run.Dir, "cam", "labels", "overlays", "<i>id_labels.png"), SyntheticRun.Image(4, 4));

        var html = RunReport.Build(run.Dir);

        Assert.DoesNotContain("<img src=x", html);
        Assert.DoesNotContain("<b>", html);
        Assert.DoesNotContain("<i>", html);
        Assert.DoesNotContain("<script", html);
        Assert.Contains($"<title>Run report: {System.Text.Encodings.Web.HtmlEncoder.Default.Encode(hostile)}</title>", html);
        Assert.Equal("Run report: " + hostile, WebUtility.HtmlDecode(html.Split("<h1 id=\"title\">")[1].Split("</h1>")[0]));
        Assert.Contains("data-term=\"&lt;b&gt;term&lt;/b&gt;\"", html);
        Assert.Contains("<tr data-image=\"&lt;i&gt;id\">", html);
    }

    [Fact]
    public void APartialRunShowsWhatExists()
    {
        var run = SyntheticRun.Write(temp.File("run"), "cam");
        Directory.CreateDirectory(Path.Combine(run.Dir, "crf", "labels"));   // crf started, not finished

        var html = RunReport.Build(run.Dir);

        var rows = ReportHtml.StageRows(html);
        Assert.Equal(new[] { "cam", "crf" }, rows.Select(r => r.Stage));
        Assert.Equal(new[] { "-", "-", "-", "unfinished" }, rows[1].Cells[2..]);
        Assert.Equal(new[] { "cam" }, ReportHtml.Charts(html, "loss-chart").Keys);
        Assert.Equal(new[] { "cam" }, ReportHtml.Charts(html, "iou-chart").Keys);
        Assert.Contains("<th>CRF</th>", html);
        Assert.DoesNotContain("<th>random walk</th>", html);
        Assert.Equal(3 * 2, ReportHtml.Elements(html, "img", "overlay").Count);
        Assert.Contains("1 of 2 stages finished", html);
    }

    [Fact]
    public void AMissingFolderOrOneWithoutStagesIsBadInputNamingIt()
    {
        var missing = temp.File("nope");
        var e = Assert.Throws<BadInputException>(() => RunReport.Build(missing));
        Assert.Equal(missing, e.Subject);
        Assert.Contains("not found", e.Problem);

        var empty = temp.File("empty");
        Directory.CreateDirectory(Path.Combine(empty, "unrelated"));
        e = Assert.Throws<BadInputException>(() => RunReport.Build(empty));
        Assert.Equal(empty, e.Subject);
        Assert.Contains("no stage folder (cam, crf, aff, rw, seg)", e.Problem);
    }

    private static int CountOf(string text, string part) => text.Split(part).Length - 1;
}
