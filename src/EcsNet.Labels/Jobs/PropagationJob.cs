using System.Diagnostics;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Propagation;

namespace EcsNet.Labels.Jobs;

/// <summary>
/// The torch-free half of the random-walk stage for one image (PSA infer_aff.py after the network): AffinityNet's
/// features, saved by the stage as a float32 .npy <c>[C, ⌈H/8⌉, ⌈W/8⌉]</c>, define the transition matrix; the
/// image's CAMs (with PSA's background channel) are walked <see cref="RandomWalkOptions.Steps"/> steps, upsampled
/// and arg-maxed (<see cref="RandomWalk.Run"/>) into a VOC label PNG.
/// </summary>
/// <param name="Height">Image height; the CAMs and the feature grid must match it.</param>
/// <param name="Width">Image width.</param>
public sealed record PropagationJob(string ImageId, string FeaturesPath, string CamDir, int Height, int Width,
    string OutputPath, RandomWalkOptions Walk) : IImageJob
{
    public const string Kind = "propagation";

    public void Validate()
    {
        JobChecks.Id(Kind, ImageId);
        JobChecks.Path(Kind, ImageId, "features path", FeaturesPath);
        JobChecks.Path(Kind, ImageId, "CAM folder", CamDir);
        JobChecks.Path(Kind, ImageId, "output path", OutputPath);
        JobChecks.Options(Kind, ImageId, "random walk options", Walk);
        if (Height < 1 || Width < 1)
            throw JobChecks.Bad(Kind, ImageId, $"image size {Height}x{Width} is empty");
        Walk.Validate();
    }

    /// <summary>Writes features <c>[channels][gridHeight][gridWidth]</c> for a job to read (float32 .npy, atomically).</summary>
    public static void WriteFeatures(string path, float[] features, int channels, int gridHeight, int gridWidth) =>
        AtomicFile.Write(path, stream => NpyFile.Write(stream, features, channels, gridHeight, gridWidth));

    public ImageJobResult Run(CancellationToken cancellationToken = default)
    {
        Validate();
        cancellationToken.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        var features = NpyFile.Read(FeaturesPath);
        if (features.Shape.Length != 3)
            throw new BadInputException(FeaturesPath, $"features have shape ({string.Join(", ", features.Shape)}), expected (channels, grid height, grid width)");
        var cams = CamStore.Read(CamDir, ImageId);
        if (cams.Height != Height || cams.Width != Width)
            throw new BadInputException(Path.Combine(CamDir, ImageId + ".npy"), $"CAMs are {cams.Width}x{cams.Height} but the image is {Width}x{Height}");
        var walked = RandomWalk.Run(features.Data, features.Shape[0], features.Shape[1], features.Shape[2],
            cams.FullStack(), cams.Classes, Height, Width, Walk);
        ImageCodec.WriteLabelPng(OutputPath, walked.Labels);
        return new ImageJobResult(ImageId, OutputPath, clock.Elapsed.TotalSeconds);
    }
}
