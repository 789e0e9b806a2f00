using EcsNet.Data;
using EcsNet.Labels.Propagation;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.Core.Nets;

/// <summary>Options of AffinityNet training (docs/METHOD.md §4); defaults are PSA's train_aff.py for ResNet-38.</summary>
public sealed record AffinityNetOptions
{
    /// <summary>Channels each of the last three trunk stages is reduced to by a 1×1 conv (PSA resnet38_aff.py
    /// f8_3/f8_4/f8_5: 64, 128, 256; concatenated 448, which the 1×1 f9 keeps).</summary>
    public IReadOnlyList<int> ReducedChannels { get; init; } = new[] { 64, 128, 256 };

    /// <summary>Pair radius on the stride-8 grid (PSA <c>radius=5</c>).</summary>
    public int Radius { get; init; } = 5;

    /// <summary>Square training crop (PSA train_aff.py <c>--crop_size 448</c>); zero padding outside the image.</summary>
    public int CropSize { get; init; } = 448;

    /// <summary>Images per step (PSA <c>--batch_size 8</c>).</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>PSA <c>--max_epoches 8</c>.</summary>
    public int Epochs { get; init; } = 8;

    /// <summary>Base learning rate (PSA train_aff.py <c>--lr 0.1</c>; its README runs 0.07 with crop 256 for
    /// VGG16 — the project takes 0.1, docs/METHOD.md §4).</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>Poly decay lr·(1 − step/max_step)^power (PSA PolyOptimizer, power 0.9).</summary>
    public double PolyPower { get; init; } = 0.9;

    /// <summary>PSA <c>--wt_dec 5e-4</c>, on weights only (biases get none).</summary>
    public double WeightDecay { get; init; } = 5e-4;

    /// <summary>
    /// SGD momentum. PSA's PolyOptimizer passes weight decay as SGD's third positional argument, which is momentum
    /// (docs/METHOD.md §1, "momentum trap"), so the published runs used momentum 5e-4, i.e. effectively none; that is the
    /// default here (the reference preset). Set 0.9 for plain SGD with momentum.
    /// </summary>
    public double Momentum { get; init; } = 5e-4;

    /// <summary>Learning-rate multipliers of the four PSA parameter groups: trunk weights ×1, trunk biases ×2,
    /// new-layer weights ×10, new-layer biases ×20 (PSA train_aff.py).</summary>
    public double TrunkBiasLrMultiplier { get; init; } = 2;
    public double NewWeightLrMultiplier { get; init; } = 10;
    public double NewBiasLrMultiplier { get; init; } = 20;

    /// <summary>Keep every BatchNorm in eval mode with frozen affine parameters (PSA resnet38d.train()).</summary>
    public bool FreezeBatchNorm { get; init; } = true;

    /// <summary>ε inside the logs and added to the pair counts (PSA: <c>log(aff + 1e-5)</c>,
    /// <c>log(1 + 1e-5 − aff)</c>, <c>count + 1e-5</c>).</summary>
    public double LogEpsilon { get; init; } = 1e-5;

    /// <summary>Loss = bg/4 + fg/4 + neg/2 (PSA train_aff.py): positives split evenly between background and
    /// foreground pairs, negatives weigh as much as both.</summary>
    public double BackgroundWeight { get; init; } = 0.25;
    public double ForegroundWeight { get; init; } = 0.25;
    public double NegativeWeight { get; init; } = 0.5;

    /// <summary>Colour jitter of the training images (brightness, contrast, saturation, hue), applied by the data
    /// pipeline (PSA train_aff.py: <c>ColorJitter(0.3, 0.3, 0.3, 0.1)</c>); crops and flips are joint with the
    /// la/ha maps (<see cref="AffinityScoreMaps.Crop"/>).</summary>
    public (double Brightness, double Contrast, double Saturation, double Hue) ColorJitter { get; init; } = (0.3, 0.3, 0.3, 0.1);

    /// <summary>Save a checkpoint every this many steps (and at the end).</summary>
    public int CheckpointEvery { get; init; } = 50;

    /// <summary>Stop after this many steps in this invocation (tests and resume checks; 0 = run to the end).</summary>
    public int StopAfterSteps { get; init; }

