using EcsNet.Testing;

namespace EcsNet.Cli.Tests;

/// <summary>A verb that fails leaves no empty run folder and no experiment.json of options it rejected; an earlier run's folder is left as it was.</summary>
[Collection(CliCollection.Name)]
public class NewRunFolderTests
{
    private static async Task<TempDir> Synth()
    {
        var dir = new TempDir();
        var r = await Ecsnet.Run("data", "synth", "--out", dir.Path, "--images", "4", "--val", "1", "--size", "48", "--seed", "5");
        Assert.True(r.Exit == 0, r.ToString());
        return dir;
    }

    [Theory]
    [InlineData("--set", "camTraining.momentum=2")]          // out of range: was written to experiment.json, then rejected by the stage
    [InlineData("--set", "camTraining.momentum=abc")]        // wrong type
    [InlineData("--set", "augment.longEdgeMax=1")]           // an empty rescale range (an argument error of the data layer)
    [InlineData("--val-split", "nosuchsplit")]               // a split the VOC tree does not have
    [InlineData("--weights", "no-such-weights.safetensors")] // a weights file that is not there
    public async Task ARejectedPipelineWritesNothing(string option, string value)
    {
        using var dir = await Synth();
        var run = dir.File(Path.Combine("runs", "first"));
        var r = await Ecsnet.Run("pipeline", "--voc", dir.File("VOC2012"), "--out", run, option, value);
        Assert.True(r.Exit == 2, r.ToString());
        Assert.StartsWith("error: ", r.Err);
        Assert.False(Directory.Exists(dir.File("runs")), $"left {dir.File("runs")} behind");
    }

    [Fact]
    public async Task ARejectedDemoGeneratesNothing()
    {
        using var dir = new TempDir();
        var r = await Ecsnet.Run("demo", "--out", dir.File("demo"), "--images", "4", "--val", "1", "--set", "camTraining.momentum=2");
        Assert.True(r.Exit == 2, r.ToString());
        Assert.Contains("camTraining", r.Err);
        Assert.False(Directory.Exists(dir.File("demo")), "the options are checked before the synthetic set is generated");
    }

    [Fact]
    public async Task APipelineThatFailsInsideTheClusterTakesBackTheFolderItCreated()
    {
        using var dir = await Synth();
        var run = dir.File(Path.Combine("runs", "first"));
        // crf alone needs the CAM stage's output: the coordinator refuses it after the run folder was made.
        var r = await Ecsnet.Run("pipeline", "--voc", dir.File("VOC2012"), "--out", run, "--stages", "crf");
        Assert.Equal(2, r.Exit);
        Assert.Contains("needs the output of stage 'cam'", r.Err);
        Assert.False(Directory.Exists(dir.File("runs")), $"left {dir.File("runs")} behind");
    }

    [Fact]
    public async Task AnEarlierRunsFolderIsLeftAsItWas()
    {
        using var dir = await Synth();
        var run = dir.File("run");
        Directory.CreateDirectory(Path.Combine(run, "cam", "run"));
        File.WriteAllText(Path.Combine(run, "experiment.json"), "{ \"earlier\": true }");
        File.WriteAllText(Path.Combine(run, "cam", "run", "train-log.jsonl"), "{\"step\":1}\n");

        var r = await Ecsnet.Run("pipeline", "--voc", dir.File("VOC2012"), "--out", run, "--set", "cam.theta=7");
        Assert.Equal(2, r.Exit);
        Assert.Equal("{ \"earlier\": true }", File.ReadAllText(Path.Combine(run, "experiment.json")));

        r = await Ecsnet.Run("pipeline", "--voc", dir.File("VOC2012"), "--out", run, "--stages", "crf");
        Assert.Equal(2, r.Exit);
        Assert.True(File.Exists(Path.Combine(run, "cam", "run", "train-log.jsonl")));
    }

    [Fact]
    public async Task TrainCamChecksTheWholeExperimentBeforeWritingIt()
    {
        using var dir = await Synth();
        var run = dir.File("run");
        // cam.* used to be checked only when the network was built, after experiment.json was written.
        var r = await Ecsnet.Run("train-cam", "--voc", dir.File("VOC2012"), "--out", run, "--set", "cam.theta=7");
        Assert.True(r.Exit == 2, r.ToString());
        Assert.Contains("cam", r.Err);
        Assert.False(Directory.Exists(run));

        r = await Ecsnet.Run("train-cam", "--voc", dir.File("VOC2012"), "--out", run, "--set", "augment.longEdgeMax=1");
        Assert.True(r.Exit == 2, r.ToString());
        Assert.Contains("error: augment: long-edge range", r.Err);
        Assert.False(Directory.Exists(run));

        File.WriteAllText(dir.File("taken"), "");
        r = await Ecsnet.Run("train-cam", "--voc", dir.File("VOC2012"), "--out", dir.File("taken"), "--set", "camTraining.epochs=1");
        Assert.True(r.Exit == 2, r.ToString());
        Assert.Contains("is a file", r.Err);
    }

    [Fact]
    public async Task TrainSegChecksTheWholeExperimentBeforeWritingIt()
    {
        using var dir = await Synth();
        var run = dir.File("seg-run");
        var labels = Path.Combine(dir.File("VOC2012"), "SegmentationClass");
        var r = await Ecsnet.Run("train-seg", "--voc", dir.File("VOC2012"), "--labels", labels, "--out", run, "--set", "backgroundThreshold=3");
        Assert.True(r.Exit == 2, r.ToString());
        Assert.Contains("backgroundThreshold: must lie in (0, 1)", r.Err);
        Assert.False(Directory.Exists(run));
    }
}
