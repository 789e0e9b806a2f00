using System.Text.RegularExpressions;
using EcsNet.Core.Nets;

namespace EcsNet.Core.Weights;

/// <summary>
/// Name maps from the tensor names in a weight file to our module's names, for
/// <see cref="WeightLoadOptions.MapName"/>. A map returns the model name, or null to drop the tensor (it is then
/// reported as skipped, never as unexpected). Names a map does not recognise pass through unchanged, so maps
/// compose and files already in our naming load through any of them. docs/WEIGHTS.md lists every rule.
/// </summary>
public static partial class WeightNameMaps
{
    /// <summary>Leaves every name as it is.</summary>
    public static string? Identity(string name) => name;

    /// <summary>Removes leading <c>module.</c> (nn.DistributedDataParallel / DistributedDataParallel checkpoints).</summary>
    public static string? StripModulePrefix(string name)
    {
        while (name.StartsWith("module.", StringComparison.Ordinal))
            name = name["module.".Length..];
        return name;
    }

    /// <summary>Removes one leading prefix when present (e.g. <c>backbone.</c> of a full network's checkpoint).</summary>
    public static Func<string, string?> StripPrefix(string prefix) =>
        name => name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..] : name;

    /// <summary>Applies maps left to right; a null from any map drops the tensor.</summary>
    public static Func<string, string?> Compose(params Func<string, string?>[] maps) => name =>
    {
        string? current = name;
        foreach (var map in maps)
        {
            if (current is null) return null;
            current = map(current);
        }
        return current;
    };

    /// <summary>
    /// The original MXNet names of ResNet-38 A1 (ademxapp's <c>ilsvrc-cls_rna-a1_cls1000_ep-0001.params</c>,
    /// keys like <c>arg:res4b5_branch2a_weight</c>, <c>aux:bn2a_branch1_moving_var</c>, <c>arg:bn7_gamma</c>) →
    /// PSA/SEAM names (<c>b4_5.conv_branch2a.weight</c>, …), by the same rules as PSA's
    /// <c>convert_mxnet_to_torch</c>: block <c>{stage}a</c> → <c>b{stage}</c>, <c>{stage}b{k}</c> →
    /// <c>b{stage}_{k}</c>; <c>res</c> → <c>conv_</c>, <c>bn</c> → <c>bn_</c>; gamma/beta/moving_mean/moving_var →
    /// weight/bias/running_mean/running_var. The ImageNet classifier (<c>linear1000_*</c>) is dropped.
    /// </summary>
    public static string? MxNetResNet38(string name)
    {
        var bare = name.StartsWith("arg:", StringComparison.Ordinal) || name.StartsWith("aux:", StringComparison.Ordinal)
            ? name[4..] : name;
        if (bare.StartsWith("linear1000", StringComparison.Ordinal)) return null;
        if (bare == "conv1a_weight") return "conv1a.weight";
        var m = MxNetBlockName().Match(bare);
        if (m.Success)
        {
            var stage = m.Groups["stage"].Value;
            var block = m.Groups["sub"].Value == "a" ? $"b{stage}" : $"b{stage}_{m.Groups["index"].Value}";
            var kind = m.Groups["kind"].Value == "res" ? "conv" : "bn";
            return $"{block}.{kind}_{m.Groups["branch"].Value}.{MxNetParam(m.Groups["param"].Value)}";
        }
        var bn7 = MxNetBn7().Match(bare);
        if (bn7.Success) return $"bn7.{MxNetParam(bn7.Groups["param"].Value)}";
        return name;
    }

    private static string MxNetParam(string p) => p switch
    {
        "gamma" => "weight",
        "beta" => "bias",
        "moving_mean" => "running_mean",
        "moving_var" => "running_var",
        _ => p, // "weight"
    };

    [GeneratedRegex(@"^(?<kind>res|bn)(?<stage>\d)(?<sub>a|b(?<index>\d+))_(?<branch>branch[0-9a-z]+)_(?<param>weight|gamma|beta|moving_mean|moving_var)$")]
    private static partial Regex MxNetBlockName();

    [GeneratedRegex(@"^bn7_(?<param>gamma|beta|moving_mean|moving_var)$")]
    private static partial Regex MxNetBn7();

    /// <summary>
    /// Caffe/DeepLab VGG16 names (<c>conv4_3.weight</c>, as PSA's <c>convert_caffe_to_torch</c> writes them from
    /// <c>vgg16_20M.caffemodel</c>) → our torchvision-style <c>features.{index}.weight</c>. The LargeFOV head
    /// (<c>fc6</c>, <c>fc7</c>, <c>fc8</c>) is not part of the trunk and is dropped.
    /// </summary>
    public static string? CaffeVgg16(string name)
    {
        int dot = name.IndexOf('.');
        if (dot < 0) return name;
        var layer = name[..dot];
        if (layer is "fc6" or "fc7" or "fc8") return null;
        return Vgg16.ConvIndex.TryGetValue(layer, out int index) ? $"features.{index}{name[dot..]}" : name;
    }

    /// <summary>
    /// The default map for a trunk: strip <c>module.</c>, then the trunk's foreign naming (MXNet for ResNet-38,
    /// Caffe for VGG16). Files already in our naming (PSA/SEAM .pth for ResNet-38, torchvision for VGG16) pass
    /// through unchanged.
    /// </summary>
    public static Func<string, string?> ForBackbone(BackboneKind kind) => kind switch
    {
        BackboneKind.ResNet38 => Compose(StripModulePrefix, MxNetResNet38),
        BackboneKind.Vgg16 => Compose(StripModulePrefix, CaffeVgg16),
        _ => StripModulePrefix,
    };
}