    /// <summary>Intra-op threads for LibTorch (0: leave the default).</summary>
    public int Threads { get; init; }

    public int FeatureChannels => ReducedChannels.Sum();

    /// <summary>Poly learning-rate factor at a 0-based step (PSA: constant once step reaches max_step).</summary>
    public double PolyFactor(long step, long maxSteps) =>
        step < maxSteps ? Math.Pow(1.0 - (double)step / maxSteps, PolyPower) : Math.Pow(1.0 - (double)(maxSteps - 1) / maxSteps, PolyPower);

    public void Validate()
    {
        if (ReducedChannels.Count != 3 || ReducedChannels.Any(c => c < 1))
            throw new BadInputException("affinity net options", "reduced channels must be three positive numbers (PSA: 64,128,256)");
        if (Radius < 2)
            throw new BadInputException("affinity net options", $"radius must be at least 2 (got {Radius})");
        if (CheckpointEvery < 1 || StopAfterSteps < 0 || Threads < 0)
            throw new BadInputException("affinity net options", $"checkpoint every {CheckpointEvery} must be at least 1, stop after {StopAfterSteps} and threads {Threads} not negative");
        if (CropSize < 8 || BatchSize < 1 || Epochs < 1 || LearningRate <= 0)
            throw new BadInputException("affinity net options",
                $"crop {CropSize}, batch {BatchSize}, epochs {Epochs}, lr {LearningRate}: each must be positive (crop at least 8)");
    }
}

/// <summary>The loss of one batch and its three parts (PSA train_aff.py), plus the pair counts.</summary>
public sealed record AffinityLoss(Tensor Total, Tensor Background, Tensor Foreground, Tensor Negative,
    Tensor BackgroundCount, Tensor ForegroundCount, Tensor NegativeCount);

/// <summary>
/// AffinityNet (PSA, Ahn &amp; Kwak CVPR 2018; docs/METHOD.md §4): the trunk's last three stages, each reduced by a 1×1 conv
/// (no bias, ELU) to 64/128/256 channels, concatenated to 448 and mixed by one more 1×1 conv (no bias, ELU) —
/// PSA network/resnet38_aff.py f8_3, f8_4, f8_5, f9; no normalisation layers in the head. The semantic affinity of
/// two grid pixels is a_ij = exp(−‖f_i − f_j‖₁ / C) (PSA paper Eq. 3; PSA's code: mean over channels of |f_i − f_j|).
/// </summary>
public sealed class AffinityNet : Module<Tensor, Tensor>
{
    // Field names follow PSA (f8_3 … f9) so its checkpoints map onto ours name by name.
#pragma warning disable IDE1006
    private readonly Backbone backbone;
    private readonly Conv2d f8_3, f8_4, f8_5, f9;
#pragma warning restore IDE1006
    private readonly Dictionary<(int, int), AffinityPairs> pairCache = new();

    public AffinityNet(Backbone backbone, AffinityNetOptions? options = null) : base(nameof(AffinityNet))
    {
        Options = options ?? new AffinityNetOptions();
        Options.Validate();
        this.backbone = backbone;
        if (backbone.OutputStride != 8)
            throw new BadInputException("trunk.outputStride",
                $"AffinityNet and the random walk work on the stride-8 grid; the {backbone.Kind} trunk has output stride {backbone.OutputStride}");
        var stages = backbone.StageChannels;
        if (stages.Count != 3)
            throw new BadInputException($"backbone {backbone.Kind}", $"exposes {stages.Count} stages, AffinityNet needs the last three");
        var r = Options.ReducedChannels;
        f8_3 = Conv2d(stages[0], r[0], 1, bias: false);
        f8_4 = Conv2d(stages[1], r[1], 1, bias: false);
        f8_5 = Conv2d(stages[2], r[2], 1, bias: false);
        f9 = Conv2d(Options.FeatureChannels, Options.FeatureChannels, 1, bias: false);
        // PSA's initialisation: Kaiming-normal reductions, Xavier-uniform with gain 4 on f9 (a large gain keeps the
        // initial L1 distances, hence affinities, spread out rather than all ≈ 1).
        using (no_grad())
        {
            init.kaiming_normal_(f8_3.weight);
            init.kaiming_normal_(f8_4.weight);
            init.kaiming_normal_(f8_5.weight);
            init.xavier_uniform_(f9.weight, gain: 4);
        }
        RegisterComponents();
    }

