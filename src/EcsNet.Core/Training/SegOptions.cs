using EcsNet.Core.Nets;
using EcsNet.Core.Stages;
using EcsNet.Data;

namespace EcsNet.Core.Training;

/// <summary>Where the training cross-entropy of the segmentation network is taken.</summary>
public enum SegLossGrid
{
    /// <summary>
    /// On the stride-8 logit grid, labels shrunk by nearest neighbour (DeepLab-v1's Caffe "label shrink"
    /// interp layer; deeplab-pytorch does the same). Cheap; the reference behaviour.
    /// </summary>
    Features,

    /// <summary>On the crop's own grid, logits upsampled bilinearly (finer boundaries on small crops).</summary>
    Image,
}

/// <summary>
/// The segmentation network and its schedule (docs/METHOD.md §5; paper §4.2: "DeepLab-v1 LargeFOV with VGG16, and
/// ResNet-38 with dilated conv head"): 321×321 crops, random scale, crop, flip, colour jitter; SGD lr 0.001
/// with poly decay, batch 10, 20 epochs, momentum 0.9, weight decay 5e-4, 10× lr on the head; the
/// cross-entropy ignores 255. Trained on pseudo labels only, scored on val.
/// </summary>
public sealed record SegOptions
{
    /// <summary>Trunk of the segmentation network; null = the experiment's <see cref="ExperimentConfig.Backbone"/>.</summary>
    public BackboneKind? Backbone { get; init; }

    /// <summary>
    /// ImageNet weights of the segmentation trunk; null = the experiment's <see cref="ExperimentConfig.Weights"/>
    /// when the trunk kinds match (otherwise from scratch). Never the CAM network's weights: DeepLab starts from ImageNet.
    /// </summary>
    public string? Weights { get; init; }

    /// <summary>
    /// Start the trunk from the trained CAM network's trunk (the pipeline's RUN/cam/run, or train-seg
    /// --trunk-from) instead of ImageNet weights. Not the paper's recipe (DeepLab starts from ImageNet): it is for
    /// CPU runs without ImageNet weights, where the CAM trunk — trained on the same images with image-level labels
    /// only, so no extra supervision — is the only pretrained trunk there is. Needs the same trunk kind.
    /// </summary>
    public bool TrunkFromCam { get; init; }

    /// <summary>Output classes (VOC: background + 20).</summary>
    public int Classes { get; init; } = VocClasses.Count;

    /// <summary>Epochs over the training split (docs/METHOD.md §5: 20).</summary>
    public int Epochs { get; init; } = 20;

    /// <summary>Global batch (docs/METHOD.md §5 and DeepLab-v1's solver: 10).</summary>
    public int BatchSize { get; init; } = 10;

    /// <summary>Side of the square training crop (DeepLab-v1: 321 = 32·10 + 1, so every stride aligns).</summary>
    public int Crop { get; init; } = 321;

    /// <summary>Base learning rate (docs/METHOD.md §5 and DeepLab-v1's solver: 0.001).</summary>
    public double LearningRate { get; init; } = 0.001;

    /// <summary>Poly power: lr·(1 − step/max)^power (DeepLab: 0.9).</summary>
    public double PolyPower { get; init; } = 0.9;

    /// <summary>SGD momentum (DeepLab's solver: 0.9; unlike the CAM reference there is no positional-argument slip here).</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>Weight decay on weights (biases get none, DeepLab's decay_mult 0) (DeepLab: 5e-4).</summary>
    public double WeightDecay { get; init; } = 5e-4;

    /// <summary>
    /// Learning-rate multiplier of the head (DeepLab: fc8 at 10×, its bias at 20×; trunk biases at 2×). Our fc6/fc7
    /// start from scratch (the ImageNet files carry no converted fc layers), so the whole head is in the 10× group.
    /// </summary>
    public double HeadLrMultiplier { get; init; } = 10.0;

    /// <summary>Dropout after fc6 and fc7 of LargeFOV, and in the small head (DeepLab-v1: 0.5). ResNet-38's head has none (its trunk has b6/b7 dropout).</summary>
    public double HeadDropout { get; init; } = 0.5;

    /// <summary>
    /// Dilation of the head's 3×3 convolutions; null = the reference value of the trunk: 12 for LargeFOV's fc6 and
    /// for ResNet-38's two 3×3 head convs (PSA/SEAM's DeepLab-ResNet38), 4 for the small trunk (its crops are ~128 px,
    /// a 16×16 logit grid, where dilation 12 would read mostly padding).
    /// </summary>
    public int? HeadDilation { get; init; }

