namespace EcsNet.Core;

/// <summary>Creates trunks by kind.</summary>
public static class Backbones
{
    public static Backbone Create(BackboneKind kind) => kind switch
    {
        BackboneKind.Small => new SmallBackbone(),
        _ => throw new NotSupportedException($"backbone '{kind}' is not built yet"),
    };
}
