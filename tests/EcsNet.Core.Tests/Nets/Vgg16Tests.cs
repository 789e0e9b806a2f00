using EcsNet.Core.Nets;
using static TorchSharp.torch;

namespace EcsNet.Core.Tests.Nets;

public class Vgg16Tests
{
    [Fact]
    public void StateDictKeysAndShapesEqualTorchvisionVgg16Features()
    {
        using var net = new Vgg16();
        // Listing written from torchvision's vgg16().features (Fixtures/make_weight_fixtures.py).
        var reference = StateDictListing.Read("vgg16-features-state-dict.txt");
        var ours = net.state_dict().ToList();
        Assert.Equal(26, reference.Count);
        Assert.Equal(reference.Select(r => r.Name), ours.Select(o => o.Key));
        for (int i = 0; i < reference.Count; i++)
            Assert.Equal(reference[i].Shape, ours[i].Value.shape);
        Assert.Equal(14_714_688L, net.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void ForwardIsStride8With512Channels()
    {
        using var scope = NewDisposeScope();
        using var net = new Vgg16();
        net.eval();
        using var _ = no_grad();
        var f = net.ForwardFeatures(randn(1, 3, 64, 64, generator: new Generator(3)));
        Assert.Equal(new long[] { 1, 512, 8, 8 }, f.Final.shape);
        Assert.All(f.Stages, s => Assert.Equal(new long[] { 1, 512, 8, 8 }, s.shape));
        Assert.Equal(new[] { 512, 512, 512 }, net.StageChannels);
        // pool5 is a 3×3 stride-1 max-pool over conv5_3: never below it, and equal to it at a local maximum.
        Assert.True((f.Final - f.Stages[1]).min().item<float>() >= 0);
        Assert.True(f.Final.max().item<float>() == f.Stages[1].max().item<float>());
        Assert.False(ReferenceEquals(f.Stages[0], f.Stages[1]));
    }

    [Fact]
    public void StageOutputsEqualPsaVgg16dWithTheSameWeights()
    {
        // Reference: PSA's network/vgg16d.py conv4/conv5 and pool5 of conv5 (Fixtures/vgg16d-forward.json).
        using var net = new Vgg16();
        ReferenceForward.FillWithFormula(net);
        using var scope = NewDisposeScope();
        net.eval();
        using var _ = no_grad();
        var f = net.ForwardFeatures(ReferenceForward.Input(1, 3, 64, 64));
        ReferenceForward.AssertMatches("vgg16d-forward.json", "conv4", f.Stages[0]);
        ReferenceForward.AssertMatches("vgg16d-forward.json", "conv5", f.Stages[1]);
        ReferenceForward.AssertMatches("vgg16d-forward.json", "pool5", f.Final);
    }

    [Fact]
    public void Conv5IsDilatedAndPool4KeepsResolution()
    {
        using var scope = NewDisposeScope();
        using var net = new Vgg16();
        var convs = net.named_modules().Where(m => m.module is TorchSharp.Modules.Conv2d).ToList();
        Assert.Equal(13, convs.Count);
        Assert.Equal("features.24", convs[10].name);
        for (int i = 0; i < convs.Count; i++)
        {
            var conv = (TorchSharp.Modules.Conv2d)convs[i].module;
            long expected = i >= 10 ? 2 : 1; // conv5_1..conv5_3 dilated by 2 (DeepLab-LargeFOV)
            Assert.Equal(expected, conv.dilation[0]);
            Assert.Equal(expected, conv.dilation[1]);
        }
        // pool4 and pool5 have stride 1: 65×40 → 33×20 → 17×10 → 9×5 and no further.
        net.eval();
        using var _ = no_grad();
        Assert.Equal(new long[] { 1, 512, 9, 5 }, net.forward(zeros(1, 3, 65, 40)).shape);
    }

    [Fact]
    public void FrozenPrefixesAreConv1AndConv2()
    {
        using var net = new Vgg16();
        net.FreezeStages();
        var frozen = net.named_parameters().Where(p => !p.parameter.requires_grad).Select(p => p.name).ToList();
        Assert.Equal(new[]
        {
            "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
            "features.5.weight", "features.5.bias", "features.7.weight", "features.7.bias",
        }, frozen);
    }
}
