using EcsNet.Data;
using EcsNet.Labels.Cams;

namespace EcsNet.Labels.Crf;

/// <summary>
/// Background score for a CAM stack (docs/METHOD.md §2): a constant (what pseudo labels use), or PSA's
/// (1 − max_c cam_c)^α (α 4 "la" keeps more background, α 32 "ha" less).
/// </summary>
public sealed record CamBackground(bool IsPower, double Value)
{
    public static CamBackground Constant(double threshold) =>
        threshold is > 0 and <= 1 ? new(false, threshold) : throw new BadInputException("background", $"constant score must lie in (0, 1], got {threshold}");

    public static CamBackground Power(double alpha) =>
        alpha > 0 && double.IsFinite(alpha) ? new(true, alpha) : throw new BadInputException("background", $"α must be positive, got {alpha}");

    /// <summary>Score map [1 + K][H·W]: channel 0 background, then the K present classes' CAMs.</summary>
    public float[] Scores(CamMaps cams)
    {
        int n = cams.Height * cams.Width, k = cams.Classes.Count;
        var scores = new float[(k + 1) * n];
        for (int c = 0; c < k; c++)
            cams.Maps[c].AsSpan().CopyTo(scores.AsSpan((c + 1) * n, n));
        var bg = scores.AsSpan(0, n);
        if (!IsPower)
        {
            bg.Fill((float)Value);
            return scores;
        }
        for (int p = 0; p < n; p++)
        {
            float max = 0;
            for (int c = 1; c <= k; c++) max = Math.Max(max, scores[c * n + p]);
            bg[p] = MathF.Pow(Math.Max(0f, 1f - max), (float)Value);
        }
        return scores;
    }
}
