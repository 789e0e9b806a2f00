using EcsNet.Core.Ecs;
using EcsNet.Core.Nets;
using EcsNet.Labels.Cams;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace EcsNet.Core.Inference;

/// <summary>Multi-scale + flip CAM inference (docs/METHOD.md §2; PSA/IRN/SEAM all use scales 1, 0.5, 1.5, 2 and flip).</summary>
public sealed record CamInferenceOptions
{
    public IReadOnlyList<double> Scales { get; init; } = new[] { 1.0, 0.5, 1.5, 2.0 };
    public bool Flip { get; init; } = true;
}

public static class CamInference
{
    /// <summary>
    /// Runs the model at every scale (and mirrored), upsamples each CAM to image size, ReLU, sums, and
    /// normalises each present class by its max (absent classes are not produced).
    /// </summary>
    /// <param name="image">Normalised CHW floats.</param>
    /// <param name="classes">Present foreground classes (1..20).</param>
    public static CamMaps Run(EcsNetModel model, float[] image, int height, int width, IReadOnlyList<int> classes, CamInferenceOptions options)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        model.eval();
        var x = tensor(image).view(1, 3, height, width);
        Tensor? sum = null;
        foreach (var scale in options.Scales)
        {
            var input = scale == 1.0 ? x : EcsObjective.Rescale(x, scale);
            var batch = options.Flip ? cat(new[] { input, input.flip(3) }, 0) : input;
            var maps = Maps(model, batch);
            maps = F.interpolate(maps, new long[] { height, width }, mode: InterpolationMode.Bilinear, align_corners: false);
            maps = F.relu(maps);
            var combined = options.Flip ? maps[0] + maps[1].flip(2) : maps[0];
            sum = sum is null ? combined : sum + combined;
        }
        var result = new float[classes.Count][];
        for (int k = 0; k < classes.Count; k++)
        {
            int c = classes[k];
            if (c < 1 || c > model.Options.Classes)
                throw new ArgumentOutOfRangeException(nameof(classes), $"class {c} is not a foreground class");
            var m = sum![c - 1];
            m = m / (m.max() + 1e-5);
            result[k] = m.contiguous().data<float>().ToArray();
        }
        return new CamMaps(height, width, classes.ToArray(), result);
    }

    private static Tensor Maps(EcsNetModel model, Tensor batch)
    {
        if (model.Options.Inference == InferenceMap.Cam)
            return model.forward(batch);
        var pass = model.Pass(batch, overlay: false);
        return pass.Refined.narrow(1, 1, model.Options.Classes);
    }
}
