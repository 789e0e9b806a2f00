using EcsNet.Core.Nets;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using TorchSharp.Modules;

namespace EcsNet.Core.Tests.Training;

/// <summary>
/// freezePretrained's auto default: a trunk that starts from ImageNet weights trains with frozen BatchNorm and
/// first stages unless the experiment says false; a trunk from scratch never does.
/// </summary>
public class FreezePretrainedTests
{
    [Fact]
    public void CamAutoFreezesExactlyWhenPretrained()
    {
        var auto = new CamTrainingOptions();
        Assert.Null(auto.FreezePretrained);
        Assert.True(auto.FreezesTrunk(pretrained: true));
        Assert.False(auto.FreezesTrunk(pretrained: false));
        Assert.False((auto with { FreezePretrained = false }).FreezesTrunk(pretrained: true));
        Assert.True((auto with { FreezePretrained = true }).FreezesTrunk(pretrained: true));
        Assert.False((auto with { FreezePretrained = true }).FreezesTrunk(pretrained: false));
    }

    [Fact]
    public void SegAutoFreezesWhenTheWeightsTraceBackToImageNet()
    {
        var auto = new SegOptions();
        Assert.Null(auto.FreezePretrained);
        Assert.True(auto.FreezesTrunk(trained: true, fromImageNet: true));
        Assert.False(auto.FreezesTrunk(trained: true, fromImageNet: false));   // a CAM trunk trained from scratch
        Assert.False(auto.FreezesTrunk(trained: false, fromImageNet: false));
        Assert.True((auto with { FreezePretrained = true }).FreezesTrunk(trained: true, fromImageNet: false));
        Assert.False((auto with { FreezePretrained = false }).FreezesTrunk(trained: true, fromImageNet: true));
    }

    /// <summary>
    /// The CPU default keeps training its from-scratch small trunk (and the segmentation trunk copied from it),
    /// but with the packaged ResNet-18 both freeze; the paper-scale defaults freeze a ResNet-38 given weights as before.
    /// </summary>
    [Fact]
    public void DefaultExperimentsFreezeOnlyImageNetTrunks()
    {
        var cpu = ExperimentConfig.SmallCpu;
        Assert.Null(cpu.CamTraining.FreezePretrained);
        Assert.Null(cpu.Seg.FreezePretrained);
        Assert.Null(cpu.ImageNetWeights(cpu.Backbone, cpu.Weights));

        var r18 = cpu with { Backbone = BackboneKind.ResNet18 };
        Assert.NotNull(r18.ImageNetWeights(r18.Backbone, r18.Weights));
        Assert.True(r18.CamTraining.FreezesTrunk(pretrained: true));
        Assert.True(r18.Seg.FreezesTrunk(trained: true, fromImageNet: r18.ImageNetWeights(r18.Backbone, r18.Weights) is not null));
        var scratch = r18 with { Pretrained = false };
        Assert.False(scratch.Seg.FreezesTrunk(trained: true, fromImageNet: scratch.ImageNetWeights(scratch.Backbone, scratch.Weights) is not null));

        var paper = new ExperimentConfig { Weights = "resnet38.params" };
        Assert.True(paper.CamTraining.FreezesTrunk(pretrained: true));
        Assert.True(paper.Seg.FreezesTrunk(trained: true, fromImageNet: true));
    }

    [Fact]
    public void ExperimentFilesSetAndClearIt()
    {
        var off = ExperimentFile.Apply(ExperimentFile.ParseDocument("camTraining: { freezePretrained: false }\nseg: { freezePretrained: true }\n", "exp.yaml"),
            "exp.yaml", ExperimentConfig.SmallCpu);
        Assert.False(off.CamTraining.FreezePretrained);
        Assert.True(off.Seg.FreezePretrained);
        var back = ExperimentFile.Apply(null, "exp.yaml", off, new[] { "camTraining.freezePretrained=null" });
        Assert.Null(back.CamTraining.FreezePretrained);
    }

    [Theory]
    [InlineData(null, true, true)]
    [InlineData(null, false, false)]
    [InlineData(false, true, false)]
    public void CamTaskFreezesBatchNormAsDecided(bool? freeze, bool pretrained, bool frozen)
    {
        using var model = new EcsNetModel(new SmallBackbone(8), new EcsNetOptions { OverlayRates = new[] { 1, 2 } });
        using var task = new CamTrainingTask(model, new CamTrainingOptions { Crop = 32, BatchSize = 2, FreezePretrained = freeze }, pretrained);
        task.TrainMode();
        AssertBatchNorm(model.Trunk, frozen);
    }

    [Theory]
    [InlineData(null, true, true)]
    [InlineData(null, false, false)]
    [InlineData(true, false, true)]
    public void SegTaskFreezesBatchNormAsDecided(bool? freeze, bool fromImageNet, bool frozen)
    {
        using var model = new DeepLab(new SmallBackbone(8), new SegOptions { Classes = 3, HeadDropout = 0.1 });
        var options = new SegOptions { Classes = 3, Crop = 32, BatchSize = 2, HeadDropout = 0.1, FreezePretrained = freeze };
        using var task = new SegTrainingTask(model, options, pretrained: true, fromImageNet: fromImageNet);
        task.TrainMode();
        AssertBatchNorm(model.Trunk, frozen);
    }

    private static void AssertBatchNorm(Backbone trunk, bool frozen)
    {
        var norms = trunk.modules().OfType<BatchNorm2d>().ToList();
        Assert.NotEmpty(norms);
        Assert.All(norms, bn =>
        {
            Assert.Equal(!frozen, bn.training);
            Assert.All(bn.parameters(), p => Assert.Equal(!frozen, p.requires_grad));
        });
    }
}
