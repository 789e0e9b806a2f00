using EcsNet.Core.Nets;
using EcsNet.Core.Weights;

namespace EcsNet.Core.Tests.Weights;

public class WeightNameMapsTests
{
    /// <summary>
    /// ademxapp's MXNet name for a PSA name, written from the rules of PSA's convert_mxnet_to_torch read
    /// backwards: b{s} ↔ {s}a, b{s}_{k} ↔ {s}b{k}; conv_ ↔ res, bn_ ↔ bn; weight/bias/running_* ↔ gamma/beta/moving_*.
    /// </summary>
    private static string MxNetName(string psa)
    {
        if (psa == "conv1a.weight") return "arg:conv1a_weight";
        var bn = new Dictionary<string, string>
        {
            ["weight"] = "gamma", ["bias"] = "beta", ["running_mean"] = "moving_mean", ["running_var"] = "moving_var",
        };
        var parts = psa.Split('.');
        string Prefix(string p) => p.StartsWith("running", StringComparison.Ordinal) ? "aux:" : "arg:";
        if (parts[0] == "bn7") return $"{Prefix(parts[1])}bn7_{bn[parts[1]]}";
        var block = parts[0][1..].Split('_');
        var mxBlock = block.Length == 1 ? $"{block[0]}a" : $"{block[0]}b{block[1]}";
        var kind = parts[1][..parts[1].IndexOf('_')];
        var branch = parts[1][(kind.Length + 1)..];
        return kind == "conv"
            ? $"arg:res{mxBlock}_{branch}_weight"
            : $"{Prefix(parts[2])}bn{mxBlock}_{branch}_{bn[parts[2]]}";
    }

    [Fact]
    public void MxNetMapCoversEveryResNet38Tensor()
    {
        var keys = StateDictListing.Read("resnet38d-state-dict.txt").Select(r => r.Name)
            .Where(n => !n.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToList();
        Assert.Equal(191, keys.Count);
        var map = WeightNameMaps.ForBackbone(BackboneKind.ResNet38);
        foreach (var key in keys)
            Assert.Equal(key, map(MxNetName(key)));
        // Spot checks written out by hand.
        Assert.Equal("b4_5.conv_branch2b1.weight", map("arg:res4b5_branch2b1_weight"));
        Assert.Equal("b7.bn_branch2b2.running_var", map("aux:bn7a_branch2b2_moving_var"));
        Assert.Equal("b2.conv_branch1.weight", map("arg:res2a_branch1_weight"));
        Assert.Equal("bn7.bias", map("arg:bn7_beta"));
        Assert.Null(map("arg:linear1000_weight"));
    }

    [Fact]
    public void ResNet38MapLeavesPsaNamesAndStripsDataParallelPrefix()
    {
        var map = WeightNameMaps.ForBackbone(BackboneKind.ResNet38);
        Assert.Equal("b5_2.bn_branch2a.running_mean", map("b5_2.bn_branch2a.running_mean"));
        Assert.Equal("b6.conv_branch2a.weight", map("module.b6.conv_branch2a.weight"));
        Assert.Equal("fc8.weight", map("module.fc8.weight"));
    }

    [Fact]
    public void CaffeVggMapUsesTorchvisionIndicesAndDropsTheHead()
    {
        var map = WeightNameMaps.ForBackbone(BackboneKind.Vgg16);
        Assert.Equal("features.0.weight", map("conv1_1.weight"));
        Assert.Equal("features.21.bias", map("conv4_3.bias"));
        Assert.Equal("features.28.weight", map("conv5_3.weight"));
        Assert.Null(map("fc6.weight"));
        Assert.Null(map("fc7.bias"));
        Assert.Equal("features.10.weight", map("features.10.weight"));
        Assert.Equal("classifier.0.weight", map("classifier.0.weight"));
    }

    [Fact]
    public void ComposeStopsAtTheFirstDrop()
    {
        int calls = 0;
        var map = WeightNameMaps.Compose(_ => null, n => { calls++; return n; });
        Assert.Null(map("x"));
        Assert.Equal(0, calls);
        Assert.Equal("c", WeightNameMaps.Compose(WeightNameMaps.StripPrefix("a."), WeightNameMaps.StripPrefix("b."))("a.b.c"));
    }
}
