using EcsNet.Core.Nets;
using static TorchSharp.torch;

namespace EcsNet.Core.Tests.Nets;

/// <summary>One ResNet-38 (105 M parameters, ~420 MB) shared by the tests of this class.</summary>
public sealed class ResNet38Fixture : IDisposable
{
    public ResNet38 Net { get; } = new();
    public void Dispose() => Net.Dispose();
}

public class ResNet38Tests : IClassFixture<ResNet38Fixture>
{
    private readonly ResNet38 net;

    public ResNet38Tests(ResNet38Fixture fixture) => net = fixture.Net;

    [Fact]
    public void StateDictKeysAndShapesEqualPsaResnet38d()
    {
        // Listing written from PSA's network/resnet38d.py Net().state_dict() (Fixtures/make_weight_fixtures.py).
        var reference = StateDictListing.Read("resnet38d-state-dict.txt");
        var ours = net.state_dict();
        Assert.Equal(228, reference.Count);
        // TorchSharp lists parameters before buffers; loading goes by name, so compare as sets.
        Assert.Equal(reference.Select(r => r.Name).Order(StringComparer.Ordinal), ours.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, shape) in reference)
            Assert.True(shape.SequenceEqual(ours[name].shape),
                $"{name}: reference [{string.Join(",", shape)}], ours [{string.Join(",", ours[name].shape)}]");
        Assert.Equal(37, net.named_modules().Count(m => m.module is TorchSharp.Modules.BatchNorm2d));
        Assert.Equal(reference.Count(r => !r.Name.Contains("running") && !r.Name.EndsWith("num_batches_tracked")),
            net.named_parameters().Count());
    }

    [Fact]
    public void ParameterCountIsTheReferenceCount()
    {
        // From the reference definition: conv weights (no biases) + BN weight and bias per BatchNorm.
        static long Block(long cin, long mid, long cout, bool projected) =>
            2 * cin + cin * mid * 9 + 2 * mid + mid * cout * 9 + (projected ? cin * cout : 0);
        static long Bottleneck(long cin, long cout) =>
            2 * cin + cin * cout / 4 + 2 * (cout / 4) + cout / 4 * (cout / 2) * 9 + 2 * (cout / 2) + cout / 2 * cout + cin * cout;
        long expected = 3 * 64 * 9
            + Block(64, 128, 128, true) + 2 * Block(128, 128, 128, false)
            + Block(128, 256, 256, true) + 2 * Block(256, 256, 256, false)
            + Block(256, 512, 512, true) + 5 * Block(512, 512, 512, false)
            + Block(512, 512, 1024, true) + 2 * Block(1024, 512, 1024, false)
            + Bottleneck(1024, 2048) + Bottleneck(2048, 4096) + 2 * 4096;
        Assert.Equal(105_070_912L, expected);
        Assert.Equal(expected, net.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void ForwardGivesStride8MapsWithReferenceChannels()
    {
        using var scope = NewDisposeScope();
        net.eval();
        using var _ = no_grad();
        var x = randn(1, 3, 64, 64, generator: new Generator(7));
        var f = net.ForwardFeatures(x);
        Assert.Equal(new long[] { 1, 4096, 8, 8 }, f.Final.shape);
        Assert.Equal(3, f.Stages.Count);
        for (int i = 0; i < 3; i++)
            Assert.Equal(new long[] { 1, net.StageChannels[i], 8, 8 }, f.Stages[i].shape);
        Assert.Equal(new[] { 512, 1024, 4096 }, net.StageChannels);
        Assert.Equal(8, 64 / (int)f.Final.shape[2]);
        // conv6 = ReLU(bn7(b7)) and the stage maps are BN-ReLU outputs: all non-negative.
        Assert.True(f.Final.min().item<float>() >= 0);
        Assert.True(f.Stages[0].min().item<float>() >= 0 && f.Stages[1].min().item<float>() >= 0);
        Assert.Same(f.Final, f.Stages[2]);
        // Eval mode: dropout is off, so the forward is deterministic.
        Assert.True(TensorAssert.Identical(net.forward(x), f.Final));
    }

    [Fact]
    public void StageOutputsEqualPsaResnet38dWithTheSameWeights()
    {
        // Reference: PSA's network/resnet38d.py forward_as_dict in eval mode (Fixtures/resnet38d-forward.json).
        ReferenceForward.FillWithFormula(net);
        using var scope = NewDisposeScope();
        net.eval();
        using var _ = no_grad();
        var f = net.ForwardFeatures(ReferenceForward.Input(1, 3, 64, 64));
        ReferenceForward.AssertMatches("resnet38d-forward.json", "conv4", f.Stages[0]);
        ReferenceForward.AssertMatches("resnet38d-forward.json", "conv5", f.Stages[1]);
        ReferenceForward.AssertMatches("resnet38d-forward.json", "conv6", f.Final);
    }

    [Fact]
    public void OddInputSizesRoundUpLikeTheReference()
    {
        // Three stride-2 3×3 convs with padding 1: 65 → 33 → 17 → 9.
        using var scope = NewDisposeScope();
        net.eval();
        using var _ = no_grad();
        var f = net.ForwardFeatures(zeros(1, 3, 65, 40));
        Assert.Equal(new long[] { 1, 4096, 9, 5 }, f.Final.shape);
    }

    [Fact]
    public void FreezeStagesFreezesExactlyTheStemAndFirstStage()
    {
        net.FreezeStages();
        try
        {
            var frozen = net.named_parameters().Where(p => !p.parameter.requires_grad).Select(p => p.name).ToList();
            Assert.Contains("conv1a.weight", frozen);
            Assert.Contains("b2.conv_branch1.weight", frozen);
            Assert.Contains("b2_2.conv_branch2b1.weight", frozen);
            Assert.All(frozen, n => Assert.Matches(@"^(conv1a|b2|b2_1|b2_2)\.", n));
            // conv1a + b2 (projected, 64→128) + two 128→128 blocks.
            long expected = 3 * 64 * 9 + (2 * 64 + 64 * 128 * 9 + 2 * 128 + 128 * 128 * 9 + 64 * 128)
                + 2 * (2 * 128 + 128 * 128 * 9 + 2 * 128 + 128 * 128 * 9);
            Assert.Equal(expected, net.named_parameters().Where(p => !p.parameter.requires_grad).Sum(p => p.parameter.numel()));
        }
        finally
        {
            foreach (var p in net.parameters()) p.requires_grad = true;
        }
    }

    [Fact]
    public void FreezeBatchNormPutsEveryBnInEvalAndFreezesIt()
    {
        net.train();
        net.FreezeBatchNorm();
        try
        {
            var bns = net.modules().OfType<TorchSharp.Modules.BatchNorm2d>().ToList();
            Assert.Equal(37, bns.Count); // 2 per block × 15 blocks, 3 per bottleneck × 2, bn7
            Assert.All(bns, bn => Assert.False(bn.training));
            Assert.All(bns.SelectMany(bn => bn.parameters()), p => Assert.False(p.requires_grad));
            Assert.True(net.modules().OfType<TorchSharp.Modules.Dropout2d>().All(d => d.training));
        }
        finally
        {
            net.eval();
            foreach (var p in net.parameters()) p.requires_grad = true;
        }
    }

    [Fact]
    public void FactoryCreatesEveryKind()
    {
        using var vgg = Backbones.Create(BackboneKind.Vgg16);
        Assert.IsType<Vgg16>(vgg);
        Assert.Equal(512, vgg.OutChannels);
        using var small = Backbones.Create(BackboneKind.Small);
        Assert.IsType<SmallBackbone>(small);
        using var resnet = Backbones.Create(BackboneKind.ResNet38);
        Assert.IsType<ResNet38>(resnet);
        Assert.Equal(BackboneKind.ResNet38, net.Kind);
        Assert.Equal(4096, net.OutChannels);
        Assert.Equal(8, net.OutputStride);
    }
}
