using EcsNet.Core.Nets;
using EcsNet.Data;
using static TorchSharp.torch;

namespace EcsNet.Core.Tests.Nets;

public class ResNet18TrunkTests
{
    [Fact]
    public void DefaultHasTorchvisionsNamesAndShapes()
    {
        using var trunk = new ResNet18Trunk();
        using var reference = new ResNet18();   // torchvision's resnet18 without avgpool and fc
        var ours = trunk.state_dict().ToList();
        var theirs = reference.state_dict().ToList();
        Assert.Equal(theirs.Select(kv => kv.Key), ours.Select(kv => kv.Key));
        for (int i = 0; i < ours.Count; i++)
            Assert.Equal(theirs[i].Value.shape, ours[i].Value.shape);
        Assert.Equal(11_176_512L, trunk.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void ThreeBlockLayer4AddsLayer4Block2()
    {
        using var trunk = new ResNet18Trunk(new TrunkOptions { Layer4Blocks = 3 });
        var names = trunk.state_dict().Keys.ToList();
        Assert.Contains("layer4.2.conv1.weight", names);
        Assert.Contains("layer4.2.bn2.running_var", names);
        Assert.DoesNotContain("layer4.3.conv1.weight", names);
        // One BasicBlock of 512 channels: two 3×3 convs and two BNs.
        Assert.Equal(11_176_512L + 2 * 512 * 512 * 9 + 4 * 512, trunk.parameters().Sum(p => p.numel()));
    }

    [Theory]
    [InlineData(8, 8)]
    [InlineData(16, 4)]
    [InlineData(32, 2)]
    public void OutputStrideSetsTheGridOfTheFinalMapAndEveryStage(int stride, int grid)
    {
        using var scope = NewDisposeScope();
        using var trunk = new ResNet18Trunk(new TrunkOptions { OutputStride = stride });
        trunk.eval();
        using var _ = no_grad();
        var f = trunk.ForwardFeatures(randn(1, 3, 64, 64, generator: new Generator(5)));
        Assert.Equal(stride, trunk.OutputStride);
        Assert.Equal(new long[] { 1, 512, grid, grid }, f.Final.shape);
        Assert.Equal(new[] { 128, 256, 512 }, trunk.StageChannels);
        for (int i = 0; i < 3; i++)
            Assert.Equal(new long[] { 1, trunk.StageChannels[i], grid, grid }, f.Stages[i].shape);
        Assert.Same(f.Final, f.Stages[2]);
    }

    [Fact]
    public void OddSizesRoundUpLikeTheOtherTrunks()
    {
        using var scope = NewDisposeScope();
        using var trunk = new ResNet18Trunk(new TrunkOptions { OutputStride = 16 });
        trunk.eval();
        using var _ = no_grad();
        var f = trunk.ForwardFeatures(randn(1, 3, 50, 71, generator: new Generator(5)));
        Assert.Equal(new long[] { 1, 512, 4, 5 }, f.Final.shape);
        Assert.All(f.Stages, s => Assert.Equal(new long[] { 4, 5 }, s.shape.Skip(2).ToArray()));
    }

    [Fact]
    public void BadOptionsNameTheirKey()
    {
        var e = Assert.Throws<BadInputException>(() => new ResNet18Trunk(new TrunkOptions { OutputStride = 4 }));
        Assert.Equal("trunk.outputStride", e.Subject);
        e = Assert.Throws<BadInputException>(() => new ResNet18Trunk(new TrunkOptions { Layer4Blocks = 4 }));
        Assert.Equal("trunk.layer4Blocks", e.Subject);
    }

    [Fact]
    public void BackbonesCreatesIt()
    {
        using var trunk = Backbones.Create(BackboneKind.ResNet18, new TrunkOptions { OutputStride = 16 });
        Assert.Equal(BackboneKind.ResNet18, trunk.Kind);
        Assert.Equal(16, trunk.OutputStride);
        Assert.Equal(512, trunk.OutChannels);
    }
}
