using EcsNet.Core.Nets;
using EcsNet.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace EcsNet.Bench.Tests;

/// <summary>
/// The step benchmark's net must be the PyTorch peer's CamNet (torch_cpu_step.py, docs/BENCHMARKS.md "Peers"): same
/// parameter count, torchvision names, shapes and init; and the timed step must train and not leak.
/// </summary>
public class StepBenchmarkTests
{
    // Small inputs keep the tests fast; the architecture is the same at any size.
    private static readonly StepBenchmarkOptions Small = new() { Batch = 4, Size = 64, Threads = 0 };

    [Fact]
    public void ParameterCountEqualsThePeers()
    {
        using var net = new StepBenchmark.CamNet();
        Assert.Equal(StepBenchmark.PeerParameterCount, StepBenchmark.CountParameters(net));
        Assert.Equal(11_268_672L, StepBenchmark.CountParameters(net));
        // The peer prints the trunk alone as 11 176 512; the rest is the 512·20·3·3 classifier.
        Assert.Equal(11_176_512L, StepBenchmark.CountParameters(net.Backbone));
        Assert.Equal(512L * 20 * 3 * 3, StepBenchmark.CountParameters(net) - StepBenchmark.CountParameters(net.Backbone));
    }

    [Fact]
    public void TrunkUsesTorchvisionStateDictNames()
    {
        using var trunk = new ResNet18();
        var expected = new List<string> { "conv1.weight" };
        expected.AddRange(Bn("bn1"));
        for (var stage = 1; stage <= 4; stage++)
            for (var block = 0; block < 2; block++)
            {
                var p = $"layer{stage}.{block}";
                expected.Add($"{p}.conv1.weight");
                expected.AddRange(Bn($"{p}.bn1"));
                expected.Add($"{p}.conv2.weight");
                expected.AddRange(Bn($"{p}.bn2"));
                if (stage > 1 && block == 0)
                {
                    expected.Add($"{p}.downsample.0.weight");
                    expected.AddRange(Bn($"{p}.downsample.1"));
                }
            }

        var names = trunk.state_dict().Keys.ToList();
        Assert.Equal(expected.Order(StringComparer.Ordinal), names.Order(StringComparer.Ordinal));
        // Parameter order follows torchvision's (stem first, then the stages in order).
        var parameterNames = trunk.named_parameters().Select(np => np.name).ToList();
        Assert.Equal("conv1.weight", parameterNames[0]);
        Assert.Equal("layer4.1.bn2.bias", parameterNames[^1]);

        static IEnumerable<string> Bn(string p) =>
            new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" }.Select(s => $"{p}.{s}");
    }

    [Fact]
    public void A224InputGives512By7By7FeaturesAnd20Logits()
    {
        using var net = new StepBenchmark.CamNet();
        net.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(2, 3, 224, 224);
        Assert.Equal(new long[] { 2, 512, 7, 7 }, net.Features(x).shape);
        Assert.Equal(new long[] { 2, 20, 7, 7 }, net.Cams(x).shape);
        var logits = net.forward(x);
        Assert.Equal(new long[] { 2, 20 }, logits.shape);
        // The logits are the spatial mean of the CAMs (GAP).
        Assert.True(logits.allclose(net.Cams(x).mean(new long[] { 2, 3 }), rtol: 1e-4, atol: 1e-6));
    }

    [Fact]
    public void InitIsTorchvisionsForTheTrunkAndConvDefaultForTheClassifier()
    {
        manual_seed(0);
        using var net = new StepBenchmark.CamNet();
        var p = net.named_parameters().ToDictionary(np => np.name, np => np.parameter);

        // kaiming_normal_(fan_out, relu): std = sqrt(2 / (out · k · k)).
        var w = p["backbone.layer4.1.conv2.weight"];
        var expectedStd = Math.Sqrt(2.0 / (512 * 3 * 3));
        Assert.InRange(w.std().item<float>(), 0.97 * expectedStd, 1.03 * expectedStd);
        Assert.True(Math.Abs(w.mean().item<float>()) < 0.05 * expectedStd);

        Assert.True(p["backbone.bn1.weight"].eq(1).all().item<bool>());
        Assert.True(p["backbone.layer3.0.downsample.1.bias"].eq(0).all().item<bool>());

        // Conv2d default: kaiming_uniform_(a = √5) = U(−b, b) with b = 1/sqrt(fan_in).
        var c = p["classifier.weight"];
        var bound = 1.0 / Math.Sqrt(512 * 3 * 3);
        var maxAbs = c.abs().max().item<float>();
        Assert.InRange(maxAbs, 0.99 * bound, bound * (1 + 1e-6));
    }

