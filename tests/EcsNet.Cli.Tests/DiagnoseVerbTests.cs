using System.Text.Json.Nodes;
using EcsNet.Core.Stages;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Testing;

namespace EcsNet.Cli.Tests;

/// <summary>`ecsnet diagnose RUN`: a run folder whose stages hold known labels, scored against the masks.</summary>
[Collection(CliCollection.Name)]
public sealed class DiagnoseVerbTests
{
    /// <summary>A synthetic set and a run folder whose cam labels are the masks and whose crf labels are all background.</summary>
    private static (string Voc, string Run, VocDataset Train) Fixture(TempDir dir)
    {
        var voc = dir.File("data");
        SyntheticVoc.Generate(voc, new SynthOptions { TrainImages = 6, ValImages = 2, Size = 64, Seed = 3 });
        var train = VocDataset.Open(voc, "train", new VocOptions { Masks = MaskUse.Required });
        var run = dir.File("run");
        Directory.CreateDirectory(run);
        ExperimentJson.Write(Path.Combine(run, "experiment.json"), ExperimentConfig.SmallCpu);
        var cam = Path.Combine(run, "cam", "labels");
        var crf = Path.Combine(run, "crf", "labels");
        var cams = Path.Combine(cam, "cams");
        Directory.CreateDirectory(crf);
        Directory.CreateDirectory(cams);
        foreach (var s in train.Samples)
        {
            var mask = train.LoadMask(s.Id);
            ImageCodec.WriteLabelPng(Path.Combine(cam, s.Id + ".png"), mask);
            ImageCodec.WriteLabelPng(Path.Combine(crf, s.Id + ".png"), new LabelMask(mask.Width, mask.Height, new byte[mask.Labels.Length]));
            // CAMs that are the masks: 1 on each class's pixels, 0 elsewhere
            var classes = s.Labels.Order().ToArray();
            var maps = classes.Select(c => mask.Labels.Select(l => l == c ? 1f : 0f).ToArray()).ToArray();
            CamStore.Write(cams, s.Id, new CamMaps(mask.Height, mask.Width, classes, maps));
        }
        return (voc, run, train);
    }

    [Fact]
    public async Task LabelsThatAreTheMasksScoreFullRecallAndAllBackgroundMissesEveryObject()
    {
        using var dir = new TempDir();
        var (voc, run, _) = Fixture(dir);
        var result = await Ecsnet.Run("diagnose", run, "--voc", voc, "--json");
        Assert.True(result.Exit == 0, result.ToString());
        var doc = JsonNode.Parse(result.Out)!;
        Assert.Equal(6, (int)doc["images"]!);
        var stages = doc["stages"]!.AsArray();
        Assert.Equal(new[] { "cam", "crf" }, stages.Select(s => (string)s!["stage"]!));
        var cam = stages[0]!;
        Assert.Equal(1.0, (double)cam["objectRecall"]!);
        Assert.Equal(1.0, (double)cam["objectPrecision"]!);
        Assert.Equal(0, (long)cam["backgroundAsObject"]!);
        // the synthetic set has part masks: a perfect label covers both the part and the body
        Assert.Equal(1.0, (double)cam["partRecall"]!);
        Assert.Equal(1.0, (double)cam["bodyRecall"]!);
        var crf = stages[1]!;
        Assert.Equal(0.0, (double)crf["objectRecall"]!);
        Assert.Equal((long)crf["objectPixels"]!, (long)crf["objectAsBackground"]!);
        // la/ha from CAMs that are the masks: background and object cells nearly all right
        var affinity = doc["affinity"]!;
        Assert.True((double)affinity["backgroundPrecision"]! > 0.95, affinity.ToJsonString());
        Assert.True((double)affinity["objectPrecision"]! > 0.95, affinity.ToJsonString());
        Assert.True((long)affinity["sameObjectPairs"]! > 0, affinity.ToJsonString());

        var table = await Ecsnet.Run("diagnose", run, "--voc", voc, "--no-affinity");
        Assert.True(table.Exit == 0, table.ToString());
        Assert.Contains("6 images", table.Out);
        Assert.DoesNotContain("la/ha", table.Out);
    }

    [Fact]
    public async Task AMissingLabelOrAFolderThatIsNoRunIsNamed()
    {
        using var dir = new TempDir();
        var (voc, run, train) = Fixture(dir);
        var missing = Path.Combine(run, "crf", "labels", train.Samples[2].Id + ".png");
        File.Delete(missing);
        var result = await Ecsnet.Run("diagnose", run, "--voc", voc, "--no-affinity");
        Assert.NotEqual(0, result.Exit);
        Assert.Contains(train.Samples[2].Id, result.Err);
        Assert.Contains("missing prediction", result.Err);

        var notRun = await Ecsnet.Run("diagnose", voc, "--voc", voc);
        Assert.NotEqual(0, notRun.Exit);
        Assert.Contains("experiment.json", notRun.Err);
    }

    [Fact]
    public async Task TheErasedRegionAndPhiAreRecomputedWithTheTrainedEcsNetAndSkippedForTheCamBaseline()
    {
        using var dir = new TempDir();
        var (voc, run, _) = Fixture(dir);
        var camRun = Path.Combine(run, "cam", "run");
        string[] tiny = ["--set", "camTraining.epochs=1", "camTraining.batchSize=2", "camTraining.crop=64", "camTraining.warmupSteps=1",
            "augment.longEdgeMin=56", "augment.longEdgeMax=72", "cam.ceStartStep=0"];
        var train = await Ecsnet.Run(["train-cam", "--voc", voc, "--out", camRun, "--method", "ecs", .. tiny]);
        Assert.True(train.Exit == 0, train.ToString());
        File.Copy(Path.Combine(camRun, "experiment.json"), Path.Combine(run, "experiment.json"), overwrite: true);

        var result = await Ecsnet.Run("diagnose", run, "--voc", voc, "--no-affinity", "--json");
        Assert.True(result.Exit == 0, result.ToString());
        var reliable = JsonNode.Parse(result.Out)!["reliable"];
        Assert.NotNull(reliable);
        // every share is a share; on a synthetic set the part and body columns are defined
        foreach (var key in new[] { "phiShare", "phiBackgroundPrecision", "erasedPartShare", "erasedBodyShare", "phiBodyCoverage" })
            Assert.InRange((double)reliable![key]!, 0.0, 1.0);
        Assert.True((long)reliable!["phiObjectPixels"]! + (long)reliable["phiBackgroundPixels"]! > 0, reliable.ToJsonString());

        var skipped = await Ecsnet.Run("diagnose", run, "--voc", voc, "--no-affinity", "--no-reliable", "--json");
        Assert.Null(JsonNode.Parse(skipped.Out)!["reliable"]);

        // the CAM baseline has no erasing and no Φ
        Directory.Delete(camRun, recursive: true);
        train = await Ecsnet.Run(["train-cam", "--voc", voc, "--out", camRun, "--method", "cam", .. tiny]);
        Assert.True(train.Exit == 0, train.ToString());
        File.Copy(Path.Combine(camRun, "experiment.json"), Path.Combine(run, "experiment.json"), overwrite: true);
        var baseline = await Ecsnet.Run("diagnose", run, "--voc", voc, "--no-affinity", "--json");
        Assert.True(baseline.Exit == 0, baseline.ToString());
        Assert.Null(JsonNode.Parse(baseline.Out)!["reliable"]);
    }
}
