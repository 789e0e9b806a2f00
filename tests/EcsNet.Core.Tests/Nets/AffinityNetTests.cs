using EcsNet.Core.Nets;
using EcsNet.Core.Training;
using EcsNet.Data;
using EcsNet.Labels.Propagation;
using EcsNet.Labels.Samples;
using static TorchSharp.torch;

namespace EcsNet.Core.Tests.Nets;

public class AffinityNetTests
{
    [Fact]
    public void LossMatchesHandWorkedValues()
    {
        using var scope = NewDisposeScope();
        // four pairs: one background-positive (a = 0.5), one foreground-positive (0.9), two negatives (0.2, 0.7)
        var aff = tensor(new float[] { 0.5f, 0.9f, 0.2f, 0.7f });
        var bg = tensor(new float[] { 1, 0, 0, 0 });
        var fg = tensor(new float[] { 0, 1, 0, 0 });
        var neg = tensor(new float[] { 0, 0, 1, 1 });
        var loss = AffinityNet.Loss(aff, bg, fg, neg);
        // With PSA's ε = 1e-5 inside the logs and the counts:
        // bg  = −ln 0.50001 / 1.00001 = 0.693120;   fg = −ln 0.90001 / 1.00001 = 0.105348
        // neg = (−ln 0.80001 − ln 0.30001) / 2.00001 = (0.223131 + 1.203939) / 2.00001 = 0.713532
        // total = 0.693120/4 + 0.105348/4 + 0.713532/2 = 0.173280 + 0.026337 + 0.356766 = 0.556383
        Assert.Equal(0.693120, loss.Background.item<float>(), 5);
        Assert.Equal(0.105348, loss.Foreground.item<float>(), 5);
        Assert.Equal(0.713532, loss.Negative.item<float>(), 5);
        Assert.Equal(0.556383, loss.Total.item<float>(), 5);
        Assert.Equal(2.0, loss.NegativeCount.item<float>(), 4);
    }

    [Fact]
    public void LossOfAnEmptyPartIsZeroNotNaN()
    {
        using var scope = NewDisposeScope();
        // no foreground pairs at all (an image of background only): the ε in the count keeps fg at 0
        var aff = tensor(new float[] { 0.25f, 0.5f });
        var loss = AffinityNet.Loss(aff, tensor(new float[] { 1, 0 }), zeros(2), tensor(new float[] { 0, 1 }));
        Assert.Equal(0f, loss.Foreground.item<float>());
        // bg = −ln 0.25001 / 1.00001 = 1.386254, neg = −ln 0.50001 / 1.00001 = 0.693120
        // total = 1.386254/4 + 0.693120/2 = 0.693120
        Assert.Equal(0.693120, loss.Total.item<float>(), 5);
    }

    [Fact]
    public void PairAffinitiesAreExpOfMinusMeanL1()
    {
        using var scope = NewDisposeScope();
        // 2 channels on a 5x9 grid; radius 5 leaves one from-pixel, (0,4), with features (1, 3).
        // Its partner (0,5) (offset 0 = (0,1)) has (2, 2): mean(|1−2|, |3−2|) = 1 → e^−1.
        // Partner (1,4) (offset 8 = (1,0)) equals it → e^0 = 1. Every other partner is 0: mean(1, 3) = 2 → e^−2.
        var f = zeros(1, 2, 5, 9);
        f[0, 0, 0, 4] = tensor(1f); f[0, 1, 0, 4] = tensor(3f);
        f[0, 0, 0, 5] = tensor(2f); f[0, 1, 0, 5] = tensor(2f);
        f[0, 0, 1, 4] = tensor(1f); f[0, 1, 1, 4] = tensor(3f);
        var pairs = AffinityPairs.Create(5, 5, 9);
        Assert.Equal((1, 0), pairs.Offsets[8]);
        var aff = AffinityNet.PairAffinities(f, pairs);
        Assert.Equal(new long[] { 1, 34, 1 }, aff.shape);
        var a = aff.data<float>().ToArray();
        Assert.Equal(MathF.Exp(-1f), a[0], 6);
        Assert.Equal(1f, a[8], 6);
        for (int k = 0; k < 34; k++)
            if (k != 0 && k != 8)
                Assert.Equal(MathF.Exp(-2f), a[k], 6);

        // random features: torch path equals the C# path used by the random walk
        var g = rand(1, 6, 7, 11, generator: new Generator(3));
        var pairs2 = AffinityPairs.Create(5, 7, 11);
        var torchAff = AffinityNet.PairAffinities(g, pairs2).data<float>().ToArray();
        var cpuAff = RandomWalkTransition.PairAffinities(g[0].contiguous().data<float>().ToArray(), 6, pairs2);
        Assert.Equal(pairs2.PairCount, torchAff.Length);
        for (int i = 0; i < torchAff.Length; i++)
            Assert.Equal(cpuAff[i], torchAff[i], 5);
    }

