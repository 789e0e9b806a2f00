using System.Text.Json;
using EcsNet.Core.Nets;
using EcsNet.Core.Stages;
using EcsNet.Data;

namespace EcsNet.Core.Tests.Stages;

/// <summary>How an experiment's trunk options and packaged ImageNet weights reach the stages.</summary>
public class TrunkWeightsTests
{
    [Fact]
    public void Resnet18StartsFromThePackagedWeightsByDefaultAndFromScratchWhenNotPretrained()
    {
        using var packaged = new ResNet18Trunk();
        Assert.True(TrunkWeights.LoadImageNet(packaged, file: null, packaged: true));
        using var scratch = new ResNet18Trunk();
        var before = scratch.state_dict()["conv1.weight"].clone();
        Assert.False(TrunkWeights.LoadImageNet(scratch, file: null, packaged: false));
        Assert.True(scratch.state_dict()["conv1.weight"].equal(before).all().item<bool>());
        Assert.False(packaged.state_dict()["conv1.weight"].allclose(before, rtol: 0, atol: 1e-3));
        // Other trunks have no packaged weights.
        using var small = new SmallBackbone();
        Assert.False(TrunkWeights.LoadImageNet(small, file: null, packaged: true));
    }

    [Fact]
    public void ImageNetWeightsNameThePackageOnlyForAPretrainedResnet18()
    {
        var config = new ExperimentConfig();
        Assert.True(config.Pretrained);
        Assert.Equal("Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1", config.ImageNetWeights(BackboneKind.ResNet18, null));
        Assert.Equal("my.pth", config.ImageNetWeights(BackboneKind.ResNet18, "my.pth"));
        Assert.Null(config.ImageNetWeights(BackboneKind.ResNet38, null));
        Assert.Null((config with { Pretrained = false }).ImageNetWeights(BackboneKind.ResNet18, null));
    }

    [Fact]
    public void FingerprintsOfOtherTrunksAreTheBareKind()
    {
        var config = new ExperimentConfig { Trunk = new TrunkOptions { OutputStride = 16 } };
        Assert.Equal("\"resNet38\"", JsonSerializer.Serialize(config.TrunkFingerprint(BackboneKind.ResNet38), ConfigJson.Options));
        var resnet18 = JsonSerializer.Serialize(config.TrunkFingerprint(BackboneKind.ResNet18), ConfigJson.Options);
        Assert.Contains("\"outputStride\": 16", resnet18);
        Assert.Contains("\"layer4Blocks\": 2", resnet18);
    }

    [Fact]
    public void TrunkOptionsComeFromTheExperimentAndReachEveryStage()
    {
        var config = ExperimentFile.Load(null, ExperimentConfig.SmallCpu, new[] { "backbone=resNet18", "trunk.outputStride=16", "trunk.layer4Blocks=3", "pretrained=false" });
        Assert.False(config.Pretrained);
        using (var cam = CamStage.CreateModel(config))
        {
            var trunk = Assert.IsType<ResNet18Trunk>(cam.Trunk);
            Assert.Equal(16, trunk.OutputStride);
            Assert.Equal(3, trunk.Options.Layer4Blocks);
        }
        using (var seg = SegStage.CreateModel(config))
            Assert.Equal(16, seg.OutputStride);
        // AffinityNet and the random walk live on the stride-8 grid.
        var e = Assert.Throws<BadInputException>(() => AffinityStage.CreateNet(config));
        Assert.Equal("trunk.outputStride", e.Subject);
        using var aff = AffinityStage.CreateNet(config with { Trunk = new TrunkOptions() });
        Assert.Equal(8, aff.Backbone.OutputStride);

        var bad = Assert.Throws<BadInputException>(() => (config with { Trunk = new TrunkOptions { OutputStride = 12 } }).Validate());
        Assert.Equal("trunk.outputStride", bad.Subject);
    }
}
