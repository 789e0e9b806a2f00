using System.Diagnostics;
using EcsNet.Core.Nets;
using EcsNet.Core.Training;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace EcsNet.Core.Inference;

/// <summary>What segmentation inference wrote.</summary>
public sealed record SegInferenceReport(int Images, double Seconds, string LabelDir, bool Crf);

/// <summary>
/// Inference of the segmentation network (docs/METHOD.md §5): softmax probabilities at image size averaged over scales
/// (and the mirrored image), optionally refined by a dense CRF, argmax → a label PNG per image.
/// <para>
/// The CRF is a delegate <c>crf(image, probabilities, K) → refined probabilities</c>, both [K·H·W] row-major per
/// class (the dense CRF of docs/METHOD.md §3, <c>DenseCrf</c>, fits it); null (the default) means no CRF.
/// </para>
/// </summary>
public static class SegInference
{
    /// <summary>Class probabilities of one image at its size, [K·H·W], averaged over the options' scales and flip.</summary>
    public static float[] Probabilities(DeepLab model, RgbImage image, SegOptions options)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        model.eval();
        int h = image.Height, w = image.Width;
        var x = tensor(Augmentation.Normalize(image, options.Augment.Mean, options.Augment.Std)).view(1, 3, h, w);
        Tensor? sum = null;
        int count = 0;
        foreach (var scale in options.Scales)
        {
            var input = scale == 1.0 ? x : F.interpolate(x,
                new long[] { Math.Max(1, (long)Math.Round(h * scale)), Math.Max(1, (long)Math.Round(w * scale)) },
                mode: InterpolationMode.Bilinear, align_corners: false);
            var batch = options.Flip ? cat(new[] { input, input.flip(3) }, 0) : input;
            var logits = F.interpolate(model.forward(batch), new long[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false);
            var probs = F.softmax(logits, 1);
            var combined = options.Flip ? probs[0] + probs[1].flip(2) : probs[0];
            sum = sum is null ? combined : sum + combined;
            count += options.Flip ? 2 : 1;
        }
        return (sum! / count).contiguous().data<float>().ToArray();
    }

    /// <summary>Argmax over classes of [K·H·W] probabilities.</summary>
    public static LabelMask Argmax(float[] probabilities, int classes, int width, int height)
    {
        int plane = width * height;
        if (probabilities.Length != classes * plane)
            throw new ArgumentException($"{probabilities.Length} probabilities for {classes} classes of {width}x{height}");
        var labels = new byte[plane];
        for (int p = 0; p < plane; p++)
        {
            int best = 0;
            float top = probabilities[p];
            for (int c = 1; c < classes; c++)
            {
                float v = probabilities[c * plane + p];
                if (v > top) { top = v; best = c; }
            }
            labels[p] = (byte)best;
        }
        return new LabelMask(width, height, labels);
    }

    /// <summary>The label map of one image (probabilities → optional CRF → argmax).</summary>
    public static LabelMask Predict(DeepLab model, RgbImage image, SegOptions options, Func<RgbImage, float[], int, float[]>? crf = null)
    {
        var probs = Probabilities(model, image, options);
        if (crf is not null)
        {
            probs = crf(image, probs, model.Classes);
            if (probs.Length != model.Classes * image.Width * image.Height)
                throw new InvalidOperationException($"the CRF returned {probs.Length} values, expected {model.Classes * image.Width * image.Height}");
        }
        return Argmax(probs, model.Classes, image.Width, image.Height);
    }

    /// <summary>
    /// Labels every image of a split into <paramref name="outDir"/>/&lt;id&gt;.png, and writes a blended overlay
    /// (&lt;id&gt;_seg.png) into <paramref name="overlayDir"/> for the ids in <paramref name="overlayIds"/>.
    /// </summary>
    public static SegInferenceReport Run(DeepLab model, VocDataset dataset, string outDir, SegOptions options, Func<RgbImage, float[], int, float[]>? crf = null,
        IReadOnlySet<string>? overlayIds = null, string? overlayDir = null,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken ct = default, OverlayOptions? overlayOptions = null)
    {
        var sw = Stopwatch.StartNew();
        if (options.Threads > 0)
            torch.set_num_threads(options.Threads);
        Directory.CreateDirectory(outDir);
        int done = 0;
        foreach (var sample in dataset.Samples)
        {
            ct.ThrowIfCancellationRequested();
            var image = ImageCodec.ReadRgb(sample.ImagePath);
            var labels = Predict(model, image, options, crf);
            ImageCodec.WriteLabelPng(Path.Combine(outDir, sample.Id + ".png"), labels);
            if (overlayDir is not null && overlayIds?.Contains(sample.Id) == true)
            {
                Directory.CreateDirectory(overlayDir);
                Overlays.WriteLabelOverlay(Path.Combine(overlayDir, sample.Id + "_seg.png"), image, labels, overlayOptions);
            }
            progress?.Report((++done, dataset.Count));
        }
        return new SegInferenceReport(done, sw.Elapsed.TotalSeconds, outDir, crf is not null);
    }
}
