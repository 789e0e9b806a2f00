using EcsNet.Core.Stages;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Crf;
using EcsNet.Labels.Jobs;
using EcsNet.Testing;

namespace EcsNet.Core.Tests.Stages;

/// <summary>
/// The crf, aff (la/ha step) and rw stages hand their per-image work to a job runner. These tests pin that the
/// labels are byte for byte what the stages computed in process before (the per-image functions they called),
/// whatever runner runs the jobs.
/// </summary>
public sealed class ImageJobStagesTests
{
    /// <summary>The demo's toy settings (README, DemoVerbTests): every stage runs in seconds on a CPU.</summary>
    private static ExperimentConfig Tiny => ExperimentConfig.SmallCpu with
    {
        CamTraining = ExperimentConfig.SmallCpu.CamTraining with { Epochs = 1, BatchSize = 4, Crop = 96 },
        CamInference = new() { Scales = new[] { 1.0 } },
        Augment = ExperimentConfig.SmallCpu.Augment with { LongEdgeMin = 96, LongEdgeMax = 128 },
        Affinity = ExperimentConfig.SmallCpu.Affinity with { CropSize = 96, BatchSize = 4, Epochs = 1 },
    };

    /// <summary>Counts the jobs it runs (in process, one at a time).</summary>
    private sealed class CountingRunner : IImageJobRunner
    {
        public List<string> Kinds { get; } = new();

        public async Task<IReadOnlyList<ImageJobResult>> RunAsync(IReadOnlyList<IImageJob> jobs, ImageJobProgress? progress, CancellationToken ct)
        {
            lock (Kinds) Kinds.AddRange(jobs.Select(j => j.GetType().Name));
            return await new LocalImageJobRunner(1).RunAsync(jobs, progress, ct);
        }
    }

    [Fact]
    public void CrfAndRandomWalkLabelsAreTheInProcessComputationByteForByte()
    {
        using var dir = new TempDir();
        var synth = SyntheticVoc.Generate(dir.File("voc"), new SynthOptions { TrainImages = 5, ValImages = 1, Size = 96, Seed = 3 });
        var config = Tiny;
        var pipeline = new Pipeline(new IPipelineStage[] { new CamStage(), new CrfStage(), new AffinityStage(), new RandomWalkStage() });
        var runner = new CountingRunner();
        var context = new PipelineContext(config, synth.Root, "train", "val", dir.File("run")) { Jobs = runner };
        pipeline.Run(context);
        Assert.Equal(5, runner.Kinds.Count(k => k == nameof(CrfLabelJob)));
        Assert.Equal(5, runner.Kinds.Count(k => k == nameof(AffinityMapsJob)));
        Assert.Equal(5, runner.Kinds.Count(k => k == nameof(PropagationJob)));

        var camDir = Path.Combine(context.StageDir(CamStage.StageName), "labels", "cams");
        using var net = AffinityStage.CreateNet(config);
        Checkpoints.LoadWeights(net, Path.Combine(context.StageDir(AffinityStage.StageName), "run"));
        bool anyForeground = false;
        foreach (var id in synth.TrainIds)
        {
            var image = ImageCodec.ReadRgb(Path.Combine(synth.Root, VocLayout.Images, id + ".jpg"));
            var cams = CamStore.Read(camDir, id);
            // what CrfStage.Run and RandomWalkStage.Run computed per image before they ran jobs
            var crf = CamCrf.Refine(image, cams, CamBackground.Constant(config.BackgroundThreshold), config.Crf with { MaxDegreeOfParallelism = 1 });
            var rw = RandomWalkStage.Propagate(net, image, cams, config);
            Assert.Equal(ImageCodec.EncodeLabelPng(crf), File.ReadAllBytes(Path.Combine(context.StageDir("crf"), "labels", id + ".png")));
            Assert.Equal(ImageCodec.EncodeLabelPng(rw), File.ReadAllBytes(Path.Combine(context.StageDir("rw"), "labels", id + ".png")));
            anyForeground |= crf.Labels.Any(l => l != 0);
        }
        Assert.True(anyForeground, "the CRF labels are not all background");
        // the jobs' intermediate files are gone once the stages are done
        Assert.False(Directory.Exists(Path.Combine(context.StageDir("aff"), AffinityStage.MapsFolder)));
        Assert.False(Directory.Exists(Path.Combine(context.StageDir("rw"), RandomWalkStage.FeaturesFolder)));

        // the same stages with the default runner (several jobs at once) write the same bytes. Not "aff": forcing it
        // retrains AffinityNet, whose random draws come from torch's process-wide generator, which test classes
        // running meanwhile reseed (so the net, and the walk after it, may differ for reasons no runner controls)
        var before = Snapshot(context);
        Assert.Equal(10, before.Count);
        pipeline.Run(context with { Jobs = LocalImageJobRunner.Default }, force: new[] { "crf", "rw" });
        Assert.Equal(before, Snapshot(context));
    }

    [Fact]
    public void AJobFailureStopsTheStageNamingTheImage()
    {
        using var dir = new TempDir();
        var synth = SyntheticVoc.Generate(dir.File("voc"), new SynthOptions { TrainImages = 3, ValImages = 1, Size = 64, Seed = 4 });
        var context = new PipelineContext(Tiny, synth.Root, "train", "val", dir.File("run"));
        var pipeline = new Pipeline(new IPipelineStage[] { new CamStage(), new CrfStage() });
        pipeline.Run(context, only: new[] { "cam" });
        var victim = synth.TrainIds[1];
        File.Delete(Path.Combine(context.StageDir("cam"), "labels", "cams", victim + ".npy"));
        var e = Assert.Throws<BadInputException>(() => pipeline.Run(context, only: new[] { "crf" }));
        Assert.StartsWith($"image {victim}: ", e.Message);
        Assert.Contains("CAM file is missing", e.Message);
    }

    private static Dictionary<string, byte[]> Snapshot(PipelineContext context) =>
        new[] { "crf", "rw" }.SelectMany(stage => Directory.GetFiles(Path.Combine(context.StageDir(stage), "labels"), "*.png")
            .Select(f => (Key: stage + "/" + Path.GetFileName(f), Bytes: File.ReadAllBytes(f))))
            .ToDictionary(p => p.Key, p => p.Bytes);
}
