using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EcsNet.Core.Nets;

/// <summary>
/// Which trunk a network uses (docs/METHOD.md §1): the paper's ResNet-38, VGG16, a small CPU trunk, or ResNet-18
/// (a CPU-sized trunk with ImageNet weights that install with the build; docs/WEIGHTS.md).
/// </summary>
public enum BackboneKind
{
    Small,
    ResNet38,
    Vgg16,
    ResNet18,
}

/// <summary>Feature maps a trunk returns: the final map plus the last three stages (AffinityNet, docs/METHOD.md §4).</summary>
public sealed record BackboneFeatures(Tensor Final, IReadOnlyList<Tensor> Stages);

/// <summary>
/// A convolutional trunk, output stride 8 unless it says otherwise (<see cref="OutputStride"/>). Subclasses define their layers; the training code reads
/// <see cref="OutChannels"/>, <see cref="StageChannels"/> and <see cref="FrozenPrefixes"/> (the SEAM/PSA
/// convention: the first stages and every BatchNorm are frozen).
/// </summary>
public abstract class Backbone : nn.Module<Tensor, Tensor>
{
    protected Backbone(string name) : base(name) { }

    public abstract BackboneKind Kind { get; }

    /// <summary>Channels of the final feature map.</summary>
    public abstract int OutChannels { get; }

    /// <summary>Channels of the three stage maps in <see cref="BackboneFeatures.Stages"/>.</summary>
    public abstract IReadOnlyList<int> StageChannels { get; }

    /// <summary>Ratio of input size to feature size (8 for every trunk but a ResNet-18 built with another stride).</summary>
    public virtual int OutputStride => 8;

    /// <summary>Parameter-name prefixes that stay frozen during training (requires_grad false).</summary>
    public virtual IReadOnlyList<string> FrozenPrefixes => Array.Empty<string>();

    /// <summary>The final map and the last three stages, all at <see cref="OutputStride"/>.</summary>
    public abstract BackboneFeatures ForwardFeatures(Tensor input);

    public override Tensor forward(Tensor input) => ForwardFeatures(input).Final;

    /// <summary>Applies <see cref="FrozenPrefixes"/>: those parameters get requires_grad = false.</summary>
    public void FreezeStages()
    {
        foreach (var (name, p) in named_parameters())
            if (FrozenPrefixes.Any(prefix => name.StartsWith(prefix, StringComparison.Ordinal)))
                p.requires_grad = false;
    }

    /// <summary>Puts every BatchNorm in eval mode (frozen statistics), leaving the rest as it is.</summary>
    public void FreezeBatchNorm()
    {
        foreach (var m in modules())
            if (m is BatchNorm2d bn)
            {
                bn.eval();
                foreach (var p in bn.parameters())
                    p.requires_grad = false;
            }
    }
}

/// <summary>Keeps frozen BatchNorms in eval mode after a module-wide train() call.</summary>
public static class BackboneTrainMode
{
    public static void FreezeBatchNormIfFrozen(this Backbone trunk)
    {
        foreach (var m in trunk.modules())
            if (m is BatchNorm2d bn && bn.parameters().All(p => !p.requires_grad))
                bn.eval();
    }
}
