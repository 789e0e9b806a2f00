using EcsNet.Core.Training;
using static TorchSharp.torch;

namespace EcsNet.Core.Tests.Training;

public class SgdGroupsTests
{
    [Fact]
    public void FourGroupsWithPsaMultipliersAndNoDecayOnBiases()
    {
        using var trunk = nn.Conv2d(3, 4, 3);                 // weight + bias
        using var head = nn.Conv2d(4, 2, 1);
        using var frozen = nn.Conv2d(2, 2, 1);
        foreach (var p in frozen.parameters()) p.requires_grad = false;
        var groups = SgdGroups.Build(
            trunk.named_parameters().Concat(frozen.named_parameters()), head.named_parameters(),
            learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, newLayerMultiplier: 10);
        Assert.Equal(new[] { 1.0, 2.0, 10.0, 20.0 }, groups.Select(g => g.Multiplier));
        Assert.Equal(new[] { 0.05, 0.1, 0.5, 1.0 }, groups.Select(g => Math.Round(g.Group.LearningRate, 6)));
        Assert.Equal(new[] { 5e-4, 0, 5e-4, 0 }, groups.Select(g => g.Group.Options.weight_decay ?? -1));
        Assert.All(groups, g => Assert.Single(g.Group.Parameters));   // frozen parameters are left out
    }
}
