using EcsNet.Data;
using EcsNet.Testing;

namespace EcsNet.Cli.Tests;

/// <summary>train-seg → infer-seg → eval end to end on a tiny generated set.</summary>
[Collection(CliCollection.Name)]
public class SegVerbTests
{
    // One epoch of 3 steps on 48-px crops, single-scale inference: seconds, not minutes.
    private static readonly string[] Tiny =
    {
        "--set", "seg.epochs=1", "seg.batchSize=2", "seg.crop=48", "seg.augment.longEdgeMin=48", "seg.augment.longEdgeMax=64",
        "seg.scales=[1.0]",
    };

    private static async Task<TempDir> Synth()
    {
        var dir = new TempDir();
        var r = await Ecsnet.Run("data", "synth", "--out", dir.Path, "--images", "6", "--val", "2", "--size", "64", "--seed", "3");
        Assert.True(r.Exit == 0, r.ToString());
        return dir;
    }

    [Fact]
    public async Task TrainInferEvalOnPseudoLabels()
    {
        using var dir = await Synth();
        var voc = dir.File("VOC2012");
        // For this test only, the ground-truth masks stand in for the pseudo labels.
        var labels = Path.Combine(voc, VocLayout.SegmentationMasks);
        var run = dir.File("seg-run");
        var train = await Ecsnet.Run(new[] { "train-seg", "--voc", voc, "--labels", labels, "--split", "train", "--out", run, "--backbone", "small" }.Concat(Tiny).ToArray());
        Assert.True(train.Exit == 0, train.ToString());
        Assert.Contains("trained 3/3 steps", train.Out);
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "latest")));
        Assert.True(File.Exists(Path.Combine(run, "experiment.json")));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(run, "train-log.jsonl")).Length);

        // Running it again resumes at the end: nothing more to do.
        var again = await Ecsnet.Run(new[] { "train-seg", "--voc", voc, "--labels", labels, "--out", run }.Concat(Tiny).ToArray());
        Assert.True(again.Exit == 0, again.ToString());
        Assert.Contains("trained 3/3 steps", again.Out);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(run, "train-log.jsonl")).Length);

        var preds = dir.File("preds");
        var infer = await Ecsnet.Run("infer-seg", "--run", run, "--voc", voc, "--split", "val", "--out", preds, "--overlay", "synth_000006");
        Assert.True(infer.Exit == 0, infer.ToString());
        Assert.Contains("wrote 2 label PNGs", infer.Out);
        Assert.Contains("mIoU on val", infer.Out);
        foreach (var id in File.ReadAllLines(Path.Combine(voc, "ImageSets/Segmentation/val.txt")))
        {
            var png = ImageCodec.ReadLabelPng(Path.Combine(preds, id + ".png"));
            var image = ImageCodec.ReadSize(Path.Combine(voc, "JPEGImages", id + ".jpg"));
            Assert.Equal((image.Width, image.Height), (png.Width, png.Height));
            Assert.All(png.Labels, l => Assert.InRange(l, 0, 20));
        }
        Assert.True(File.Exists(Path.Combine(preds, "overlays", "synth_000006_seg.png")));

        // The pipeline's layout RUN/seg/run: the stage folder and the run root find it too.
        var pipelineRun = dir.File("RUN");
        Directory.CreateDirectory(Path.Combine(pipelineRun, "seg"));
        Directory.Move(run, Path.Combine(pipelineRun, "seg", "run"));
        foreach (var given in new[] { Path.Combine(pipelineRun, "seg"), pipelineRun })
        {
            var found = await Ecsnet.Run("infer-seg", "--run", given, "--voc", voc, "--split", "val", "--out", dir.File("found"));
            Assert.True(found.Exit == 0, $"--run {given}: {found}");
        }
        Directory.Move(Path.Combine(pipelineRun, "seg", "run"), run);

        var eval = await Ecsnet.Run("eval", "--voc", voc, "--split", "val", "--pred", preds, "--json");
        Assert.True(eval.Exit == 0, eval.ToString());
        Assert.Contains("\"meanIoU\"", eval.Out, StringComparison.OrdinalIgnoreCase);

        // With the dense CRF on top: same sizes, labels from background + the predicted classes.
        var crf = await Ecsnet.Run("infer-seg", "--run", run, "--voc", voc, "--out", dir.File("crf"), "--crf");
        Assert.True(crf.Exit == 0, crf.ToString());
        foreach (var id in File.ReadAllLines(Path.Combine(voc, "ImageSets/Segmentation/val.txt")))
        {
            var png = ImageCodec.ReadLabelPng(Path.Combine(dir.File("crf"), id + ".png"));
            Assert.Equal(ImageCodec.ReadSize(Path.Combine(voc, "JPEGImages", id + ".jpg")), (png.Width, png.Height));
        }
    }

    [Fact]
    public async Task MissingPseudoLabelIsNamed()
    {
        using var dir = await Synth();
        var voc = dir.File("VOC2012");
        var labels = dir.File("pseudo");
        Directory.CreateDirectory(labels);
        var ids = File.ReadAllLines(Path.Combine(voc, "ImageSets/Segmentation/train.txt"));
        foreach (var id in ids.Skip(1))
            File.Copy(Path.Combine(voc, VocLayout.SegmentationMasks, id + ".png"), Path.Combine(labels, id + ".png"));
        var r = await Ecsnet.Run(new[] { "train-seg", "--voc", voc, "--labels", labels, "--out", dir.File("run") }.Concat(Tiny).ToArray());
        Assert.Equal(2, r.Exit);
        Assert.Contains(Path.Combine(labels, ids[0] + ".png") + ": missing pseudo label", r.Err);
    }

    [Fact]
    public async Task InferSegWithoutARunNamesTheFolder()
    {
        using var dir = await Synth();
        var r = await Ecsnet.Run("infer-seg", "--run", dir.File("nothing"), "--voc", dir.File("VOC2012"), "--out", dir.File("o"));
        Assert.Equal(2, r.Exit);
        Assert.Contains("nothing: not a train-seg run folder", r.Err);
    }

    [Fact]
    public async Task BadSegOptionIsNamed()
    {
        using var dir = await Synth();
        var voc = dir.File("VOC2012");
        var r = await Ecsnet.Run("train-seg", "--voc", voc, "--labels", Path.Combine(voc, VocLayout.SegmentationMasks), "--out", dir.File("run"),
            "--set", "seg.headDropout=1.5");
        Assert.Equal(2, r.Exit);
        Assert.Contains("seg.headDropout", r.Err);
    }
}
