using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace EcsNet.Core.Ecs;

/// <summary>Segment labels L' (Eq 3) and the reliable set Φ (paper §3.1 "Noise Suppression").</summary>
public static class ReliableLabels
{
    /// <summary>Ignore value in label grids.</summary>
    public const long Ignore = 255;

    /// <summary>
    /// L' = argmax over [background score, a'_1..a'_C] (Eq 3, 0 = background, c = class index 1..C), and
    /// Φ = not erased ∧ not background ∧ s' &gt; θ. Entries outside Φ are <see cref="Ignore"/>.
    /// Optionally confident background (s &lt; τ and s' &lt; τ, outside R) is kept as class 0.
    /// </summary>
    /// <param name="erasedNormalized">a' of F', [B, C, h, w] (Eq 1 applied to H' or E').</param>
    /// <param name="erasedRegion">R at any resolution, [B, 1, H, W] of 0/1.</param>
    /// <param name="originalScore">s of F at any resolution [B, h0, w0]; only read for the background option.</param>
    public static Tensor Build(Tensor erasedNormalized, Tensor erasedRegion, double theta, double backgroundScore,
        double backgroundThreshold = 0, Tensor? originalScore = null)
    {
        using var _ = no_grad();
        long b = erasedNormalized.shape[0], h = erasedNormalized.shape[2], w = erasedNormalized.shape[3];
        var bg = full(new long[] { b, 1, h, w }, backgroundScore, dtype: erasedNormalized.dtype, device: erasedNormalized.device);
        var withBg = cat(new[] { bg, erasedNormalized }, 1);
        var labels = withBg.argmax(1);                                   // Eq 3
        var score = Cam.Score(erasedNormalized);                         // s'
        var region = F.interpolate(erasedRegion, new long[] { h, w }, mode: InterpolationMode.Nearest).squeeze(1) > 0.5;
        var reliable = region.logical_not() & labels.ne(0) & (score > theta);
        var result = where(reliable, labels, full_like(labels, Ignore));
        if (backgroundThreshold > 0 && originalScore is not null)
        {
            var s0 = F.interpolate(originalScore.unsqueeze(1), new long[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false).squeeze(1);
            var confidentBg = region.logical_not() & (score < backgroundThreshold) & (s0 < backgroundThreshold);
            result = where(confidentBg, zeros_like(labels), result);
        }
        return result;
    }
}
