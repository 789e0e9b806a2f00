namespace EcsNet.Labels.Cams;

/// <summary>CAMs of one image for its present classes, each normalised to max 1, at image size.</summary>
/// <param name="Classes">Foreground class indices 1..20, in the order of <paramref name="Maps"/>.</param>
/// <param name="Maps">[K][H·W] row-major.</param>
public sealed record CamMaps(int Height, int Width, IReadOnlyList<int> Classes, float[][] Maps)
{
    /// <summary>All foreground classes as one stack [20][H·W] (channel c−1 = class c; absent classes zero).</summary>
    public float[] FullStack(int foreground = 20)
    {
        int n = Height * Width;
        var stack = new float[foreground * n];
        for (int k = 0; k < Classes.Count; k++)
            Maps[k].AsSpan().CopyTo(stack.AsSpan((Classes[k] - 1) * n, n));
        return stack;
    }
}
