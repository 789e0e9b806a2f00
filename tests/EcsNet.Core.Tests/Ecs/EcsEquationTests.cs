using EcsNet.Core.Ecs;
using EcsNet.Core.Nets;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace EcsNet.Core.Tests.Ecs;

/// <summary>Each equation of paper §3 against values worked out by hand on tiny tensors.</summary>
public class EcsEquationTests
{
    private static float[] Data(Tensor t) => t.contiguous().data<float>().ToArray();

    [Fact]
    public void Eq1NormalisesPerClassAndZeroesAbsentClasses()
    {
        using var _ = NewDisposeScope();
        // Two classes on a 1×3 map: class 1 = [1, 3, 5] → [0, .5, 1]; class 2 = [2, 2, 4] but absent → 0.
        var h = tensor(new float[] { 1, 3, 5, 2, 2, 4 }).view(1, 2, 1, 3);
        var w = tensor(new float[] { 1, 0 }).view(1, 2);
        var a = Cam.Normalize(h, w);
        Assert.Equal(new float[] { 0, 0.5f, 1, 0, 0, 0 }, Data(a));
    }

    [Fact]
    public void Eq2ScoreIsTheMaxOverClasses()
    {
        using var _ = NewDisposeScope();
        var a = tensor(new float[] { 0, 0.5f, 1, 0.7f, 0.2f, 0.1f }).view(1, 2, 1, 3);
        Assert.Equal(new float[] { 0.7f, 0.5f, 1 }, Data(Cam.Score(a)));
    }

    [Fact]
    public void Eq3AndPhiKeepOnlyConfidentUnerasedForeground()
    {
        using var _ = NewDisposeScope();
        // a' for 2 classes over 4 pixels:
        //   p0: (0.9, 0.1) → class 1, s' .9 > θ, not erased → 1
        //   p1: (0.1, 0.95) → class 2, but erased → ignore
        //   p2: (0.85, 0.0) → class 1, s' .85 > θ → 1... with θ .9 → ignore
        //   p3: (0.1, 0.05) → background (bg score 0.2 wins) → ignore
        var a = tensor(new float[] { 0.9f, 0.1f, 0.85f, 0.1f, 0.1f, 0.95f, 0.0f, 0.05f }).view(1, 2, 1, 4);
        var region = tensor(new float[] { 0, 1, 0, 0 }).view(1, 1, 1, 4);
        var l = ReliableLabels.Build(a, region, theta: 0.8, backgroundScore: 0.2);
        Assert.Equal(new long[] { 1, 255, 1, 255 }, l.data<long>().ToArray());
        var strict = ReliableLabels.Build(a, region, theta: 0.88, backgroundScore: 0.2);
        Assert.Equal(new long[] { 1, 255, 255, 255 }, strict.data<long>().ToArray());
    }

    [Fact]
    public void BackgroundCounterweightLabelsConfidentBackgroundAsZero()
    {
        using var _ = NewDisposeScope();
        var a = tensor(new float[] { 0.9f, 0.05f, 0.1f, 0.02f }).view(1, 1, 1, 4);
        var region = zeros(1, 1, 1, 4);
        var s = tensor(new float[] { 0.9f, 0.05f, 0.5f, 0.01f }).view(1, 1, 4);
        var l = ReliableLabels.Build(a, region, 0.8, 0.2, backgroundThreshold: 0.1, originalScore: s);
        // p1 and p3 are low in both maps → background; p2 is low in a' but not in s → ignore.
        Assert.Equal(new long[] { 1, 0, 255, 0 }, l.data<long>().ToArray());
    }

    [Fact]
    public void Eq4MatchesTheMultiLabelSoftMarginDefinition()
    {
        using var _ = NewDisposeScope();
        var o = tensor(new float[] { 2f, -1f, 0f }).view(1, 3);
        var y = tensor(new float[] { 1f, 0f, 1f }).view(1, 3);
        // By hand: −(1/3)[log σ(2) + log(1 − σ(−1)) + log σ(0)] with f(x) = e^{−x}: σ(x) = 1/(1+e^{−x}).
        double s2 = 1 / (1 + Math.Exp(-2)), sm1 = 1 / (1 + Math.Exp(1)), s0 = 0.5;
        double expected = -(Math.Log(s2) + Math.Log(1 - sm1) + Math.Log(s0)) / 3;
        Assert.Equal(expected, Losses.MultiLabelSoftMargin(o, y).item<float>(), 5);
        Assert.Equal(F.multilabel_soft_margin_loss(o, y).item<float>(), Losses.MultiLabelSoftMargin(o, y).item<float>(), 5);
    }

