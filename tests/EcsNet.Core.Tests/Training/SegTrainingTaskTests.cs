using System.Text.Json;
using EcsNet.Core.Nets;
using EcsNet.Core.Training;
using EcsNet.Data;
using EcsNet.Labels.Samples;
using static TorchSharp.torch;

namespace EcsNet.Core.Tests.Training;

/// <summary>DeepLab through the training loop: learning, resume, divergence; the pseudo-label sample set.</summary>
public class SegTrainingTaskTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), "ecsnet-seg-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
    }

    /// <summary>
    /// Learnable toy data: a bright square (class 1 + index % 2) on a dark noisy background (class 0), a band of
    /// ignore (255) along the left edge. Content depends only on (index, rng).
    /// </summary>
    private sealed class SquareData(int count, Func<float, float>? poison = null) : ISampleSet
    {
        private const int Crop = 32;

        public int Count => count;
        public string IdAt(int index) => $"img{index}";

        public TrainingSample Sample(int index, Random rng)
        {
            int plane = Crop * Crop, side = Crop / 2;
            int x0 = rng.Next(Crop - side + 1), y0 = rng.Next(Crop - side + 1);
            byte cls = (byte)(1 + index % 2);
            var img = new float[3 * plane];
            var labels = new byte[plane];
            for (int y = 0; y < Crop; y++)
                for (int x = 0; x < Crop; x++)
                {
                    int p = y * Crop + x;
                    bool inside = x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
                    float noise = (float)(rng.NextDouble() - 0.5) * 0.2f;
                    img[p] = (inside ? 1.5f : -1f) + noise;
                    img[plane + p] = (inside && cls == 2 ? 1.5f : -1f) + noise;
                    img[2 * plane + p] = noise;
                    labels[p] = x < 2 ? VocClasses.Ignore : inside ? cls : (byte)0;
                }
            if (poison is not null) img[0] = poison(img[0]);
            return new TrainingSample(img, labels);
        }
    }

    /// <summary>
    /// A model whose initial weights come from a private generator (other test classes draw from torch's global
    /// generator in parallel, so a global manual_seed would not make two models equal).
    /// </summary>
    private static DeepLab NewModel(double dropout = 0.1)
    {
        var model = new DeepLab(new SmallBackbone(8), new SegOptions { Classes = 3, HeadDropout = dropout });
        using var g = new Generator(5);
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (name.Contains(".bn", StringComparison.Ordinal) && name.EndsWith(".weight", StringComparison.Ordinal))
                    p.fill_(1);
                else if (p.dim() > 1)
                    p.copy_(randn(p.shape, generator: g) * Math.Sqrt(2.0 / (p.shape[1] * p.shape[2] * p.shape[3])));
                else
                    p.zero_();
        return model;
    }

    private static SegOptions Options(int stopAfter, int epochs = 2) => new()
    {
        Classes = 3, Epochs = epochs, BatchSize = 2, Crop = 32, LearningRate = 0.01, Momentum = 0.9, Seed = 3,
        HeadDropout = 0.1, LossGrid = SegLossGrid.Image, CheckpointEvery = 100, StopAfterSteps = stopAfter, FreezePretrained = false,
    };

    private static TrainingResult Train(DeepLab model, SegOptions options, string run, ISampleSet data)
    {
        using var task = new SegTrainingTask(model, options, pretrained: false);
        using var source = new LocalBatchSource(data);
        return TrainingLoop.Run(task, source, run);
    }

    private static float[] Weights(DeepLab m) =>
        m.parameters().SelectMany(p => p.detach().contiguous().data<float>().ToArray()).ToArray();

    private static double[] LoggedLosses(string run) =>
        File.ReadAllLines(Path.Combine(run, "train-log.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToArray();

    [Fact]
    public void AFewStepsLowerTheLoss()
    {
        var run = Path.Combine(dir, "learn");
        using var model = NewModel();
        var result = Train(model, Options(0, epochs: 10), run, new SquareData(6));
        Assert.True(result.Completed);
        Assert.Equal(30, result.Steps);
        var losses = LoggedLosses(run);
        Assert.Equal(30, losses.Length);
        double first = losses.Take(3).Average(), last = losses.TakeLast(3).Average();
        Assert.True(last < 0.7 * first, $"loss went from {first:F4} to {last:F4}");
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(run, "tensorboard"), "events.out.tfevents*", SearchOption.AllDirectories));
    }

    [Fact]
    public void ResumeContinuesExactly()
    {
        var data = new SquareData(8);
        float[] straight;
        using (var model = NewModel())
        {
            Assert.Equal(6, Train(model, Options(6), Path.Combine(dir, "a"), data).Steps);
            straight = Weights(model);
        }
        using (var model = NewModel())
            Assert.Equal(3, Train(model, Options(3), Path.Combine(dir, "b"), data).Steps);
        float[] resumed;
        using (var model = NewModel())
        {
            Assert.Equal(6, Train(model, Options(3), Path.Combine(dir, "b"), data).Steps);
            resumed = Weights(model);
        }
        Assert.Equal(straight, resumed);
        Assert.Equal(LoggedLosses(Path.Combine(dir, "a")), LoggedLosses(Path.Combine(dir, "b")));
        using var fresh = NewModel();
        Assert.NotEqual(Weights(fresh), straight);
    }

    [Fact]
    public void NonFiniteLossStopsWithStepAndLastCheckpoint()
    {
        using var model = NewModel();
        int calls = 0;
        var data = new SquareData(8, v => ++calls > 4 ? float.NaN : v);   // batch 2: step 2's first sample is poisoned
        var e = Assert.Throws<TrainingDivergedException>(() => Train(model, Options(0) with { CheckpointEvery = 1 }, Path.Combine(dir, "nan"), data));
        Assert.Equal(2, e.Step);
        Assert.EndsWith("step-000002", e.LastCheckpoint);
        Assert.Contains("step 2", e.Message);
        Assert.True(File.Exists(Path.Combine(e.LastCheckpoint!, "model.bin")));
    }

    [Fact]
    public void MissingPseudoLabelNamesTheFile()
    {
        var synth = SyntheticVoc.Generate(Path.Combine(dir, "voc"), new SynthOptions { TrainImages = 3, ValImages = 1, Size = 32, Seed = 2 });
        var labels = Path.Combine(dir, "pseudo");
        Directory.CreateDirectory(labels);
        foreach (var id in synth.TrainIds.Take(2))
            File.Copy(Path.Combine(synth.Root, VocLayout.SegmentationMasks, id + ".png"), Path.Combine(labels, id + ".png"));
        var train = VocDataset.Open(synth.Root, "train");
        var missing = Path.Combine(labels, synth.TrainIds[2] + ".png");
        var e = Assert.Throws<BadInputException>(() => new SegSampleSet(train, labels, AugmentOptions.None, 21, cacheImages: false));
        Assert.Equal(missing, e.Subject);
        Assert.Contains($"missing pseudo label for id '{synth.TrainIds[2]}'", e.Message);
    }

    [Fact]
    public void PseudoLabelsReplaceTheMasksAndMoveWithTheImage()
    {
        var synth = SyntheticVoc.Generate(Path.Combine(dir, "voc2"), new SynthOptions { TrainImages = 2, ValImages = 1, Size = 32, Seed = 4 });
        var labels = Path.Combine(dir, "pseudo2");
        Directory.CreateDirectory(labels);
        // Pseudo labels unlike any mask: left half class 5, right half class 9.
        foreach (var id in synth.TrainIds)
        {
            var (w, h) = ImageCodec.ReadSize(Path.Combine(synth.Root, VocLayout.Images, id + ".jpg"));
            ImageCodec.WriteLabelPng(Path.Combine(labels, id + ".png"),
                new LabelMask(w, h, Enumerable.Range(0, w * h).Select(i => (byte)(i % w < w / 2 ? 5 : 9)).ToArray()));
        }
        var set = new SegSampleSet(VocDataset.Open(synth.Root, "train"), labels,
            AugmentOptions.None with { FlipProbability = 1, CropSize = 40 }, 21, cacheImages: true);
        var (image, lab) = set.Sample(0, new Random(1));   // flipped, placed in a 40-px crop with ignore padding
        Assert.Equal(3 * 40 * 40, image.Length);
        Assert.Equal(new byte[] { 5, 9, 255 }, lab.Distinct().Order().ToArray());
        // Flipped: within a row, class 9 comes before class 5.
        for (int y = 0; y < 40; y++)
        {
            var row = lab.Skip(y * 40).Take(40).Where(v => v != 255).ToArray();
            if (row.Length == 0) continue;
            Assert.Equal(9, row[0]);
            Assert.Equal(5, row[^1]);
        }
    }
}
