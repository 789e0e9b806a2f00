using System.Text.Json;
using EcsNet.Data;
using EcsNet.Testing;

namespace EcsNet.Cli.Tests;

[Collection(CliCollection.Name)]
public class DataAndEvalVerbTests
{
    /// <summary>`data synth` of 6 train + 2 val images at 64 px into a temp folder.</summary>
    private static async Task<(TempDir Dir, string Voc)> Synth()
    {
        var dir = new TempDir();
        var r = await Ecsnet.Run("data", "synth", "--out", dir.Path, "--images", "6", "--val", "2", "--size", "64", "--seed", "7");
        Assert.True(r.Exit == 0, r.ToString());
        return (dir, dir.File("VOC2012"));
    }

    [Fact]
    public async Task SynthThenCheckThenEvalOfTheGroundTruthScoresOneHundred()
    {
        var (dir, voc) = await Synth();
        using var _ = dir;
        Assert.Equal(6, File.ReadAllLines(Path.Combine(voc, "ImageSets/Segmentation/train.txt")).Length);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(voc, "ImageSets/Segmentation/val.txt")).Length);
        Assert.Equal(8, Directory.GetFiles(Path.Combine(voc, "JPEGImages")).Length);

        var check = await Ecsnet.Run("data", "check", "--voc", dir.Path, "--split", "train");
        Assert.True(check.Exit == 0, check.ToString());
        Assert.Contains("listed 6, valid 6, with masks 6, problems 0", check.Out);

        var all = await Ecsnet.Run("data", "check", "--voc", voc);
        Assert.Equal(0, all.Exit);
        Assert.Contains("split train ", all.Out);
        Assert.Contains("split trainval ", all.Out);
        Assert.Contains("split val ", all.Out);

        var eval = await Ecsnet.Run("eval", "--voc", voc, "--split", "val", "--pred", Path.Combine(voc, "SegmentationClass"));
        Assert.True(eval.Exit == 0, eval.ToString());
        Assert.Contains("mIoU 100.0", eval.Out);
        Assert.Contains("bkg aero bike", eval.Out);
    }

    [Fact]
    public async Task EvalOfAnAllBackgroundBaselineMatchesTheHandCount()
    {
        var (dir, voc) = await Synth();
        using var _ = dir;
        var pred = dir.File("pred");
        Directory.CreateDirectory(pred);
        long background = 0, counted = 0;
        var present = new HashSet<int>();
        foreach (var id in File.ReadAllLines(Path.Combine(voc, "ImageSets/Segmentation/train.txt")))
        {
            var gt = ImageCodec.ReadLabelPng(Path.Combine(voc, "SegmentationClass", id + ".png"));
            background += gt.Labels.Count(v => v == 0);
            counted += gt.Labels.Count(v => v != 255);
            foreach (var v in gt.Labels.Where(v => v != 255))
                present.Add(v);
            // Grey PNG predictions are accepted as well as palette ones.
            File.WriteAllBytes(Path.Combine(pred, id + ".png"), GreyPng(gt.Width, gt.Height));
        }
        var r = await Ecsnet.Run("eval", "--voc", voc, "--split", "train", "--pred", pred, "--json");
        Assert.True(r.Exit == 0, r.ToString());
        using var json = JsonDocument.Parse(r.Out);
        var root = json.RootElement;
        // Background IoU = bg pixels / all counted pixels (every pixel is predicted bg); every object class 0.
        double bgIoU = (double)background / counted;
        Assert.Equal(6, root.GetProperty("images").GetInt32());
        Assert.Equal(bgIoU, root.GetProperty("classes")[0].GetProperty("iou").GetDouble(), 9);
        Assert.Equal(bgIoU / present.Count, root.GetProperty("meanIoU").GetDouble(), 9);
        Assert.Equal(bgIoU, root.GetProperty("pixelAccuracy").GetDouble(), 9);
        Assert.Equal(present.Count, root.GetProperty("classesCounted").GetInt32());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("classes")[1].GetProperty("iou").ValueKind); // aeroplane: not in the set
        Assert.Equal("tv", root.GetProperty("classes")[20].GetProperty("column").GetString());
    }

    private static byte[] GreyPng(int w, int h)
    {
        var info = new SkiaSharp.SKImageInfo(w, h, SkiaSharp.SKColorType.Gray8, SkiaSharp.SKAlphaType.Opaque);
        using var bitmap = new SkiaSharp.SKBitmap(info);
        bitmap.Erase(SkiaSharp.SKColors.Black);
        using var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    [Fact]
    public async Task EvalNamesTheMissingPredictionAndTheWrongSizedOne()
    {
        var (dir, voc) = await Synth();
        using var _ = dir;
        var pred = dir.File("pred");
        Directory.CreateDirectory(pred);
        var ids = File.ReadAllLines(Path.Combine(voc, "ImageSets/Segmentation/val.txt"));
        File.Copy(Path.Combine(voc, "SegmentationClass", ids[0] + ".png"), Path.Combine(pred, ids[0] + ".png"));

        var missing = await Ecsnet.Run("eval", "--voc", voc, "--split", "val", "--pred", pred);
        Assert.Equal(EcsNetCli.ExitBadInput, missing.Exit);
        Assert.Contains($"missing prediction for id '{ids[1]}'", missing.Err);
        Assert.Contains(Path.Combine(pred, ids[1] + ".png"), missing.Err);

        var wrong = Path.Combine(pred, ids[1] + ".png");
        ImageCodec.WriteLabelPng(wrong, new LabelMask(5, 4, new byte[20]));
        var size = await Ecsnet.Run("eval", "--voc", voc, "--split", "val", "--pred", pred);
        Assert.Equal(EcsNetCli.ExitBadInput, size.Exit);
        Assert.Contains($"error: {wrong}: prediction is 5x4 but ground truth", size.Err);

        var noDir = await Ecsnet.Run("eval", "--voc", voc, "--split", "val", "--pred", dir.File("nowhere"));
        Assert.Equal(EcsNetCli.ExitBadInput, noDir.Exit);
        Assert.Contains("prediction folder not found", noDir.Err);
    }

    [Fact]
    public async Task CheckListsEachProblemWithItsFileAndExitsNonZero()
    {
        var (dir, voc) = await Synth();
        using var _ = dir;
        var ids = File.ReadAllLines(Path.Combine(voc, "ImageSets/Segmentation/train.txt"));
        var jpeg = Path.Combine(voc, "JPEGImages", ids[0] + ".jpg");
        File.WriteAllBytes(jpeg, File.ReadAllBytes(jpeg)[..150]);
        var xml = Path.Combine(voc, "Annotations", ids[1] + ".xml");
        File.WriteAllText(xml, File.ReadAllText(xml).Replace("<name>", "<name>x"));
        var mask = Path.Combine(voc, "SegmentationClass", ids[2] + ".png");
        ImageCodec.WriteLabelPng(mask, new LabelMask(3, 3, new byte[9]));
        File.AppendAllLines(Path.Combine(voc, "ImageSets/Segmentation/train.txt"), new[] { "ghost_1" });
        var xml3 = Path.Combine(voc, "Annotations", ids[3] + ".xml");
        File.WriteAllText(xml3, "<annotation/>");

        var r = await Ecsnet.Run("data", "check", "--voc", voc, "--split", "train");
        Assert.Equal(EcsNetCli.ExitBadInput, r.Exit);
        Assert.Contains("listed 7, valid 2, with masks 2, problems 5", r.Out);
        Assert.Contains($"problem: {jpeg}: truncated", r.Out);
        Assert.Contains($"problem: {xml}: unknown class name", r.Out);
        Assert.Contains($"problem: {mask}: mask is 3x3 but its image", r.Out);
        Assert.Contains($"problem: {Path.Combine(voc, "JPEGImages", "ghost_1.jpg")}: no image for id 'ghost_1'", r.Out);
        Assert.Contains($"problem: {xml3}: no <object> with a class name: empty label set", r.Out);
        Assert.Contains("5 problem(s) found", r.Err);
    }

    [Fact]
    public async Task MissingSplitOrRootIsOneClearLine()
    {
        var (dir, voc) = await Synth();
        using var _ = dir;
        var split = await Ecsnet.Run("data", "check", "--voc", voc, "--split", "test");
        Assert.Equal(EcsNetCli.ExitBadInput, split.Exit);
        Assert.StartsWith($"error: {Path.Combine(voc, "ImageSets", "Segmentation", "test.txt")}: split list 'test' not found", split.Err);
        Assert.Single(split.Err.Trim().Split('\n'));

        var root = await Ecsnet.Run("eval", "--voc", dir.File("nope"), "--split", "val", "--pred", dir.Path);
        Assert.Equal(EcsNetCli.ExitBadInput, root.Exit);
        Assert.Contains("VOC root folder not found", root.Err);
    }

    [Fact]
    public async Task SynthRejectsBadSettingsWithoutWriting()
    {
        using var dir = new TempDir();
        var r = await Ecsnet.Run("data", "synth", "--out", dir.Path, "--images", "4", "--size", "8");
        Assert.Equal(EcsNetCli.ExitBadInput, r.Exit);
        Assert.Contains("size 8", r.Err);
        var c = await Ecsnet.Run("data", "synth", "--out", dir.Path, "--images", "4", "--classes", "cat,unicorn");
        Assert.Equal(EcsNetCli.ExitBadInput, c.Exit);
        Assert.Contains("'unicorn' is not a VOC foreground class", c.Err);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Theory]
    [InlineData("data")]
    [InlineData("data synth")]
    [InlineData("data check")]
    [InlineData("eval")]
    public async Task EveryVerbHasHelp(string verb)
    {
        var r = await Ecsnet.Run(verb.Split(' ').Append("--help").ToArray());
        Assert.Equal(0, r.Exit);
        Assert.Contains("Usage:", r.Out);
        Assert.Contains("Options:", r.Out);
    }

    [RealDataFact]
    public async Task RealSampleChecksCleanAndItsGroundTruthScoresOneHundred()
    {
        var check = await Ecsnet.Run("data", "check", "--voc", RealVocSample.Root!);
        Assert.True(check.Exit == 0, check.ToString());
        Assert.Contains("listed 5, valid 5, with masks 5, problems 0", check.Out);
        Assert.DoesNotContain("warning", check.Out);

        var eval = await Ecsnet.Run("eval", "--voc", RealVocSample.Root!, "--split", "val", "--pred", RealVocSample.MaskFolder, "--json");
        Assert.True(eval.Exit == 0, eval.ToString());
        using var json = JsonDocument.Parse(eval.Out);
        Assert.Equal(1.0, json.RootElement.GetProperty("meanIoU").GetDouble());
        // Background + bicycle, bottle, bus, car, chair, person, sofa, train.
        Assert.Equal(9, json.RootElement.GetProperty("classesCounted").GetInt32());
    }
}

public class OnBadSampleOptionTests
{
    [Theory]
    [InlineData(new string[0], OnBadSample.Fail)]
    [InlineData(new[] { "--on-bad-sample", "skip" }, OnBadSample.Skip)]
    [InlineData(new[] { "--on-bad-sample", "fail" }, OnBadSample.Fail)]
    public void ParsesSkipAndFailWithFailAsDefault(string[] args, OnBadSample expected)
    {
        var option = DataCommands.OnBadSampleOption();
        var cmd = new System.CommandLine.RootCommand { option };
        var parse = cmd.Parse(args);
        Assert.Empty(parse.Errors);
        Assert.Equal(expected, parse.GetValue(option));
    }
}
