using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Jobs;
using EcsNet.Labels.Propagation;

namespace EcsNet.Labels.Tests.Jobs;

public sealed class PropagationJobTests
{
    private static readonly RandomWalkOptions Walk = new() { LogT = 4, Radius = 2, Threads = 1 };

    private static (float[] Features, int Channels, int GridHeight, int GridWidth) Features(int height, int width, int seed)
    {
        int gh = (height + 7) / 8, gw = (width + 7) / 8, channels = 6;
        var rng = new Random(seed);
        var f = new float[channels * gh * gw];
        for (int i = 0; i < f.Length; i++) f[i] = (float)rng.NextDouble();
        return (f, channels, gh, gw);
    }

    [Fact]
    public void WritesWhatTheWalkComputesFromTheSavedFeatures()
    {
        using var inputs = new JobInputs(2);
        foreach (var id in inputs.Ids)
        {
            var (f, c, gh, gw) = Features(inputs.Height, inputs.Width, id.GetHashCode(StringComparison.Ordinal));
            var featuresPath = inputs.Out("features", id + ".npy");
            PropagationJob.WriteFeatures(featuresPath, f, c, gh, gw);
            var job = new PropagationJob(id, featuresPath, inputs.CamDir, inputs.Height, inputs.Width, inputs.Out("rw", id + ".png"), Walk);
            job.Run();
            var cams = CamStore.Read(inputs.CamDir, id);
            var expected = RandomWalk.Run(f, c, gh, gw, cams.FullStack(), cams.Classes, inputs.Height, inputs.Width, Walk).Labels;
            Assert.Equal(ImageCodec.EncodeLabelPng(expected), File.ReadAllBytes(job.OutputPath));
            // the features file is the job's input: running again reads it again and writes the same bytes
            var first = File.ReadAllBytes(job.OutputPath);
            job.Run();
            Assert.Equal(first, File.ReadAllBytes(job.OutputPath));
        }
    }

    [Fact]
    public void CamsOfAnotherSizeAreNamed()
    {
        using var inputs = new JobInputs(1);
        var (f, c, gh, gw) = Features(inputs.Height, inputs.Width, 1);
        var featuresPath = inputs.Out("features", "img_0.npy");
        PropagationJob.WriteFeatures(featuresPath, f, c, gh, gw);
        var job = new PropagationJob("img_0", featuresPath, inputs.CamDir, inputs.Height + 1, inputs.Width, inputs.Out("rw", "img_0.png"), Walk);
        var e = Assert.Throws<BadInputException>(() => job.Run());
        Assert.Contains("img_0.npy", e.Subject);
        Assert.Contains($"CAMs are {inputs.Width}x{inputs.Height} but the image is {inputs.Width}x{inputs.Height + 1}", e.Message);
    }

    [Fact]
    public void MissingFeaturesAreNamed()
    {
        using var inputs = new JobInputs(1);
        var job = new PropagationJob("img_0", inputs.Out("features", "img_0.npy"), inputs.CamDir, inputs.Height, inputs.Width, inputs.Out("rw", "img_0.png"), Walk);
        Assert.Contains("features", Assert.Throws<BadInputException>(() => job.Run()).Subject);
        Assert.Contains("image size 0x5 is empty", Assert.Throws<BadInputException>((job with { Height = 0, Width = 5 }).Validate).Message);
    }
}