    public AffinityNetOptions Options { get; }
    public Backbone Backbone => backbone;

    /// <summary>The new (from-scratch) layers: PSA's <c>from_scratch_layers</c>, trained at 10×/20× lr.</summary>
    public IEnumerable<Module> NewLayers => new Module[] { f8_3, f8_4, f8_5, f9 };

    /// <summary>Affinity features <c>[B, 448, H/8, W/8]</c>.</summary>
    public override Tensor forward(Tensor images)
    {
        var stages = backbone.ForwardFeatures(images).Stages;
        var a = functional.elu(f8_3.forward(stages[0]), alpha: 1.0);
        var b = functional.elu(f8_4.forward(stages[1]), alpha: 1.0);
        var c = functional.elu(f8_5.forward(stages[2]), alpha: 1.0);
        if (!a.shape.Skip(2).SequenceEqual(b.shape.Skip(2)) || !a.shape.Skip(2).SequenceEqual(c.shape.Skip(2)))
            throw new InvalidOperationException(
                $"backbone {backbone.Kind} returned stages of different sizes ({string.Join("x", a.shape)}, {string.Join("x", b.shape)}, {string.Join("x", c.shape)}); all must be at stride 8");
        return functional.elu(f9.forward(cat(new[] { a, b, c }, 1)), alpha: 1.0);
    }

    /// <summary>
    /// Features of one normalised image <c>[1, 3, H, W]</c> for the random walk: the image is zero-padded on the
    /// bottom/right to a multiple of 8 (PSA infer_aff.py), run in eval mode without gradients, and returned as
    /// <c>[C][⌈H/8⌉][⌈W/8⌉]</c> floats for <see cref="RandomWalk.Run"/>.
    /// </summary>
    public (float[] Features, int Channels, int GridHeight, int GridWidth) InferFeatures(Tensor image)
    {
        if (image.dim() != 4 || image.shape[0] != 1 || image.shape[1] != 3)
            throw new BadInputException("affinity net input", $"expected one RGB image [1, 3, H, W], got [{string.Join(", ", image.shape)}]");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        bool wasTraining = training;
        eval();
        try
        {
            long h = image.shape[2], w = image.shape[3];
            long ph = (h + 7) / 8 * 8 - h, pw = (w + 7) / 8 * 8 - w;
            var padded = ph > 0 || pw > 0 ? functional.pad(image, new[] { 0L, pw, 0L, ph }) : image;
            var f = forward(padded)[0].contiguous().cpu();
            return (f.data<float>().ToArray(), (int)f.shape[0], (int)f.shape[1], (int)f.shape[2]);
        }
        finally
        {
            if (wasTraining)
                train();
        }
    }

    /// <summary>The pairs of a feature grid (cached per size).</summary>
    public AffinityPairs PairsFor(int height, int width)
    {
        lock (pairCache)
        {
            if (!pairCache.TryGetValue((height, width), out var pairs))
                pairCache[(height, width)] = pairs = AffinityPairs.Create(Options.Radius, height, width);
            return pairs;
        }
    }

    /// <summary>Pair affinities <c>[B, Offsets, FromCount]</c> of features <c>[B, C, H, W]</c>, in
    /// <see cref="AffinityPairs"/> layout (PSA resnet38_aff.forward without <c>to_dense</c>).</summary>
    public Tensor PairAffinities(Tensor features) =>
        PairAffinities(features, PairsFor((int)features.shape[2], (int)features.shape[3]));

