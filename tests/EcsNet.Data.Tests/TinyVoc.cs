using EcsNet.Testing;

namespace EcsNet.Data.Tests;

/// <summary>A tiny generated VOC tree in a temp folder (6 train + 2 val images at 64 px), deleted on dispose.</summary>
public sealed class TinyVoc : IDisposable
{
    private readonly TempDir dir = new();

    public TinyVoc(int train = 6, int val = 2, int size = 64, int seed = 3)
    {
        Result = SyntheticVoc.Generate(dir.Path, new SynthOptions { TrainImages = train, ValImages = val, Size = size, Seed = seed });
        Layout = new VocLayout(Result.Root);
    }

    public SynthResult Result { get; }

    public VocLayout Layout { get; }

    /// <summary>The folder that holds VOC2012/.</summary>
    public string Parent => dir.Path;

    public string Root => Result.Root;

    public string FirstTrainId => Result.TrainIds[0];

    public void Dispose() => dir.Dispose();
}
