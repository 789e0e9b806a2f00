using static TorchSharp.torch;

namespace EcsNet.Core.Ecs;

/// <summary>Class activation map math of paper §3.1.</summary>
public static class Cam
{
    /// <summary>
    /// Eq 1: a_c = w_c · (H_c − min H_c) / (max H_c − min H_c), per image and class, with w_c the image label.
    /// </summary>
    /// <param name="heatmap">H, [B, C, h, w].</param>
    /// <param name="labels">Image labels w, [B, C] of 0/1.</param>
    public static Tensor Normalize(Tensor heatmap, Tensor labels)
    {
        var flat = heatmap.flatten(2);
        var min = flat.amin(new long[] { 2 }, keepdim: true).unsqueeze(-1);
        var max = flat.amax(new long[] { 2 }, keepdim: true).unsqueeze(-1);
        var a = (heatmap - min) / (max - min).clamp_min(1e-5);
        return a * labels.to_type(heatmap.dtype).unsqueeze(-1).unsqueeze(-1);
    }

    /// <summary>Eq 2: s = max_c a_c, [B, h, w].</summary>
    public static Tensor Score(Tensor normalized) => normalized.amax(new long[] { 1 });

    /// <summary>Global average pooling of a map stack to class scores o ([B, C, h, w] → [B, C]).</summary>
    public static Tensor Gap(Tensor maps) => maps.mean(new long[] { 2, 3 });
}
