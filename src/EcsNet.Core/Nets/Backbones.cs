namespace EcsNet.Core.Nets;

/// <summary>Creates trunks by kind.</summary>
public static class Backbones
{
    /// <summary>A freshly initialised trunk; <paramref name="options"/> shape the ResNet-18 (the others ignore them).</summary>
    public static Backbone Create(BackboneKind kind, TrunkOptions? options = null) => kind switch
    {
        BackboneKind.Small => new SmallBackbone(),
        BackboneKind.ResNet38 => new ResNet38(),
        BackboneKind.Vgg16 => new Vgg16(),
        BackboneKind.ResNet18 => new ResNet18Trunk(options),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown backbone"),
    };
}