    [Fact]
    public void ForwardGivesPsaChannelsAtStride8()
    {
        using var scope = NewDisposeScope();
        var net = new AffinityNet(new SmallBackbone(width: 8));
        net.eval();
        using var _ = no_grad();
        var features = net.forward(randn(2, 3, 80, 96));
        Assert.Equal(new long[] { 2, 448, 10, 12 }, features.shape);
        var aff = net.PairAffinities(features);
        Assert.Equal(new long[] { 2, 34, AffinityPairs.Create(5, 10, 12).FromCount }, aff.shape);
        Assert.True(aff.min().item<float>() > 0f && aff.max().item<float>() <= 1f);
        // 1×1 convs without bias, as PSA: the new layers hold exactly 4 weight tensors
        Assert.Equal(4, net.NewLayers.SelectMany(m => m.parameters()).Count());
    }

    [Fact]
    public void PolyScheduleFollowsPsa()
    {
        var o = new AffinityNetOptions();
        Assert.Equal(1.0, o.PolyFactor(0, 100));
        Assert.Equal(Math.Pow(0.5, 0.9), o.PolyFactor(50, 100), 12);
        Assert.Equal(o.PolyFactor(99, 100), o.PolyFactor(150, 100));
    }

    /// <summary>Two-region images (left half red-ish foreground of class 3, right half blue-ish background) and
    /// their grid label maps; a few SGD steps through the training loop must lower the affinity loss on them.</summary>
    [Fact]
    public void TrainingStepsDecreaseTheLoss()
    {
        const int size = 96, grid = 12;
        var images = new float[2][];
        var noise = new Random(1);
        for (int i = 0; i < 2; i++)
        {
            images[i] = new float[3 * size * size];
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    int p = y * size + x;
                    images[i][p] = (x < size / 2 ? 1.5f : 0) + 0.2f * (float)(noise.NextDouble() - 0.5);
                    images[i][size * size + p] = 0.2f * (float)(noise.NextDouble() - 0.5);
                    images[i][2 * size * size + p] = (x >= size / 2 ? 1.5f : 0) + 0.2f * (float)(noise.NextDouble() - 0.5);
                }
        }
        var map = new byte[grid * grid];
        for (int y = 0; y < grid; y++)
            for (int x = 0; x < grid; x++)
                map[y * grid + x] = x < grid / 2 ? (byte)3 : (byte)0;
        map[0] = VocClasses.Ignore;

