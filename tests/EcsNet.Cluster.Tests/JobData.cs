using EcsNet.Core.Stages;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Crf;
using EcsNet.Labels.Jobs;
using EcsNet.Labels.Propagation;
using EcsNet.Testing;

namespace EcsNet.Cluster.Tests;

/// <summary>
/// A synthetic VOC set (<see cref="SyntheticVoc"/>) with CAMs where the cam stage leaves them (RUN/cam/labels/cams),
/// made from the masks (blurred, so the CRF has work to do) instead of a trained network: cheap and torch-free.
/// </summary>
internal sealed class JobData : IDisposable
{
    private readonly TempDir dir = new();

    private JobData(int images, int size, int seed)
    {
        Synth = SyntheticVoc.Generate(dir.File("voc"), new SynthOptions { TrainImages = images, ValImages = 1, Size = size, Seed = seed });
        Directory.CreateDirectory(CamDir);
        var train = VocDataset.Open(Synth.Root, "train", new VocOptions { Masks = MaskUse.Required });
        Parallel.ForEach(train.Samples, sample =>
        {
            var mask = ImageCodec.ReadLabelPng(sample.MaskPath!);
            var classes = sample.Labels.Order().ToArray();
            var maps = classes.Select(c => Blur(mask, c, 4)).ToArray();
            CamStore.Write(CamDir, sample.Id, new CamMaps(mask.Height, mask.Width, classes, maps));
            Sizes[sample.Id] = (mask.Width, mask.Height);
        });
    }

    public SynthResult Synth { get; }
    public IReadOnlyList<string> Ids => Synth.TrainIds;
    public string Root => dir.Path;
    public string RunDir => dir.File("run");
    public string CamDir => Path.Combine(RunDir, CamStage.StageName, "labels", "cams");
    public System.Collections.Concurrent.ConcurrentDictionary<string, (int Width, int Height)> Sizes { get; } = new();

    public static DenseCrfOptions Crf { get; } = new() { MaxDegreeOfParallelism = 1, BilateralSxy = 20, GaussianSxy = 1 };

    public static JobData Create(int images, int size = 96, int seed = 11) => new(images, size, seed);

    public string ImagePath(string id) => Path.Combine(Synth.Root, VocLayout.Images, id + ".jpg");

    public string Out(string folder, string file) => dir.File(Path.Combine(folder, file));

    public CrfLabelJob CrfJob(string id, string folder, DenseCrfOptions? crf = null) =>
        new(id, ImagePath(id), CamDir, Out(folder, id + ".png"), 0.2, crf ?? Crf);

    public AffinityMapsJob MapsJob(string id, string folder) =>
        new(id, ImagePath(id), CamDir, Out(folder, id + AffinityMapsFile.Extension), new AffinityLabelOptions(), Crf);

    /// <summary>A propagation job on random features written for it (radius 2, so small images have enough grid).</summary>
    public PropagationJob WalkJob(string id, string folder)
    {
        var (w, h) = Sizes[id];
        int gh = (h + 7) / 8, gw = (w + 7) / 8, channels = 8;
        var rng = new Random(id.Length * 31 + id[^1]);
        var features = new float[channels * gh * gw];
        for (int i = 0; i < features.Length; i++) features[i] = (float)rng.NextDouble();
        var featuresPath = Out(folder + "-features", id + ".npy");
        PropagationJob.WriteFeatures(featuresPath, features, channels, gh, gw);
        return new PropagationJob(id, featuresPath, CamDir, h, w, Out(folder, id + ".png"), new RandomWalkOptions { LogT = 5, Radius = 2, Threads = 1 });
    }

    /// <summary>The context of a run in <see cref="RunDir"/> (or another folder) with the given job runner.</summary>
    public PipelineContext Context(IImageJobRunner runner, string? runDir = null) =>
        new(ExperimentConfig.SmallCpu, Synth.Root, "train", "val", runDir ?? RunDir) { Jobs = runner };

    /// <summary>Every label PNG of a folder, by file name.</summary>
    public static SortedDictionary<string, byte[]> Labels(string folder) =>
        new(Directory.GetFiles(folder, "*.png").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes), StringComparer.Ordinal);

    public void Dispose() => dir.Dispose();

    private static float[] Blur(LabelMask mask, int cls, int radius)
    {
        int w = mask.Width, h = mask.Height;
        var map = new float[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int hits = 0, all = 0;
                for (int dy = -radius; dy <= radius; dy++)
                    for (int dx = -radius; dx <= radius; dx++)
                    {
                        int yy = Math.Clamp(y + dy, 0, h - 1), xx = Math.Clamp(x + dx, 0, w - 1);
                        hits += mask.Labels[yy * w + xx] == cls ? 1 : 0;
                        all++;
                    }
                map[y * w + x] = 0.9f * hits / all;
            }
        return map;
    }
}
