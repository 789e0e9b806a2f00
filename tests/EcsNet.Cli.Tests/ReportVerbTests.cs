using EcsNet.Core.Stages;
using EcsNet.Data;
using EcsNet.Testing;

namespace EcsNet.Cli.Tests;

/// <summary>`ecsnet report`: the page of a run folder, and the one-line error of a missing one.</summary>
[Collection(CliCollection.Name)]
public class ReportVerbTests
{
    [Fact]
    public async Task ReportWritesThePageOfARunFolderAndAMissingFolderExitsTwoNamingIt()
    {
        using var dir = new TempDir();
        var run = dir.File("run");
        var cam = Path.Combine(run, CamStage.StageName);
        var overlays = Path.Combine(cam, "labels", "overlays");
        Directory.CreateDirectory(overlays);
        ImageCodec.WriteRgbPng(Path.Combine(overlays, "2007_000032_labels.png"), new RgbImage(2, 2, new byte[12]));
        StageManifest.Write(cam, CamStage.StageName, "inputs", 3, new Dictionary<string, double> { ["mIoU"] = 0.4321 }, options: null);
        var page = dir.File(Path.Combine("out", "report.html"));

        var r = await Ecsnet.Run("report", run, "--out", page);

        Assert.True(r.Exit == 0, r.ToString());
        var html = File.ReadAllText(page);
        Assert.Contains("<table id=\"stages\">", html);
        Assert.Contains(">43.2</td>", html);
        Assert.Contains("<img class=\"overlay\"", html);
        Assert.Contains($"report: {Path.GetFullPath(page)} (", r.Out);
        Assert.Contains(" KiB)", r.Out);

        var missing = dir.File("no-such-run");
        var bad = await Ecsnet.Run("report", missing, "--out", dir.File("bad.html"));
        Assert.True(bad.Exit == 2, bad.ToString());
        Assert.Equal($"error: {missing}: run folder not found", bad.Err.TrimEnd());
        Assert.False(File.Exists(dir.File("bad.html")));
    }
}
