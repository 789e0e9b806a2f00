using EcsNet.Core.Training;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace EcsNet.Core.Ecs;

/// <summary>Loss terms of paper §3.2 (Eq 4–7).</summary>
public static class Losses
{
    /// <summary>
    /// Eq 4: l_cls(o, L) = −1/(C) Σ_c [l_c log σ(o_c) + (1 − l_c) log(1 − σ(o_c))] over the foreground
    /// classes (the paper writes it with f(x) = e^{−x}: 1/(1+f(o)) = σ(o)); averaged over the batch. This is
    /// PyTorch's multilabel soft-margin loss.
    /// </summary>
    public static Tensor MultiLabelSoftMargin(Tensor scores, Tensor labels)
    {
        var y = labels.to_type(scores.dtype);
        var perClass = y * F.logsigmoid(scores) + (1 - y) * F.logsigmoid(-scores);
        return -perClass.mean(new long[] { 1 }).mean();
    }

    /// <summary>Eq 5: ½(l(o_cam) + l(o'_cam)) + ½(l(o_pro) + l(o'_pro)); terms passed as null are left out.</summary>
    public static Tensor Classification(Tensor labels, Tensor oCam, Tensor? oCamErased, Tensor? oPro, Tensor? oProErased)
    {
        var loss = MultiLabelSoftMargin(oCam, labels);
        if (oCamErased is not null) loss = loss + MultiLabelSoftMargin(oCamErased, labels);
        var refine = oPro is null ? null : MultiLabelSoftMargin(oPro, labels);
        if (oProErased is not null) refine = refine is null ? MultiLabelSoftMargin(oProErased, labels) : refine + MultiLabelSoftMargin(oProErased, labels);
        return refine is null ? 0.5 * loss : 0.5 * loss + 0.5 * refine;
    }

    /// <summary>
    /// Eq 6: cross-entropy of softmax(logits) against L' on Φ, averaged over Φ; zero when Φ is empty.
    /// Data-parallel (<paramref name="sync"/> given), Φ is the union over the global batch: |Φ| is summed
    /// over the ranks and each rank returns WorldSize · (its sum) / |Φ|, so the ranks' average (what the
    /// gradient all-reduce computes) is exactly the global batch's Eq 6, not an average of per-shard means.
    /// </summary>
    /// <param name="logits">[B, K, h, w] scores; channel k is label k of <paramref name="target"/>.</param>
    /// <param name="target">[B, h, w] int64 labels, <see cref="ReliableLabels.Ignore"/> outside Φ.</param>
    public static Tensor ReliableCrossEntropy(Tensor logits, Tensor target, IGradientSync? sync = null)
    {
        var valid = target.ne(ReliableLabels.Ignore);
        long local = valid.sum().item<long>();
        double count = local, scale = 1;
        if (sync is not null)
        {
            var total = new double[] { local };
            sync.SumAcrossRanks(total);
            count = total[0];
            scale = sync.WorldSize;
        }
        if (count == 0)
            return logits.sum() * 0;
        var logp = F.log_softmax(logits, 1);
        var safe = where(valid, target, zeros_like(target));
        var picked = logp.gather(1, safe.unsqueeze(1)).squeeze(1);
        var sum = -(picked * valid.to_type(picked.dtype)).sum();
        // (sum / |Φ|) · N: for one rank exactly the single-process value
        return sync is null ? sum / local : sum / count * scale;
    }
}