    /// <summary>Where the cross-entropy is taken (default DeepLab's stride-8 label shrink).</summary>
    public SegLossGrid LossGrid { get; init; } = SegLossGrid.Features;

    /// <summary>
    /// Freeze the trunk's first stages and every BatchNorm when it starts from trained weights (PSA/SEAM convention).
    /// Null (the default) is "auto": frozen when those weights come from ImageNet, loaded directly or through the CAM
    /// network's trunk (<see cref="TrunkFromCam"/>) when that one started from ImageNet; a CAM trunk trained from
    /// scratch stays trainable. True freezes any trained start (ImageNet or CAM); false never freezes.
    /// </summary>
    public bool? FreezePretrained { get; init; }

    /// <summary>
    /// Whether the trunk is frozen: <paramref name="trained"/> says it starts from trained weights (ImageNet or a CAM
    /// network's trunk), <paramref name="fromImageNet"/> that those weights trace back to ImageNet.
    /// </summary>
    public bool FreezesTrunk(bool trained, bool fromImageNet) => trained && (FreezePretrained ?? fromImageNet);

    /// <summary>
    /// Training augmentation: random scale as a random longest edge (VOC images have a ~500 px long edge, so
    /// [250, 750] is DeepLab's scale range 0.5–1.5), flip, colour jitter (0.3, 0.3, 0.3, 0.1), crop padded with
    /// the mean and with ignore for the labels. Its crop size is replaced by <see cref="Crop"/>.
    /// </summary>
    public AugmentOptions Augment { get; init; } = new() { LongEdgeMin = 250, LongEdgeMax = 750, CropSize = 321 };

    /// <summary>Inference scales; softmax probabilities are averaged over scales (and flips) at image size.</summary>
    public IReadOnlyList<double> Scales { get; init; } = new[] { 0.5, 0.75, 1.0, 1.25, 1.5 };

    /// <summary>Also average the mirrored image's prediction at inference.</summary>
    public bool Flip { get; init; } = true;

    /// <summary>Dense CRF on the averaged probabilities at inference (docs/METHOD.md §5 "optionally + CRF"); needs a CRF delegate.</summary>
    public bool Crf { get; init; }

    /// <summary>The pipeline stage also labels the training split with the trained network and scores it (costs one more inference pass).</summary>
    public bool ScoreTrain { get; init; }

    public int Seed { get; init; }

    /// <summary>Save a checkpoint every this many steps (and at the end).</summary>
    public int CheckpointEvery { get; init; } = 500;

    /// <summary>Intra-op threads for LibTorch (0: leave the default).</summary>
    public int Threads { get; init; }

    /// <summary>Stop after this many steps in this invocation (tests and resume checks; 0 = run to the end).</summary>
    public int StopAfterSteps { get; init; }

    /// <summary>The trunk this experiment's segmentation network uses.</summary>
    public BackboneKind BackboneFor(ExperimentConfig config) => Backbone ?? config.Backbone;

    /// <summary>The ImageNet weights file of the segmentation trunk, or null.</summary>
    public string? WeightsFor(ExperimentConfig config) =>
        Weights ?? (Backbone is null || Backbone == config.Backbone ? config.Weights : null);

    /// <summary>Throws <see cref="BadInputException"/> naming the first out-of-range option.</summary>
    public void Validate()
    {
        static void Check(bool ok, string key, string problem)
        {
            if (!ok) throw new BadInputException($"seg.{key}", problem);
        }
        Check(Classes >= 2, "classes", $"{Classes} classes; need at least 2");
        Check(Epochs >= 1, "epochs", $"{Epochs} epochs; need at least 1");
        Check(BatchSize >= 1, "batchSize", $"batch {BatchSize}; need at least 1");
        Check(Crop >= 16, "crop", $"crop {Crop} px; need at least 16");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), "learningRate", $"learning rate {LearningRate} must be > 0");
        Check(HeadDropout is >= 0 and < 1, "headDropout", $"dropout {HeadDropout} is not in [0, 1)");
        Check(HeadDilation is null or >= 1, "headDilation", $"dilation {HeadDilation} must be ≥ 1");
        Check(Scales.Count > 0 && Scales.All(s => s > 0 && double.IsFinite(s)), "scales", "need at least one scale, each > 0");
        try
        {
            Augment.Validate();
        }
        catch (ArgumentException e)
        {
            throw new BadInputException("seg.augment", e.Message);
        }
    }
}
