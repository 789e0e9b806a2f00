namespace EcsNet.Core.Nets;

/// <summary>Creates trunks by kind.</summary>
public static class Backbones
{
    public static Backbone Create(BackboneKind kind) => kind switch
    {
        BackboneKind.Small => new SmallBackbone(),
        BackboneKind.ResNet38 => new ResNet38(),
        BackboneKind.Vgg16 => new Vgg16(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown backbone"),
    };
}
