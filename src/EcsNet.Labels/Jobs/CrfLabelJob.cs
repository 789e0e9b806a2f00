using System.Diagnostics;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Crf;

namespace EcsNet.Labels.Jobs;

/// <summary>
/// The "+CRF" step of paper Table 4 for one image (what the crf stage does per image): its saved CAMs with a
/// constant background score, refined by the dense CRF (<see cref="CamCrf.Refine"/>), arg-maxed and written as a
/// VOC label PNG.
/// </summary>
/// <param name="CamDir">Folder of the CAM files (<see cref="CamStore"/>: &lt;id&gt;.npy + &lt;id&gt;.json).</param>
/// <param name="BackgroundThreshold">Constant background score in (0, 1] (PSA 0.2).</param>
/// <param name="Crf">CRF options; <see cref="DenseCrfOptions.MaxDegreeOfParallelism"/> is part of the job because
/// results agree across thread counts only to float rounding.</param>
public sealed record CrfLabelJob(string ImageId, string ImagePath, string CamDir, string OutputPath,
    double BackgroundThreshold, DenseCrfOptions Crf) : IImageJob
{
    public const string Kind = "crf";

    public void Validate()
    {
        JobChecks.Id(Kind, ImageId);
        JobChecks.Path(Kind, ImageId, "image path", ImagePath);
        JobChecks.Path(Kind, ImageId, "CAM folder", CamDir);
        JobChecks.Path(Kind, ImageId, "output path", OutputPath);
        JobChecks.Options(Kind, ImageId, "CRF options", Crf);
        if (!(BackgroundThreshold is > 0 and <= 1))
            throw JobChecks.Bad(Kind, ImageId, $"background threshold must lie in (0, 1], got {BackgroundThreshold}");
        Crf.Validate();
    }

    public ImageJobResult Run(CancellationToken cancellationToken = default)
    {
        Validate();
        cancellationToken.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        var image = ImageCodec.ReadRgb(ImagePath);
        var labels = CamCrf.Refine(image, CamStore.Read(CamDir, ImageId), CamBackground.Constant(BackgroundThreshold), Crf);
        ImageCodec.WriteLabelPng(OutputPath, labels);
        return new ImageJobResult(ImageId, OutputPath, clock.Elapsed.TotalSeconds);
    }
}
