using System.Diagnostics;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Crf;
using EcsNet.Labels.Propagation;

namespace EcsNet.Labels.Jobs;

/// <summary>
/// The la/ha score maps of one image (PSA infer_cls.py, <c>_crf_with_alpha</c> at the low and the high α): two
/// background-augmented CAM stacks, each refined by the dense CRF (<see cref="AffinityLabels.ScoreMaps"/>),
/// written as one <see cref="AffinityMapsFile"/>. AffinityNet training crops these maps with the image.
/// </summary>
public sealed record AffinityMapsJob(string ImageId, string ImagePath, string CamDir, string OutputPath,
    AffinityLabelOptions Labels, DenseCrfOptions Crf) : IImageJob
{
    public const string Kind = "affinity maps";

    public void Validate()
    {
        JobChecks.Id(Kind, ImageId);
        JobChecks.Path(Kind, ImageId, "image path", ImagePath);
        JobChecks.Path(Kind, ImageId, "CAM folder", CamDir);
        JobChecks.Path(Kind, ImageId, "output path", OutputPath);
        JobChecks.Options(Kind, ImageId, "affinity label options", Labels);
        JobChecks.Options(Kind, ImageId, "CRF options", Crf);
        Labels.Validate();
        Crf.Validate();
    }

    /// <summary>The maps themselves, without writing them.</summary>
    public AffinityScoreMaps Compute()
    {
        Validate();
        var image = ImageCodec.ReadRgb(ImagePath);
        var cams = CamStore.Read(CamDir, ImageId);
        var crf = Crf;
        return AffinityLabels.ScoreMaps(image, cams.FullStack(), cams.Classes, Labels,
            (img, probs, labels) => DenseCrf.Infer(img, probs, labels, crf));
    }

    public ImageJobResult Run(CancellationToken cancellationToken = default)
    {
        Validate();
        cancellationToken.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        AffinityMapsFile.Write(OutputPath, Compute());
        return new ImageJobResult(ImageId, OutputPath, clock.Elapsed.TotalSeconds);
    }
}
