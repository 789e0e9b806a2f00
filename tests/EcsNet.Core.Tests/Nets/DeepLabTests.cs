using EcsNet.Core.Inference;
using EcsNet.Core.Nets;
using EcsNet.Core.Training;
using EcsNet.Data;
using static TorchSharp.torch;

namespace EcsNet.Core.Tests.Nets;

public class DeepLabTests
{
    private static Dictionary<string, long[]> Shapes(DeepLab net) =>
        net.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);

    [Fact]
    public void LargeFovHeadOnVgg16HasTheReferenceLayersAndStride8()
    {
        using var scope = NewDisposeScope();
        using var net = new DeepLab(new Vgg16(), new SegOptions());
        var shapes = Shapes(net);
        // DeepLab-v1 LargeFOV: fc6 3×3 512→1024, fc7 1×1 1024→1024, fc8 1×1 1024→21.
        Assert.Equal(new long[] { 1024, 512, 3, 3 }, shapes["head.fc6.weight"]);
        Assert.Equal(new long[] { 1024, 1024, 1, 1 }, shapes["head.fc7.weight"]);
        Assert.Equal(new long[] { 21, 1024, 1, 1 }, shapes["head.fc8.weight"]);
        Assert.Equal(new long[] { 21 }, shapes["head.fc8.bias"]);
        Assert.Equal(6, net.HeadParameters().Count());
        net.eval();
        using var _ = no_grad();
        var x = randn(new long[] { 2, 3, 40, 33 }, generator: new Generator(1));
        Assert.Equal(new long[] { 2, 21, 5, 5 }, net.forward(x).shape);
        Assert.Equal(new long[] { 2, 21, 40, 33 }, net.Dense(x).shape);
    }

    [Fact]
    public void DilatedHeadOnResNet38ReadsThe4096ChannelMap()
    {
        using var scope = NewDisposeScope();
        using var net = new DeepLab(new ResNet38(), new SegOptions());
        var shapes = Shapes(net);
        // PSA/SEAM's DeepLab-ResNet38: fc8_seg_conv1 3×3 4096→512, fc8_seg_conv2 3×3 512→21.
        Assert.Equal(new long[] { 512, 4096, 3, 3 }, shapes["head.fc8_seg_conv1.weight"]);
        Assert.Equal(new long[] { 21, 512, 3, 3 }, shapes["head.fc8_seg_conv2.weight"]);
        Assert.Equal(4, net.HeadParameters().Count());
        net.eval();
        using var _ = no_grad();
        var y = net.forward(randn(new long[] { 1, 3, 24, 24 }, generator: new Generator(2)));
        Assert.Equal(new long[] { 1, 21, 3, 3 }, y.shape);
        Assert.True(isfinite(y).all().item<bool>());
    }

    [Fact]
    public void SmallHeadGivesClassScoresAtStride8AndDropoutFollowsItsSeed()
    {
        using var scope = NewDisposeScope();
        using var net = new DeepLab(new SmallBackbone(8), new SegOptions { Classes = 5, HeadDropout = 0.5 });
        var shapes = Shapes(net);
        Assert.Equal(new long[] { 128, 64, 3, 3 }, shapes["head.fc8_seg_conv1.weight"]);
        Assert.Equal(new long[] { 5, 128, 3, 3 }, shapes["head.fc8_seg_conv2.weight"]);
        var x = randn(new long[] { 1, 3, 33, 33 }, generator: new Generator(3));
        using var _ = no_grad();
        net.eval();
        var a = net.forward(x);
        Assert.Equal(new long[] { 1, 5, 5, 5 }, a.shape);
        Assert.True(net.forward(x).equal(a).all().item<bool>());   // eval: no dropout
        net.train();
        net.SeedDropout(11);
        var b = net.forward(x);
        net.SeedDropout(11);
        var c = net.forward(x);
        net.SeedDropout(12);
        var d = net.forward(x);
        Assert.True(b.equal(c).all().item<bool>());
        Assert.False(b.equal(d).all().item<bool>());
    }

    [Fact]
    public void LossIgnores255AndMatchesAHandWorkedValue()
    {
        // Two classes, three pixels. Pixel 0: logits (0, ln 3) → p(1) = 3/4, label 1 → −ln(3/4).
        // Pixel 1: logits (ln 4, 0) → p(0) = 4/5, label 0 → −ln(4/5). Pixel 2: label 255 → ignored.
        var logits = tensor(new float[] { 0, MathF.Log(4), 5, MathF.Log(3), 0, -7 }).view(1, 2, 1, 3).requires_grad_(true);
        var labels = tensor(new long[] { 1, 0, 255 }).view(1, 1, 3);
        var loss = SegLoss.CrossEntropy(logits, labels);
        double expected = (-Math.Log(0.75) - Math.Log(0.8)) / 2;
        Assert.Equal(expected, loss.item<float>(), 5);
        loss.backward();
        var g = logits.grad!.contiguous().data<float>().ToArray();
        Assert.Equal(0f, g[2]);   // class 0, ignored pixel
        Assert.Equal(0f, g[5]);   // class 1, ignored pixel
        // d/dz_1 of −ln softmax_1 at pixel 0 is (p1 − 1)/2 = −1/8 (mean over 2 counted pixels).
        Assert.Equal(-0.125f, g[3], 5);
    }

    [Fact]
    public void LossOfAnAllIgnoredBatchIsZeroNotNaN()
    {
        var logits = randn(new long[] { 1, 3, 2, 2 }, generator: new Generator(4)).requires_grad_(true);
        var labels = full(new long[] { 1, 2, 2 }, 255L, ScalarType.Int64);
        var loss = SegLoss.CrossEntropy(logits, labels);
        Assert.Equal(0f, loss.item<float>());
        loss.backward();
        Assert.Equal(0f, logits.grad!.abs().sum().item<float>());
    }

    [Fact]
    public void FeatureGridLossShrinksLabelsByNearestNeighbour()
    {
        // Logits on a 1×1 grid, labels 2×2: DeepLab's label shrink keeps the top-left label (1).
        var logits = tensor(new float[] { 0, MathF.Log(3) }).view(1, 2, 1, 1);
        var labels = tensor(new long[] { 1, 0, 0, 0 }).view(1, 2, 2);
        Assert.Equal(-Math.Log(0.75), SegLoss.CrossEntropy(logits, labels, SegLossGrid.Features).item<float>(), 5);
        // On the image grid the logits are upsampled: three pixels of 0, one of 1.
        double image = (-Math.Log(0.75) - 3 * Math.Log(0.25)) / 4;
        Assert.Equal(image, SegLoss.CrossEntropy(logits, labels, SegLossGrid.Image).item<float>(), 5);
    }

    [Fact]
    public void LossRejectsALabelAboveTheClassCount()
    {
        var logits = zeros(1, 2, 1, 1);
        var labels = tensor(new long[] { 7 }).view(1, 1, 1);
        var e = Assert.Throws<ArgumentException>(() => SegLoss.CrossEntropy(logits, labels));
        Assert.Contains("ignore value 255", e.Message);
    }

    [Fact]
    public void InferenceAveragesProbabilitiesAndAppliesTheCrfDelegate()
    {
        using var net = new DeepLab(new SmallBackbone(8), new SegOptions { Classes = 4 });
        var image = new RgbImage(20, 14, Enumerable.Range(0, 20 * 14 * 3).Select(i => (byte)(i * 7)).ToArray());
        var options = new SegOptions { Classes = 4, Scales = new[] { 1.0, 0.5 }, Flip = true };
        var probs = SegInference.Probabilities(net, image, options);
        Assert.Equal(4 * 20 * 14, probs.Length);
        for (int p = 0; p < 20 * 14; p += 37)
            Assert.Equal(1.0, probs[p] + probs[280 + p] + probs[560 + p] + probs[840 + p], 4);

        var plain = SegInference.Predict(net, image, options);
        Assert.Equal(SegInference.Argmax(probs, 4, 20, 14).Labels, plain.Labels);

        int calls = 0;
        float[] Crf(RgbImage img, float[] p, int k)
        {
            calls++;
            Assert.Same(image, img);
            Assert.Equal(4, k);
            var q = new float[p.Length];
            Array.Fill(q, 1f, 2 * 280, 280);   // all mass on class 2
            return q;
        }
        var refined = SegInference.Predict(net, image, options, Crf);
        Assert.Equal(1, calls);
        Assert.All(refined.Labels, l => Assert.Equal((byte)2, l));
    }

    [Fact]
    public void ArgmaxPicksTheLargestClassPerPixel()
    {
        // 3 classes, 2 pixels: pixel 0 → class 2, pixel 1 → class 0.
        var probs = new float[] { 0.1f, 0.6f, 0.3f, 0.3f, 0.6f, 0.1f };   // class 0: (0.1, 0.6), class 1: (0.3, 0.3), class 2: (0.6, 0.1)
        Assert.Equal(new byte[] { 2, 0 }, SegInference.Argmax(probs, 3, 2, 1).Labels);
    }
}