    public static Tensor PairAffinities(Tensor features, AffinityPairs pairs)
    {
        using var scope = NewDisposeScope();
        long b = features.shape[0], c = features.shape[1];
        var flat = features.reshape(b, c, -1);
        var from = tensor(pairs.From.Select(i => (long)i).ToArray(), device: features.device);
        var to = tensor(pairs.To.Select(i => (long)i).ToArray(), device: features.device);
        var ff = flat.index_select(2, from).unsqueeze(2);                              // [B, C, 1, F]
        var ft = flat.index_select(2, to).view(b, c, pairs.Offsets.Count, pairs.FromCount); // [B, C, K, F]
        var aff = exp(-(ft - ff).abs().mean(new long[] { 1 }));                         // [B, K, F]
        return aff.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// PSA's balanced affinity loss: bg = Σ −bg·log(a + ε) / (Σ bg + ε), fg likewise, neg = Σ −neg·log(1 + ε − a) /
    /// (Σ neg + ε); total = w_bg·bg + w_fg·fg + w_neg·neg (¼, ¼, ½). Labels are 0/1 tensors shaped like aff.
    /// </summary>
    /// <param name="sumOverRanks">
    /// Data-parallel: sums the three pair counts over the ranks (one small all-reduce) and returns the world size.
    /// Each part is then this rank's sum over the global batch's count times the world size, so the ranks'
    /// average (what the gradient all-reduce computes) is the global batch's loss whatever the shards' sizes.
    /// </param>
    public static AffinityLoss Loss(Tensor aff, Tensor bgPos, Tensor fgPos, Tensor neg, AffinityNetOptions? options = null,
        Func<double[], int>? sumOverRanks = null)
    {
        var o = options ?? new AffinityNetOptions();
        double eps = o.LogEpsilon;
        var bgSum = bgPos.sum();
        var fgSum = fgPos.sum();
        var negSum = neg.sum();
        int world = 1;
        if (sumOverRanks is not null)
        {
            // the counts are integers (exact in float32): the global ones replace the shard's
            var counts = new double[] { bgSum.item<float>(), fgSum.item<float>(), negSum.item<float>() };
            world = sumOverRanks(counts);
            bgSum = full(new long[0], counts[0], dtype: aff.dtype, device: aff.device);
            fgSum = full(new long[0], counts[1], dtype: aff.dtype, device: aff.device);
            negSum = full(new long[0], counts[2], dtype: aff.dtype, device: aff.device);
        }
        var bgCount = bgSum + eps;
        var fgCount = fgSum + eps;
        var negCount = negSum + eps;
        var logPos = (aff + eps).log();
        var bgLoss = (-bgPos * logPos).sum() / bgCount;
        var fgLoss = (-fgPos * logPos).sum() / fgCount;
        var negLoss = (-neg * (1.0 + eps - aff).log()).sum() / negCount;
        if (world != 1)
        {
            bgLoss = bgLoss * world;
            fgLoss = fgLoss * world;
            negLoss = negLoss * world;
        }
        var total = bgLoss * o.BackgroundWeight + fgLoss * o.ForegroundWeight + negLoss * o.NegativeWeight;
        return new AffinityLoss(total, bgLoss, fgLoss, negLoss, bgCount, fgCount, negCount);
    }

    /// <summary>Stacks per-image pair labels into three <c>[B, Offsets, FromCount]</c> float tensors.</summary>
    public static (Tensor Background, Tensor Foreground, Tensor Negative) LabelTensors(
        IReadOnlyList<AffinityPairLabels> labels, AffinityPairs pairs, Device? device = null)
    {
        int k = pairs.Offsets.Count, f = pairs.FromCount, p = pairs.PairCount;
        var bg = new float[labels.Count * p];
        var fg = new float[labels.Count * p];
        var ng = new float[labels.Count * p];
        for (int i = 0; i < labels.Count; i++)
        {
            if (labels[i].BackgroundPositive.Length != p)
                throw new BadInputException($"affinity labels of batch item {i}",
                    $"have {labels[i].BackgroundPositive.Length} pairs, the grid {pairs.Height}x{pairs.Width} has {p}");
            labels[i].BackgroundPositive.CopyTo(bg, i * p);
            labels[i].ForegroundPositive.CopyTo(fg, i * p);
            labels[i].Negative.CopyTo(ng, i * p);
        }
        long[] shape = { labels.Count, k, f };
        return (tensor(bg, shape, device: device), tensor(fg, shape, device: device), tensor(ng, shape, device: device));
    }
}
