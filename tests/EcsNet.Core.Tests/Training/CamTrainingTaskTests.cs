using EcsNet.Core.Nets;
using EcsNet.Core.Training;
using EcsNet.Labels.Samples;
using static TorchSharp.torch;

namespace EcsNet.Core.Tests.Training;

/// <summary>The CAM network through the training loop: resume, divergence, logs.</summary>
public class CamTrainingTaskTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), "ecsnet-trainer-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
    }

    /// <summary>Random images whose content depends only on (index, rng): exercises determinism.</summary>
    private sealed class FakeData(int count, Func<float, float>? poison = null) : ISampleSet
    {
        private const int Crop = 32;

        public int Count => count;
        public string IdAt(int index) => $"img{index}";

        public TrainingSample Sample(int index, Random rng)
        {
            var img = new float[3 * Crop * Crop];
            for (int i = 0; i < img.Length; i++)
                img[i] = (float)(rng.NextDouble() - 0.5) + index * 0.01f;
            if (poison is not null) img[0] = poison(img[0]);
            var labels = new byte[20];
            labels[index % 20] = 1;
            labels[(index * 7 + 3) % 20] = 1;
            return new TrainingSample(img, labels);
        }
    }

    /// <summary>
    /// A model whose initial weights come from a private generator: other test classes run in parallel and
    /// draw from torch's global generator, so a global manual_seed would not make two models equal.
    /// </summary>
    private static EcsNetModel NewModel()
    {
        var model = new EcsNetModel(new SmallBackbone(8), new EcsNetOptions { OverlayRates = new[] { 1, 2 } });
        using var g = new Generator(7);
        using (no_grad())
            foreach (var p in model.parameters())
                p.copy_(randn(p.shape, generator: g) * 0.1);
        return model;
    }

    private static CamTrainingOptions Options(int stopAfter) => new()
    {
        Epochs = 2, BatchSize = 2, Crop = 32, WarmupSteps = 2, Momentum = 0.9, Seed = 3,
        CheckpointEvery = 100, StopAfterSteps = stopAfter, FreezePretrained = false,
    };

    private static TrainingResult Train(EcsNetModel model, CamTrainingOptions options, string run, ISampleSet data)
    {
        using var task = new CamTrainingTask(model, options, pretrained: false);
        using var source = new LocalBatchSource(data);
        return TrainingLoop.Run(task, source, run);
    }

    private static float[] Weights(EcsNetModel m) =>
        m.parameters().SelectMany(p => p.detach().contiguous().data<float>().ToArray()).ToArray();

    [Fact]
    public void ResumeContinuesExactly()
    {
        var data = new FakeData(8);
        float[] straight;
        using (var model = NewModel())
        {
            var r = Train(model, Options(6), Path.Combine(dir, "a"), data);
            Assert.Equal(6, r.Steps);
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
        Assert.Equal(straight.Length, resumed.Length);
        Assert.Equal(straight, resumed);
        // and the weights moved at all
        using var fresh = NewModel();
        Assert.NotEqual(Weights(fresh), straight);
    }

    [Fact]
    public void NonFiniteLossStopsWithStepAndLastCheckpoint()
    {
        using var model = NewModel();
        var opts = Options(0) with { CheckpointEvery = 1 };
        int calls = 0;
        var data = new FakeData(8, v => ++calls > 6 ? float.NaN : v);   // batch 2: step 3's first sample is poisoned
        var e = Assert.Throws<TrainingDivergedException>(() => Train(model, opts, Path.Combine(dir, "nan"), data));
        Assert.Equal(3, e.Step);
        Assert.NotNull(e.LastCheckpoint);
        Assert.EndsWith("step-000003", e.LastCheckpoint);
        Assert.Contains("step 3", e.Message);
        Assert.Contains("cam: ", e.Message);
        Assert.True(File.Exists(Path.Combine(e.LastCheckpoint!, "model.bin")));
    }

    [Fact]
    public void TrainingWritesLogAndTensorBoardEvents()
    {
        using var model = NewModel();
        Train(model, Options(2), Path.Combine(dir, "log"), new FakeData(8));
        var lines = File.ReadAllLines(Path.Combine(dir, "log", "train-log.jsonl"));
        Assert.Equal(2, lines.Length);
        Assert.Contains("\"Classification\"", lines[0]);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir, "log", "tensorboard"), "events.out.tfevents*", SearchOption.AllDirectories));
    }
}
