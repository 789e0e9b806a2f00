using EcsNet.Core.Nets;
using EcsNet.Core.Stages;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Labels.Evaluation;

namespace EcsNet.Core.Tests.Stages;

public class SegStageTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), "ecsnet-segstage-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
    }

    /// <summary>Stands in for the random-walk (or CAM) stage: its "pseudo labels" are the train masks (test only).</summary>
    private sealed class MaskCopyStage(string name = SegStage.DefaultSource) : IPipelineStage
    {
        public string Name => name;
        public string Title => "test labels";
        public IReadOnlyList<string> DependsOn => Array.Empty<string>();
        public object Options(ExperimentConfig config) => new { };

        public StageResult Run(PipelineContext context, CancellationToken ct)
        {
            var labels = Path.Combine(context.StageDir(Name), SegStage.LabelsFolder);
            Directory.CreateDirectory(labels);
            var ds = VocDataset.Open(context.VocRoot, context.TrainSplit, new VocOptions { Masks = MaskUse.Required });
            foreach (var s in ds.Samples)
                File.Copy(s.MaskPath!, Path.Combine(labels, s.Id + ".png"));
            return new StageResult(new Dictionary<string, double>());
        }
    }

    private static ExperimentConfig Tiny => ExperimentConfig.SmallCpu with
    {
        Seg = ExperimentConfig.SmallCpu.Seg with
        {
            Crop = 48, Epochs = 1, BatchSize = 2, Scales = new[] { 1.0 }, Flip = false, ScoreTrain = true, TrunkFromCam = false,
            Augment = ExperimentConfig.SmallCpu.Seg.Augment with { LongEdgeMin = 40, LongEdgeMax = 56 },
        },
    };

    [Fact]
    public void TrainsOnTheSourceLabelsAndScoresVal()
    {
        var synth = SyntheticVoc.Generate(Path.Combine(dir, "voc"), new SynthOptions { TrainImages = 6, ValImages = 4, Size = 48, Seed = 5 });
        var run = Path.Combine(dir, "run");
        var pipeline = new Pipeline(new IPipelineStage[] { new MaskCopyStage(CamStage.StageName), new MaskCopyStage(), new SegStage() });
        var context = new PipelineContext(Tiny, synth.Root, "train", "val", run);
        var outcomes = pipeline.Run(context);
        var seg = outcomes.Single(o => o.Stage == SegStage.StageName);
        var m = seg.Manifest.Metrics;
        Assert.InRange(m["mIoU"], 0, 1);
        Assert.InRange(m["trainMIoU"], 0, 1);
        Assert.Equal(3, m["steps"]);
        Assert.Equal(4, m["images"]);
        foreach (var id in synth.ValIds)
        {
            var png = ImageCodec.ReadLabelPng(Path.Combine(run, "seg", "val", id + ".png"));
            var size = ImageCodec.ReadSize(Path.Combine(synth.Root, VocLayout.Images, id + ".jpg"));
            Assert.Equal((size.Width, size.Height), (png.Width, png.Height));
        }
        Assert.Equal(3, Directory.GetFiles(Path.Combine(run, "seg", "overlays"), "*_seg.png").Length);
        Assert.True(File.Exists(Path.Combine(run, "seg", "run", "checkpoints", "latest")));
        Assert.Equal(m["mIoU"], LabelEvaluation.TryScore(synth.Root, "val", Path.Combine(run, "seg", "val"))!.MeanIoU, 9);
        // the val score's per-class IoUs are kept beside the mean (classes absent from both sides have none)
        var classIoUs = m.Where(p => p.Key.StartsWith(StageMetrics.ClassIoUPrefix, StringComparison.Ordinal)).Select(p => p.Value).ToList();
        Assert.Contains(StageMetrics.ClassIoUPrefix + "background", m.Keys);
        Assert.Equal(m["mIoU"], classIoUs.Average(), 9);

        var again = pipeline.Run(context);
        Assert.True(again.Single(o => o.Stage == SegStage.StageName).Reused);
    }

    [Fact]
    public void WithoutItsSourceStageTheErrorNamesIt()
    {
        var synth = SyntheticVoc.Generate(Path.Combine(dir, "voc2"), new SynthOptions { TrainImages = 2, ValImages = 1, Size = 32, Seed = 6 });
        var pipeline = new Pipeline(new IPipelineStage[] { new SegStage { Source = CamStage.StageName } });
        Assert.Equal(new[] { "cam" }, pipeline.Stages[0].DependsOn);
        Assert.Equal(new[] { "rw", "cam" }, new SegStage().DependsOn);
        var e = Assert.Throws<BadInputException>(() => pipeline.Run(new PipelineContext(Tiny, synth.Root, "train", "val", Path.Combine(dir, "run2"))));
        Assert.Contains("needs the output of stage 'cam'", e.Message);
    }

    [Fact]
    public void CrfRequestedRunsTheDenseCrfOrTheGivenDelegate()
    {
        var synth = SyntheticVoc.Generate(Path.Combine(dir, "voc3"), new SynthOptions { TrainImages = 2, ValImages = 1, Size = 32, Seed = 7 });
        var run = Path.Combine(dir, "run3");
        var config = Tiny with { Seg = Tiny.Seg with { Crf = true, ScoreTrain = false } };
        var pipeline = new Pipeline(new IPipelineStage[] { new MaskCopyStage(CamStage.StageName), new MaskCopyStage(), new SegStage() });
        // Without a delegate the stage runs the dense CRF with the experiment's CRF options.
        var outcomes = pipeline.Run(new PipelineContext(config, synth.Root, "train", "val", run));
        Assert.Equal(3, outcomes.Count);
        Assert.Single(Directory.GetFiles(Path.Combine(run, "seg", "val"), "*.png"));
        Directory.Delete(run, true);

        // With a delegate, it is used on every val image.
        int calls = 0;
        var withCrf = new Pipeline(new IPipelineStage[]
        {
            new MaskCopyStage(CamStage.StageName),
            new SegStage { Source = CamStage.StageName, Crf = (img, p, k) => { Interlocked.Increment(ref calls); return p; } },
        });
        withCrf.Run(new PipelineContext(config, synth.Root, "train", "val", run));
        Assert.Equal(1, calls);
    }

    [Fact]
    public void TrunkFromCamCopiesTheCamNetworksTrunk()
    {
        var synth = SyntheticVoc.Generate(Path.Combine(dir, "voc4"), new SynthOptions { TrainImages = 2, ValImages = 1, Size = 32, Seed = 8 });
        var camRun = Path.Combine(dir, "cam-run");
        var camConfig = ExperimentConfig.SmallCpu with
        {
            CamTraining = ExperimentConfig.SmallCpu.CamTraining with { Epochs = 1, BatchSize = 2, Crop = 32, WarmupSteps = 0 },
            Augment = ExperimentConfig.SmallCpu.Augment with { LongEdgeMin = 28, LongEdgeMax = 36, CropSize = 32 },
        };
        CamStage.Train(camConfig, VocDataset.Open(synth.Root, "train"), camRun);
        using var cam = CamStage.CreateModel(camConfig);
        Checkpoints.LoadWeights(cam, camRun);

        using var seg = SegStage.CreateModel(Tiny);
        SegStage.CopyCamTrunk(seg, camRun);
        var expected = cam.Trunk.state_dict();
        foreach (var (name, t) in seg.Trunk.state_dict())
            Assert.True(t.equal(expected[name]).all().item<bool>(), name);
        // A checkpoint folder works too.
        using var seg2 = SegStage.CreateModel(Tiny);
        SegStage.CopyCamTrunk(seg2, Checkpoints.Latest(camRun)!);
        Assert.True(seg2.Trunk.parameters().First().equal(cam.Trunk.parameters().First()).all().item<bool>());

        using var vgg = SegStage.CreateModel(Tiny with { Seg = Tiny.Seg with { Backbone = BackboneKind.Vgg16 } });
        var e = Assert.Throws<BadInputException>(() => SegStage.CopyCamTrunk(vgg, camRun));
        Assert.Contains("needs the same kind", e.Message);
    }
}
