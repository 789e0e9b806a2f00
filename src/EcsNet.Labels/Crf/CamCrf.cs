using EcsNet.Data;
using EcsNet.Labels.Cams;

namespace EcsNet.Labels.Crf;

/// <summary>The "+CRF" step of paper Table 4 for one image: dense CRF over the background score and the present classes' CAMs.</summary>
public static class CamCrf
{
    /// <summary>CRF labels of one image from its CAMs.</summary>
    public static LabelMask Refine(RgbImage image, CamMaps cams, CamBackground background, DenseCrfOptions options)
    {
        if (cams.Width != image.Width || cams.Height != image.Height)
            throw new BadInputException("crf", $"CAMs are {cams.Width}x{cams.Height} but the image is {image.Width}x{image.Height}");
        var scores = background.Scores(cams);
        var classOf = new int[cams.Classes.Count + 1];
        for (int i = 0; i < cams.Classes.Count; i++) classOf[i + 1] = cams.Classes[i];
        var q = DenseCrf.Infer(image, scores, classOf.Length, options);
        return DenseCrf.ArgMax(q, classOf, image.Width, image.Height);
    }
}