    [Fact]
    public void Eq5AveragesTheCamAndRefinePairs()
    {
        using var _ = NewDisposeScope();
        var y = tensor(new float[] { 1f, 0f }).view(1, 2);
        Tensor o1 = tensor(new float[] { 1f, 0f }).view(1, 2), o2 = tensor(new float[] { 0f, 1f }).view(1, 2);
        Tensor o3 = tensor(new float[] { 2f, -2f }).view(1, 2), o4 = tensor(new float[] { -1f, 3f }).view(1, 2);
        double l(Tensor o) => Losses.MultiLabelSoftMargin(o, y).item<float>();
        double expected = 0.5 * (l(o1) + l(o2)) + 0.5 * (l(o3) + l(o4));
        Assert.Equal(expected, Losses.Classification(y, o1, o2, o3, o4).item<float>(), 5);
        Assert.Equal(0.5 * l(o1), Losses.Classification(y, o1, null, null, null).item<float>(), 5);
    }

    [Fact]
    public void Eq6AveragesCrossEntropyOverPhiOnly()
    {
        using var _ = NewDisposeScope();
        // Three labels (bg, c1, c2) over 3 pixels; only p0 (label 1) and p2 (label 2) are in Φ.
        var logits = tensor(new float[] { 0, 1, 5, /*bg*/ 2, 0, 1, /*c1*/ 0, 0, 3 /*c2*/ }).view(1, 3, 1, 3);
        var target = tensor(new long[] { 1, 255, 2 }).view(1, 1, 3);
        double Lse(params double[] v) => Math.Log(v.Sum(Math.Exp));
        double p0 = -(2 - Lse(0, 2, 0)), p2 = -(3 - Lse(5, 1, 3));
        Assert.Equal((p0 + p2) / 2, Losses.ReliableCrossEntropy(logits, target).item<float>(), 5);
        var none = full(new long[] { 1, 1, 3 }, 255L, dtype: int64);
        Assert.Equal(0f, Losses.ReliableCrossEntropy(logits, none).item<float>());
    }

    [Fact]
    public void Eq8OverlayReusesTheClassifierWeightTensor()
    {
        using var _ = NewDisposeScope();
        manual_seed(1);
        var opts = new EcsNetOptions { OverlayRates = new[] { 1, 2 } };
        using var model = new EcsNetModel(new SmallBackbone(8), opts);
        // Only one 20-channel 3×3 weight exists: the overlay adds no parameters.
        var classifierLike = model.parameters().Where(p => p.shape.Length == 4 && p.shape[0] == 20 && p.shape[2] == 3).ToList();
        Assert.Single(classifierLike);
        model.eval();
        var x = randn(1, 3, 32, 32);
        var plain = model.Pass(x, overlay: false).Heatmap;
        var overlaid = model.Pass(x, overlay: true).Heatmap;
        var features = model.Trunk.forward(x);
        var w = model.ClassifierWeight;
        var h0 = F.conv2d(features, w, padding: new long[] { 1, 1 });
        var h1 = F.conv2d(features, w, padding: new long[] { 1, 1 }, dilation: new long[] { 1, 1 });
        var h2 = F.conv2d(features, w, padding: new long[] { 2, 2 }, dilation: new long[] { 2, 2 });
        var expected = 0.5 * h0 + (h1 + h2) / 4.0;
        Assert.True(plain.allclose(h0, rtol: 1e-4, atol: 1e-5));
        Assert.True(overlaid.allclose(expected, rtol: 1e-4, atol: 1e-5));
        // A gradient through the overlay lands on B's weight.
        overlaid.sum().backward();
        Assert.True(w.grad is not null && w.grad.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void ErasingBlursOnlyTheRegion()
    {
        using var _ = NewDisposeScope();
        var img = zeros(1, 3, 16, 16);
        img[.., .., 8, 8] = ones(1, 3);
        var region = zeros(1, 1, 16, 16);
        region[.., .., 0..8, ..] = ones(1, 1, 8, 16);  // top half erased, the spike is in the bottom half
        var erased = Erasing.Erase(img, region, 1.0);
        Assert.Equal(1f, erased[0, 0, 8, 8].item<float>());        // untouched outside R
        Assert.True(erased[0, 0, 7, 8].item<float>() > 0);         // blurred spike leaks into R
        Assert.Equal(0f, erased[0, 0, 9, 8].item<float>());        // but not outside R
        var blurred = Erasing.GaussianBlur(img, 1.0);
        Assert.Equal(img.sum().item<float>(), blurred.sum().item<float>(), 3); // normalised kernel; the spike is farther than 3σ from every border
    }
}
