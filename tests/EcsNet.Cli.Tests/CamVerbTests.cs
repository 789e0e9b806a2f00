using EcsNet.Core.Nets;
using EcsNet.Core.Stages;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Testing;

namespace EcsNet.Cli.Tests;

/// <summary>train-cam → infer-cam → eval end to end on a tiny generated set, and the pipeline's reuse rules.</summary>
[Collection(CliCollection.Name)]
public class CamVerbTests
{
    // One epoch of 3 steps at 64 px with a narrow schedule: seconds, not minutes.
    private static readonly string[] Tiny =
    {
        "--set", "camTraining.epochs=1", "camTraining.batchSize=2", "camTraining.crop=64", "camTraining.warmupSteps=1",
        "augment.longEdgeMin=56", "augment.longEdgeMax=72", "camInference.scales=[1.0]", "cam.overlayRates=[1,2]",
    };

    private static async Task<TempDir> Synth()
    {
        var dir = new TempDir();
        var r = await Ecsnet.Run("data", "synth", "--out", dir.Path, "--images", "6", "--val", "2", "--size", "64", "--seed", "3");
        Assert.True(r.Exit == 0, r.ToString());
        return dir;
    }

    [Fact]
    public async Task TrainInferEvalWritesCheckpointsCamsLabelsAndScores()
    {
        using var dir = await Synth();
        var voc = dir.File("VOC2012");
        var run = dir.File("run");
        var train = await Ecsnet.Run(new[] { "train-cam", "--voc", voc, "--out", run, "--method", "ecs" }.Concat(Tiny).ToArray());
        Assert.True(train.Exit == 0, train.ToString());
        Assert.Contains("trained 3/3 steps", train.Out);
        Assert.True(File.Exists(Path.Combine(run, "checkpoints", "latest")));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(run, "train-log.jsonl")).Length);

        var labels = dir.File("labels");
        var infer = await Ecsnet.Run("infer-cam", "--run", run, "--voc", voc, "--split", "train", "--out", labels, "--overlay", "synth_000000", "--sweep");
        Assert.True(infer.Exit == 0, infer.ToString());
        Assert.Contains("best background threshold", infer.Out);
        foreach (var id in File.ReadAllLines(Path.Combine(voc, "ImageSets/Segmentation/train.txt")))
        {
            var png = ImageCodec.ReadLabelPng(Path.Combine(labels, id + ".png"));
            var image = ImageCodec.ReadSize(Path.Combine(voc, "JPEGImages", id + ".jpg"));
            Assert.Equal((image.Width, image.Height), (png.Width, png.Height));
            Assert.True(File.Exists(Path.Combine(labels, "cams", id + ".npy")));
        }
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(labels, "overlays"), "synth_000000_cam_*.png"));
        // The 64-px pictures come out at the default 384-px long edge, with a legend strip under them.
        var overlay = ImageCodec.ReadSize(Path.Combine(labels, "overlays", "synth_000000_labels.png"));
        var source = ImageCodec.ReadSize(Path.Combine(voc, "JPEGImages", "synth_000000.jpg"));
        double factor = 384.0 / Math.Max(source.Width, source.Height);
        Assert.InRange(overlay.Width, (int)(source.Width * factor) - 1, (int)(source.Width * factor) + 1);
        Assert.True(overlay.Height > source.Height * factor + 1, $"no legend under the picture: {overlay}");

        var native = dir.File("native");
        infer = await Ecsnet.Run("infer-cam", "--run", run, "--voc", voc, "--split", "val", "--out", native, "--overlay", "synth_000006",
            "--overlay-size", "0", "--set", "overlays.legend=false");
        Assert.True(infer.Exit == 0, infer.ToString());
        Assert.Equal(ImageCodec.ReadSize(Path.Combine(voc, "JPEGImages", "synth_000006.jpg")),
            ImageCodec.ReadSize(Path.Combine(native, "overlays", "synth_000006_labels.png")));
        var bad = await Ecsnet.Run("infer-cam", "--run", run, "--voc", voc, "--out", dir.File("bad"), "--overlay-size", "-3");
        Assert.Equal(2, bad.Exit);
        Assert.Contains("--overlay-size: must lie in 0..4096", bad.Err);

        var eval = await Ecsnet.Run("eval", "--voc", voc, "--split", "train", "--pred", labels, "--json");
        Assert.True(eval.Exit == 0, eval.ToString());
        Assert.Contains("\"meanIoU\"", eval.Out, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task BadExperimentOptionNamesTheKey()
    {
        using var dir = await Synth();
        var r = await Ecsnet.Run("train-cam", "--voc", dir.File("VOC2012"), "--out", dir.File("run"), "--set", "cam.thetaa=0.5");
        Assert.Equal(2, r.Exit);
        Assert.Contains("unknown option 'cam.thetaa'", r.Err);

        var yaml = dir.File("exp.yaml");
        File.WriteAllText(yaml, "cam:\n  beta: 0.7\ncrfz:\n  iterations: 3\n");
        r = await Ecsnet.Run("train-cam", "--voc", dir.File("VOC2012"), "--out", dir.File("run"), "--config", yaml);
        Assert.Equal(2, r.Exit);
        Assert.Contains("exp.yaml: unknown option 'crfz'", r.Err);

        // A value of the wrong type: the key, the value and the type in words, not the serializer's text.
        r = await Ecsnet.Run("train-cam", "--voc", dir.File("VOC2012"), "--out", dir.File("run"), "--set", "camTraining.momentum=abc");
        Assert.Equal(2, r.Exit);
        Assert.Equal("error: --set camTraining.momentum=abc: camTraining.momentum: \"abc\" is not a number (expected a decimal number)", r.Err.Trim());
        File.WriteAllText(yaml, "cam:\n  beta: 0.7\ncamTraining:\n  momentum: abc\n");
        r = await Ecsnet.Run("train-cam", "--voc", dir.File("VOC2012"), "--out", dir.File("run"), "--config", yaml);
        Assert.Equal(2, r.Exit);
        Assert.Contains("exp.yaml:4: camTraining.momentum: \"abc\" is not a number (expected a decimal number)", r.Err);
        Assert.DoesNotContain("LineNumber", r.Err);
        Assert.False(Directory.Exists(dir.File("run")), "a rejected option must not leave a run folder behind");
    }

    [Fact]
    public async Task InferCamFindsTheRunFromThePipelinesStageFolderItsRootOrACheckpoint()
    {
        using var dir = await Synth();
        var voc = dir.File("VOC2012");
        // The pipeline's layout: RUN/experiment.json, the CAM network in RUN/cam/run.
        var root = dir.File("RUN");
        var camRun = Path.Combine(root, "cam", "run");
        var train = await Ecsnet.Run(new[] { "train-cam", "--voc", voc, "--out", camRun }.Concat(Tiny).ToArray());
        Assert.True(train.Exit == 0, train.ToString());
        File.Copy(Path.Combine(camRun, "experiment.json"), Path.Combine(root, "experiment.json"));

        var checkpoint = Directory.GetDirectories(Path.Combine(camRun, "checkpoints"), "step-*").Order().Last();
        foreach (var given in new[] { camRun, Path.Combine(root, "cam"), root, checkpoint })
        {
            var infer = await Ecsnet.Run("infer-cam", "--run", given, "--voc", voc, "--split", "val", "--out", dir.File("o"));
            Assert.True(infer.Exit == 0, $"--run {given}: {infer}");
        }

        // Two trained runs under one folder: which one is meant is not guessed.
        CopyDirectory(camRun, Path.Combine(root, "run"));
        var two = await Ecsnet.Run("infer-cam", "--run", root, "--voc", voc, "--out", dir.File("o"));
        Assert.Equal(2, two.Exit);
        Assert.Contains("more than one train-cam run under it", two.Err);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    [Fact]
    public async Task InferCamWarnsOfClassesTheNetworkNeverTrainedOn()
    {
        using var dir = new TempDir();
        async Task<string> Set(string name, string classes)
        {
            var r = await Ecsnet.Run("data", "synth", "--out", dir.File(name), "--images", "6", "--val", "2", "--size", "64", "--seed", "3", "--classes", classes);
            Assert.True(r.Exit == 0, r.ToString());
            return Path.Combine(dir.File(name), "VOC2012");
        }
        var birdsAndCats = await Set("a", "bird,cat");
        var dogsAndCats = await Set("b", "dog,cat");
        var run = dir.File("run");
        var train = await Ecsnet.Run(new[] { "train-cam", "--voc", birdsAndCats, "--out", run }.Concat(Tiny).ToArray());
        Assert.True(train.Exit == 0, train.ToString());
        Assert.Contains("\"bird\"", File.ReadAllText(Path.Combine(run, "trained-classes.json")));

        var same = await Ecsnet.Run("infer-cam", "--run", run, "--voc", birdsAndCats, "--out", dir.File("o1"));
        Assert.True(same.Exit == 0, same.ToString());
        Assert.DoesNotContain("warning", same.Err);

        var other = await Ecsnet.Run("infer-cam", "--run", run, "--voc", dogsAndCats, "--out", dir.File("o2"));
        Assert.True(other.Exit == 0, other.ToString());
        var dogs = File.ReadAllLines(Path.Combine(dogsAndCats, "ImageSets", "Segmentation", "train.txt"))
            .Count(id => File.ReadAllText(Path.Combine(dogsAndCats, "Annotations", id + ".xml")).Contains("<name>dog</name>"));
        Assert.Contains($"warning: images of classes dog ({dogs} of 6 images) were never in the CAM's training labels; their pixels can only be background", other.Err);
        Assert.DoesNotContain("cat (", other.Err);
    }

    [Fact]
    public async Task ResNet18StartsFromThePackagedImageNetWeightsUnlessNoPretrained()
    {
        using var dir = await Synth();
        var voc = dir.File("VOC2012");
        // Frozen stem: after training, conv1 still holds the packaged (input-folded) weights.
        var args = new[] { "train-cam", "--voc", voc, "--backbone", "resnet18", "--set", "camTraining.freezePretrained=true", "trunk.outputStride=16" }.Concat(Tiny).ToArray();
        using var packaged = new ResNet18Trunk();
        ResNet18Onnx.Load(packaged);
        var expected = packaged.state_dict()["conv1.weight"];

        var run = dir.File("pretrained");
        var r = await Ecsnet.Run(args.Concat(new[] { "--out", run }).ToArray());
        Assert.True(r.Exit == 0, r.ToString());
        var config = CamStage.LoadRunConfig(run);
        Assert.Equal(BackboneKind.ResNet18, config.Backbone);
        Assert.True(config.Pretrained);
        Assert.Equal(16, config.Trunk.OutputStride);
        using (var model = CamStage.CreateModel(config))
        {
            Checkpoints.LoadWeights(model, run);
            Assert.True(model.Trunk.state_dict()["conv1.weight"].equal(expected).all().item<bool>());
        }

        var scratch = dir.File("scratch");
        r = await Ecsnet.Run(args.Concat(new[] { "--out", scratch, "--no-pretrained" }).ToArray());
        Assert.True(r.Exit == 0, r.ToString());
        config = CamStage.LoadRunConfig(scratch);
        Assert.False(config.Pretrained);
        using (var model = CamStage.CreateModel(config))
        {
            Checkpoints.LoadWeights(model, scratch);
            Assert.False(model.Trunk.state_dict()["conv1.weight"].allclose(expected, rtol: 0, atol: 1e-3));
        }
    }

    [Fact]
    public async Task InferCamWithoutARunNamesTheFolder()
    {
        using var dir = await Synth();
        var r = await Ecsnet.Run("infer-cam", "--run", dir.File("nothing"), "--voc", dir.File("VOC2012"), "--out", dir.File("o"));
        Assert.Equal(2, r.Exit);
        Assert.Contains("nothing: not a train-cam run folder", r.Err);
        // What was looked for: the folder, a stage folder's run/, a pipeline run's cam/run/.
        Assert.Contains(Path.Combine(dir.File("nothing"), "run") + Path.DirectorySeparatorChar, r.Err);
        Assert.Contains(Path.Combine(dir.File("nothing"), "cam", "run") + Path.DirectorySeparatorChar, r.Err);
    }

    [Fact]
    public async Task PipelineReusesFinishedStagesAndRecomputesCorruptedOnes()
    {
        using var dir = await Synth();
        var voc = dir.File("VOC2012");
        var run = dir.File("pipe");
        var args = new[] { "pipeline", "--voc", voc, "--out", run, "--stages", "cam" }.Concat(Tiny).ToArray();
        var first = await Ecsnet.Run(args);
        Assert.True(first.Exit == 0, first.ToString());
        Assert.Matches(@"embedded cluster akka\.tcp://ecsnet@127\.0\.0\.1:\d+: roles coordinator, worker, preprocess; 1 worker actor\(s\) on cpu", first.Out);
        Assert.Contains("stage cam: new", first.Out);
        Assert.True(File.Exists(Path.Combine(run, "cam", "manifest.json")));
        // The stage's overlays: enlarged from the 64-px pictures, a legend strip under each.
        foreach (var png in Directory.GetFiles(Path.Combine(run, "cam", "labels", "overlays"), "*.png"))
        {
            var size = ImageCodec.ReadSize(png);
            Assert.True(size.Width == 384 || size.Height > 384, $"{Path.GetFileName(png)} is {size}");
        }

        var second = await Ecsnet.Run(args);
        Assert.True(second.Exit == 0, second.ToString());
        Assert.Contains("stage cam: reused", second.Out);

        // How overlays are drawn is no input of the stage.
        var resized = await Ecsnet.Run(args.Concat(new[] { "overlays.longEdge=512" }).ToArray());
        Assert.True(resized.Exit == 0, resized.ToString());
        Assert.Contains("stage cam: reused", resized.Out);

        // Corrupt one pseudo label: the manifest notices and the stage is recomputed.
        var label = Directory.GetFiles(Path.Combine(run, "cam", "labels"), "*.png")[0];
        File.WriteAllBytes(label, new byte[] { 1, 2, 3 });
        var third = await Ecsnet.Run(args);
        Assert.True(third.Exit == 0, third.ToString());
        Assert.Contains("recomputed: output labels/", third.Out);
        Assert.NotEqual(new byte[] { 1, 2, 3 }, File.ReadAllBytes(label));

        // A changed option is a changed input.
        var fourth = await Ecsnet.Run(args.Concat(new[] { "cam.theta=0.7" }).ToArray());
        Assert.True(fourth.Exit == 0, fourth.ToString());
        Assert.Contains("recomputed: its inputs or options changed", fourth.Out);
    }
}

/// <summary>The README's main command at toy size: every stage runs and the table is printed.</summary>
[Collection(CliCollection.Name)]
public class DemoVerbTests
{
    [Fact]
    public async Task DemoRunsEveryStageAndPrintsTheTable()
    {
        using var dir = new TempDir();
        var r = await Ecsnet.Run("demo", "--out", dir.Path, "--images", "8", "--val", "2", "--set",
            "camTraining.epochs=1", "camTraining.batchSize=4", "camTraining.crop=96", "camInference.scales=[1.0]",
            "augment.longEdgeMin=96", "augment.longEdgeMax=128", "affinity.cropSize=96", "affinity.batchSize=4", "affinity.epochs=1",
            "seg.epochs=1", "seg.batchSize=4", "seg.crop=96", "seg.scales=[1.0]");
        Assert.True(r.Exit == 0, r.ToString());
        foreach (var stage in new[] { "cam", "crf", "aff", "rw", "seg" })
        {
            Assert.Contains($"stage {stage}: new", r.Out);
            Assert.True(File.Exists(Path.Combine(dir.Path, "run", stage, "manifest.json")), stage);
        }
        Assert.Contains("stage-by-stage mIoU", r.Out);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir.Path, "run", "seg", "val"), "*.png"));
    }
}

[Collection(CliCollection.Name)]
public class CamOptionValidationTests
{
    [Theory]
    [InlineData("camTraining.epochs=0", "camTraining.epochs: must be at least 1")]
    [InlineData("cam.theta=1.5", "cam.theta: must lie in (0, 1)")]
    [InlineData("camTraining.momentum=1", "camTraining.momentum: must lie in [0, 1)")]
    public async Task OutOfRangeOptionsNameTheKey(string set, string expected)
    {
        using var dir = new TempDir();
        var synth = await Ecsnet.Run("data", "synth", "--out", dir.Path, "--images", "2", "--val", "1", "--size", "32");
        Assert.True(synth.Exit == 0, synth.ToString());
        var r = await Ecsnet.Run("train-cam", "--voc", dir.File("VOC2012"), "--out", dir.File("run"), "--set", set);
        Assert.Equal(2, r.Exit);
        Assert.Contains(expected, r.Err);
    }
}
