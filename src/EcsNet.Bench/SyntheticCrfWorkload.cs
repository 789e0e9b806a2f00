using EcsNet.Data;

namespace EcsNet.Bench;

/// <summary>
/// The deterministic CRF benchmark input, shaped like the densecrf peer's input (docs/BENCHMARKS.md, "Peers"): a
/// natural-looking RGB image (sky/ground gradients, overlapping shaded ellipses, smooth texture and a little
/// grain) and probabilities that are a softmax of smooth random logits over max(labels, 21) channels, of which
/// the first <c>labels</c> are kept, not renormalised (the peer's 3-label protocol).
/// </summary>
public static class SyntheticCrfWorkload
{
    public static (RgbImage Image, float[] Probabilities) Create(int width, int height, int labels, int seed)
    {
        var rng = new Random(seed);
        return (MakeImage(width, height, rng), MakeProbabilities(width, height, labels, rng));
    }

    private static RgbImage MakeImage(int w, int h, Random rng)
    {
        var rgb = new float[w * h * 3];
        float horizon = h * (0.35f + 0.2f * rng.NextSingle());
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int i = (y * w + x) * 3;
                if (y < horizon)
                {
                    float t = y / horizon;
                    rgb[i] = 90 + 80 * t; rgb[i + 1] = 140 + 60 * t; rgb[i + 2] = 220 - 20 * t;
                }
                else
                {
                    float t = (y - horizon) / Math.Max(1, h - horizon);
                    rgb[i] = 110 - 40 * t + 20 * x / w; rgb[i + 1] = 100 - 30 * t; rgb[i + 2] = 60 - 20 * t;
                }
            }

        // Objects: shaded ellipses of random colour, drawn back to front.
        int objects = 6 + rng.Next(6);
        for (int o = 0; o < objects; o++)
        {
            float cx = rng.NextSingle() * w, cy = rng.NextSingle() * h;
            float rx = (0.05f + 0.2f * rng.NextSingle()) * w, ry = (0.05f + 0.2f * rng.NextSingle()) * h;
            float r = rng.Next(256), g = rng.Next(256), b = rng.Next(256);
            int x0 = Math.Max(0, (int)(cx - rx)), x1 = Math.Min(w - 1, (int)(cx + rx));
            int y0 = Math.Max(0, (int)(cy - ry)), y1 = Math.Min(h - 1, (int)(cy + ry));
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++)
                {
                    float dx = (x - cx) / rx, dy = (y - cy) / ry, d2 = dx * dx + dy * dy;
                    if (d2 > 1) continue;
                    float shade = 1.15f - 0.45f * (0.5f * (dx + dy) + 0.5f) * 0.5f - 0.2f * d2;
                    int i = (y * w + x) * 3;
                    rgb[i] = r * shade; rgb[i + 1] = g * shade; rgb[i + 2] = b * shade;
                }
        }

        // Smooth texture (a coarse random field, bilinear) and per-pixel grain.
        var texture = SmoothField(w, h, 24, rng);
        var pixels = new byte[w * h * 3];
        for (int p = 0; p < w * h; p++)
            for (int c = 0; c < 3; c++)
            {
                float v = rgb[p * 3 + c] + 12 * texture[p] + (rng.NextSingle() - 0.5f) * 8;
                pixels[p * 3 + c] = (byte)Math.Clamp(MathF.Round(v), 0, 255);
            }
        return new RgbImage(w, h, pixels);
    }

    private static float[] MakeProbabilities(int w, int h, int labels, Random rng)
    {
        int channels = Math.Max(labels, 21), n = w * h;
        var logits = new float[channels][];
        for (int c = 0; c < channels; c++)
        {
            logits[c] = SmoothField(w, h, 60, rng);
            for (int p = 0; p < n; p++) logits[c][p] *= 2.5f;
        }
        var probs = new float[labels * n];
        for (int p = 0; p < n; p++)
        {
            float max = float.NegativeInfinity, sum = 0;
            for (int c = 0; c < channels; c++) max = Math.Max(max, logits[c][p]);
            for (int c = 0; c < channels; c++) sum += MathF.Exp(logits[c][p] - max);
            for (int c = 0; c < labels; c++) probs[c * n + p] = MathF.Exp(logits[c][p] - max) / sum;
        }
        return probs;
    }

    /// <summary>A standard-normal-ish random field on a grid of <paramref name="cell"/>-pixel cells, bilinearly interpolated.</summary>
    private static float[] SmoothField(int w, int h, int cell, Random rng)
    {
        int gw = w / cell + 2, gh = h / cell + 2;
        var grid = new float[gw * gh];
        for (int i = 0; i < grid.Length; i++)
            grid[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var field = new float[w * h];
        for (int y = 0; y < h; y++)
        {
            float gy = (float)y / cell;
            int iy = (int)gy;
            float fy = gy - iy;
            for (int x = 0; x < w; x++)
            {
                float gx = (float)x / cell;
                int ix = (int)gx;
                float fx = gx - ix;
                float top = grid[iy * gw + ix] * (1 - fx) + grid[iy * gw + ix + 1] * fx;
                float bottom = grid[(iy + 1) * gw + ix] * (1 - fx) + grid[(iy + 1) * gw + ix + 1] * fx;
                field[y * w + x] = top * (1 - fy) + bottom * fy;
            }
        }
        return field;
    }
}