    [Fact]
    public void StepsOnAFixedBatchLowerTheLoss()
    {
        using var net = StepBenchmark.CreateNet(Small);
        var (images, labels) = StepBenchmark.CreateBatch(Small);
        using var _i = images;
        using var _l = labels;
        using var optimizer = StepBenchmark.CreateOptimizer(net, Small);

        var losses = Enumerable.Range(0, 5).Select(_ => StepBenchmark.TrainStep(net, optimizer, images, labels).Loss).ToList();
        Assert.All(losses, l => Assert.True(double.IsFinite(l) && l > 0));
        Assert.True(losses[^1] < 0.8 * losses[0], $"loss did not fall: {string.Join(", ", losses)}");
        Assert.True(net.training);
    }

    [Fact]
    public void StepsKeepNoTensorsAlive()
    {
        using var net = StepBenchmark.CreateNet(Small with { Batch = 2 });
        var (images, labels) = StepBenchmark.CreateBatch(Small with { Batch = 2 });
        using var _i = images;
        using var _l = labels;
        using var optimizer = StepBenchmark.CreateOptimizer(net, Small);

        // The first step makes the momentum buffers; after that every step must release all it makes.
        StepBenchmark.TrainStep(net, optimizer, images, labels);
        var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 3; i++)
            StepBenchmark.TrainStep(net, optimizer, images, labels);
        Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void RunReportsTheWorkloadAndRestoresTheThreadCount()
    {
        var before = get_num_threads();
        var lines = new List<string>();
        var r = StepBenchmark.Run(Small with { Batch = 2, Steps = 3, Warmup = 1, EvalWarmup = 1, Threads = 1 }, lines.Add);

        Assert.Equal(before, get_num_threads());
        Assert.Equal(1, r.Threads);
        Assert.Equal(StepBenchmark.PeerParameterCount, r.Parameters);
        Assert.Equal(new long[] { 512, 2, 2 }, r.FeatureShape);
        Assert.Equal((2, 64, 3, 1), (r.Batch, r.Size, r.Steps, r.Warmup));
        Assert.InRange(r.Step.MedianMs, r.Step.MinMs, r.Step.MaxMs);
        Assert.True(r.ForwardLossMs > 0 && r.BackwardMs > 0 && r.OptimizerMs > 0 && r.EvalForward.MedianMs > 0);
        Assert.True(double.IsFinite(r.LastLoss));
        Assert.Equal(2.0 / (r.Step.MedianMs / 1000), r.ImagesPerSecond, 6);
        Assert.Contains(lines, l => l.StartsWith("step 3/3", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0, 224, 10, "--batch")]
    [InlineData(4, 16, 10, "--size")]
    [InlineData(4, 224, 0, "--steps")]
    [InlineData(1, 32, 10, "--batch 1 at --size 32")]
    public void BadWorkloadsAreRejectedNamingTheOption(int batch, int size, int steps, string named)
    {
        var e = Assert.Throws<BadInputException>(() =>
            StepBenchmark.Validate(new StepBenchmarkOptions { Batch = batch, Size = size, Steps = steps }));
        Assert.Contains(named, e.Message);
        Assert.StartsWith("bench step: ", e.Message);
    }

    [Fact]
    public void MedianIsPythonsStatisticsMedian()
    {
        Assert.Equal(new TimingSummary(2, 1, 9), TimingSummary.Of(new double[] { 9, 1, 2 }));
        Assert.Equal(new TimingSummary(2.5, 1, 9), TimingSummary.Of(new double[] { 9, 3, 1, 2 }));
    }
}