        var options = new AffinityNetOptions { ReducedChannels = new[] { 8, 8, 16 }, LearningRate = 0.01, CropSize = size, BatchSize = 2, Epochs = 30, CheckpointEvery = 100 };
        using var net = new AffinityNet(new SmallBackbone(width: 8), options);
        using var task = new AffinityTrainingTask(net, options, seed: 7);
        using var source = new LocalBatchSource(new FixedSamples(images, map));
        var run = Path.Combine(Path.GetTempPath(), "ecsnet-aff-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = TrainingLoop.Run(task, source, run);
            Assert.Equal(30, result.Steps);
            var losses = File.ReadAllLines(Path.Combine(run, "train-log.jsonl"))
                .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("Total").GetDouble()).ToList();
            Assert.Equal(30, losses.Count);
            Assert.All(losses, l => Assert.True(double.IsFinite(l)));
            Assert.True(losses.TakeLast(5).Average() < 0.7 * losses.Take(3).Average(),
                $"loss did not fall: {string.Join(", ", losses.Select(l => l.ToString("F3")))}");
        }
        finally
        {
            if (Directory.Exists(run)) Directory.Delete(run, true);
        }
    }

    /// <summary>The same crops every time (no augmentation), with one label grid.</summary>
    private sealed class FixedSamples(float[][] images, byte[] grid) : ISampleSet
    {
        public int Count => images.Length;
        public string IdAt(int index) => $"img{index}";
        public TrainingSample Sample(int index, Random rng) => new(images[index], grid);
    }

    [Fact]
    public void TrainerUsesPsaParameterGroupsAndFreezesBatchNorm()
    {
        using var scope = NewDisposeScope();
        var backbone = new SmallBackbone(width: 8);
        var net = new AffinityNet(backbone, new AffinityNetOptions { ReducedChannels = new[] { 4, 4, 4 } });
        using var task = new AffinityTrainingTask(net, net.Options, seed: 0);
        var groups = task.Groups.ToDictionary(g => g.Name);
        // the four new 1×1 convs (no bias) train at 10× lr with weight decay; trunk convs at 1×
        Assert.Equal(4, groups["new weights"].Tensors);
        Assert.Equal(1.0, groups["new weights"].LearningRate, 12);
        Assert.Equal(5e-4, groups["new weights"].WeightDecay);
        Assert.Equal(0, groups["new biases"].Tensors);
        int trunkConvs = backbone.named_parameters().Count(p => p.parameter.dim() == 4);
        Assert.Equal(trunkConvs, groups["trunk weights"].Tensors);
        Assert.Equal(0.1, groups["trunk weights"].LearningRate, 12);
        // every BatchNorm is frozen (PSA), so no trunk bias or scale is trained
        Assert.Equal(0, groups["trunk biases"].Tensors);
        Assert.All(backbone.modules().OfType<TorchSharp.Modules.BatchNorm2d>(), bn => Assert.False(bn.training));
    }

    [Fact]
    public void InferFeaturesPadsToTheStrideGrid()
    {
        using var scope = NewDisposeScope();
        var net = new AffinityNet(new SmallBackbone(width: 8), new AffinityNetOptions { ReducedChannels = new[] { 4, 4, 8 } });
        var (features, channels, gh, gw) = net.InferFeatures(randn(1, 3, 75, 90));
        Assert.Equal((16, 10, 12), (channels, gh, gw));   // ⌈75/8⌉ = 10, ⌈90/8⌉ = 12
        Assert.Equal(16 * 10 * 12, features.Length);
        Assert.True(net.training);                         // the module's mode is restored
        Assert.Throws<BadInputException>(() => net.InferFeatures(randn(2, 3, 16, 16)));
    }

    [Fact]
    public void MismatchedLabelMapsAreBadInput()
    {
        using var scope = NewDisposeScope();
        var net = new AffinityNet(new SmallBackbone(width: 8), new AffinityNetOptions { ReducedChannels = new[] { 4, 4, 4 } });
        var options = net.Options with { CropSize = 80 };
        using var task = new AffinityTrainingTask(net, options, seed: 0);
        var sample = new TrainingSample(new float[3 * 80 * 80], new byte[81]);
        var e = Assert.Throws<BadInputException>(() => task.Loss(0, new[] { sample }, new BatchShard(0, 1, 1), sync: null));
        Assert.Contains("81 cells", e.Message);
        Assert.Contains("10x10", e.Message);
    }
}
