using EcsNet.Data;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace EcsNet.Core.Training;

/// <summary>Training loss of the segmentation network (docs/METHOD.md §5): per-pixel cross-entropy, 255 ignored.</summary>
public static class SegLoss
{
    /// <summary>
    /// Mean of −log softmax(logits)[label] over the pixels whose label is not 255; zero (with a gradient path)
    /// when a batch has no labelled pixel, where a plain mean would be 0/0 and read as divergence.
    /// </summary>
    /// <param name="logits">[B, K, h, w] class scores.</param>
    /// <param name="labels">[B, H, W] int64 labels in 0..K−1 or 255.</param>
    /// <param name="grid">
    /// <see cref="SegLossGrid.Features"/>: labels shrunk to the logit grid by nearest neighbour (DeepLab);
    /// <see cref="SegLossGrid.Image"/>: logits upsampled bilinearly to the labels' grid.
    /// </param>
    /// <param name="sync">
    /// Data-parallel: this batch is one rank's shard. The mean is then over the labelled pixels of the whole
    /// global batch (their count summed over the ranks, one small all-reduce) and each rank returns
    /// WorldSize · (its sum) / count, so the ranks' average — what the gradient all-reduce computes — is the
    /// global batch's loss whatever the shards' sizes.
    /// </param>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, SegLossGrid grid = SegLossGrid.Features, IGradientSync? sync = null)
    {
        long h = logits.shape[2], w = logits.shape[3];
        if (labels.shape[1] != h || labels.shape[2] != w)
        {
            if (grid == SegLossGrid.Features)
                labels = F.interpolate(labels.unsqueeze(1).to_type(ScalarType.Float32), new long[] { h, w }, mode: InterpolationMode.Nearest)
                    .squeeze(1).to_type(ScalarType.Int64);
            else
                logits = F.interpolate(logits, new long[] { labels.shape[1], labels.shape[2] }, mode: InterpolationMode.Bilinear, align_corners: false);
        }
        var valid = labels.ne(VocClasses.Ignore);
        long count = valid.sum().item<long>();
        double total = count;
        if (sync is not null)
        {
            var counts = new double[] { count };
            sync.SumAcrossRanks(counts);
            total = counts[0];
        }
        if (total == 0 || count == 0)
            return logits.sum() * 0;
        var logp = F.log_softmax(logits, 1);
        var safe = where(valid, labels, zeros_like(labels));
        if (safe.max().item<long>() >= logits.shape[1])
            throw new ArgumentException($"a label is ≥ {logits.shape[1]} (the number of classes) and is not the ignore value {VocClasses.Ignore}");
        var picked = logp.gather(1, safe.unsqueeze(1)).squeeze(1);
        var sum = -(picked * valid.to_type(picked.dtype)).sum();
        // (sum / count) · N: for one rank exactly the single-process value
        return sync is null ? sum / count : sum / total * sync.WorldSize;
    }
}
