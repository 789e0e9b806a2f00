using EcsNet.Core.Nets;
using EcsNet.Core.Training;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace EcsNet.Core.Ecs;

/// <summary>Scalar loss terms of one step, for logs and TensorBoard.</summary>
public sealed record LossTerms(double Total, double Classification, double CrossEntropy, double ReliableFraction, double ErasedFraction);

/// <summary>
/// One training objective evaluation of ECS-Net (paper Fig. 2, Eq 1–8): F on the β-rescaled crop, erase
/// {s &gt; δ}, F' on the erased full-size crop, L' and Φ from F', L = L_cls + L_ce. With
/// <see cref="CamMethod.Cam"/> it is the plain CAM baseline: L = l_cls(o_cam).
/// </summary>
public static class EcsObjective
{
    /// <param name="images">Normalised crops [B, 3, S, S].</param>
    /// <param name="labels">Image labels [B, C] of 0/1.</param>
    /// <param name="step">Global step (for <see cref="EcsNetOptions.CeStartStep"/>).</param>
    /// <param name="sync">
    /// Data-parallel: this batch is one rank's shard; Eq 6's normalisation by |Φ| then uses Φ of the whole
    /// global batch (one small all-reduce), so the ranks' averaged gradient equals the global batch's.
    /// Every other term is a mean over images and needs nothing.
    /// </param>
    /// <param name="shardWeight">
    /// Data-parallel: this shard's share of the global batch times the world size (<see cref="BatchShard.Weight"/>;
    /// exactly 1 for equal shards). Terms that are means over the shard's images are scaled by it, so the ranks'
    /// average is the global batch's mean when a generation change left the shards unequal.
    /// </param>
    public static (Tensor Loss, LossTerms Terms) Compute(EcsNetModel model, Tensor images, Tensor labels, int step, IGradientSync? sync = null,
        double shardWeight = 1)
    {
        var o = model.Options;
        if (o.Method == CamMethod.Cam)
        {
            var input = o.Beta < 1 ? Rescale(images, o.Beta) : images;
            var pass = model.Pass(input, overlay: false);
            var loss = Scaled(Losses.MultiLabelSoftMargin(Cam.Gap(pass.Heatmap), labels), shardWeight);
            return (loss, new LossTerms(loss.item<float>(), loss.item<float>(), 0, 0, 0));
        }

        var (first, second, region, s) = EraseAndPass(model, images, labels);

        var refineFg = first.Refined.narrow(1, 1, o.Classes);
        var refineFgErased = second.Refined.narrow(1, 1, o.Classes);
        var scale = o.RefineLogitScale;
        var cls = Scaled(Losses.Classification(labels,
            Cam.Gap(first.Heatmap), Cam.Gap(second.Heatmap),
            o.RefineClassification ? Cam.Gap(refineFg * scale) : null,
            o.RefineClassification ? Cam.Gap(refineFgErased * scale) : null), shardWeight);

        double reliableFraction = 0;
        Tensor ce = zeros(1, device: images.device).squeeze();
        if (o.UseCe && step >= o.CeStartStep)
        {
            var target = ReliableTarget(o, second, region, s, labels);        // L' on Φ (Eq 3)
            long th = target.shape[1], tw = target.shape[2];
            var map = o.CeOn == CeTarget.Refine
                ? first.Refined
                : CamWithBackground(Cam.Normalize(first.Heatmap, labels), o.LabelBackgroundScore);
            var logits = F.interpolate(map * scale, new long[] { th, tw }, mode: InterpolationMode.Bilinear, align_corners: false);
            ce = Losses.ReliableCrossEntropy(logits, target, sync);           // Eq 6
            reliableFraction = shardWeight * target.ne(ReliableLabels.Ignore).to_type(ScalarType.Float32).mean().item<float>();
        }
        var total = cls + o.CeWeight * ce;                                      // Eq 7
        double erasedFraction = shardWeight * region.mean().item<float>();
        return (total, new LossTerms(total.item<float>(), cls.item<float>(), ce.item<float>(), reliableFraction, erasedFraction));
    }

    /// <summary>
    /// F on I (β-rescaled, paper §3.2 "Other improvements"), the erased region R = {s &gt; δ} of its normalised
    /// CAM (Eq 1–2), and F' on the erased image I' (full size, with the multi-dilated overlay of Eq 8).
    /// </summary>
    /// <returns>Both passes, R at image size [B, 1, H, W], and s [B, h, w].</returns>
    public static (EcsPass First, EcsPass Second, Tensor Region, Tensor Score) EraseAndPass(EcsNetModel model, Tensor images, Tensor labels)
    {
        var o = model.Options;
        long size = images.shape[2], width = images.shape[3];
        var first = model.Pass(o.Beta < 1 ? Rescale(images, o.Beta) : images, overlay: false, labels);
        var a = Cam.Normalize(first.Heatmap.detach(), labels);                   // Eq 1
        var s = Cam.Score(a);                                                    // Eq 2
        var region = Erasing.Region(s, o.Delta, size, width);                    // R = {s > δ}
        var erased = Erasing.Erase(images, region, o.BlurSigmaFraction * size);  // I'
        return (first, model.Pass(erased, overlay: true, labels), region, s);
    }

    /// <summary>
    /// The reliable labels L' on Φ (Eq 3) from F' (its CAM, or its refined map, per <see cref="EcsNetOptions.Labels"/>):
    /// [B, h, w] int64, <see cref="ReliableLabels.Ignore"/> outside Φ.
    /// </summary>
    public static Tensor ReliableTarget(EcsNetOptions o, EcsPass second, Tensor region, Tensor score, Tensor labels)
    {
        var source = o.Labels == LabelSource.Heatmap ? second.Heatmap : second.Refined.narrow(1, 1, o.Classes);
        var aErased = Cam.Normalize(source.detach(), labels);                  // a' (Eq 1 on H')
        return ReliableLabels.Build(aErased, region, o.Theta, o.LabelBackgroundScore, o.BackgroundCeThreshold, score);
    }

    /// <summary>A mean over the shard's images as its share of the global batch's (no operation for equal shards).</summary>
    private static Tensor Scaled(Tensor meanOverShard, double shardWeight) => shardWeight == 1 ? meanOverShard : meanOverShard * shardWeight;

    /// <summary>[B, 1 + C, h, w]: a constant background score, then the normalised CAM a.</summary>
    private static Tensor CamWithBackground(Tensor normalized, double background)
    {
        long b = normalized.shape[0], h = normalized.shape[2], w = normalized.shape[3];
        var bg = full(new long[] { b, 1, h, w }, background, dtype: normalized.dtype, device: normalized.device);
        return cat(new[] { bg, normalized }, 1);
    }

    /// <summary>Bilinear rescale of a batch by a factor.</summary>
    public static Tensor Rescale(Tensor images, double factor)
    {
        long h = Math.Max(8, (long)Math.Round(images.shape[2] * factor));
        long w = Math.Max(8, (long)Math.Round(images.shape[3] * factor));
        return F.interpolate(images, new long[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false);
    }
}
