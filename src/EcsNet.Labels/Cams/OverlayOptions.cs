using EcsNet.Data;

namespace EcsNet.Labels.Cams;

/// <summary>How overlay PNGs are drawn for people to look at (no effect on labels, CAMs or scores).</summary>
public sealed record OverlayOptions
{
    /// <summary>Default long edge: a 128-px synthetic image comes out three times as large, big enough to read.</summary>
    public const int DefaultLongEdge = 384;

    /// <summary>Largest long edge accepted; overlays beyond it only cost disk.</summary>
    public const int MaxLongEdge = 4096;

    /// <summary>
    /// Long edge in pixels an overlay is enlarged to when its image is smaller (never shrunk); 0 keeps the
    /// image's own size.
    /// </summary>
    public int LongEdge { get; init; } = DefaultLongEdge;

    /// <summary>Draw a strip under the image naming the classes drawn, each with its colour.</summary>
    public bool Legend { get; init; } = true;

    public void Validate()
    {
        if (LongEdge is < 0 or > MaxLongEdge)
            throw new BadInputException("overlays.longEdge", $"must lie in 0..{MaxLongEdge} pixels (0 keeps the image's size), got {LongEdge}");
    }
}
