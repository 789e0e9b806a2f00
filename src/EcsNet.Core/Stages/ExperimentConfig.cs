using EcsNet.Core.Inference;
using EcsNet.Core.Nets;
using EcsNet.Core.Training;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Crf;
using EcsNet.Labels.Propagation;

namespace EcsNet.Core.Stages;

/// <summary>
/// One experiment: every stage's options with the paper's defaults (irn's "options grouped by stage").
/// Loaded from a YAML or JSON experiment file (camelCase keys, e.g. <c>cam: { beta: 0.5 }</c>); CLI options
/// override it.
/// </summary>
public sealed record ExperimentConfig
{
    /// <summary>Trunk of the CAM network (docs/METHOD.md §1: ResNet-38 for the paper's numbers).</summary>
    public BackboneKind Backbone { get; init; } = BackboneKind.ResNet38;

    /// <summary>
    /// ImageNet weights supplied by the user (PyTorch state dict or safetensors); null = the trunk's packaged
    /// weights when <see cref="Pretrained"/> and it has some (ResNet-18), otherwise from scratch.
    /// </summary>
    public string? Weights { get; init; }

    /// <summary>
    /// Without <see cref="Weights"/>, start a ResNet-18 trunk from the ImageNet weights that install with the build
    /// (docs/WEIGHTS.md); false (<c>--no-pretrained</c>) trains it from scratch. The other trunks have no packaged
    /// weights and ignore it.
    /// </summary>
    public bool Pretrained { get; init; } = true;

    /// <summary>Layout of a ResNet-18 trunk: output stride and layer4 depth (docs/WEIGHTS.md).</summary>
    public TrunkOptions Trunk { get; init; } = new();

    /// <summary>ECS-Net network and ablation switches (docs/METHOD.md §1).</summary>
    public EcsNetOptions Cam { get; init; } = new();

    /// <summary>CAM training schedule (docs/METHOD.md §1).</summary>
    public CamTrainingOptions CamTraining { get; init; } = new();

    /// <summary>Training augmentation (docs/METHOD.md §1).</summary>
    public AugmentOptions Augment { get; init; } = new();

    /// <summary>Multi-scale CAM inference (docs/METHOD.md §2).</summary>
    public CamInferenceOptions CamInference { get; init; } = new();

    /// <summary>Dense CRF (docs/METHOD.md §3; PSA's crf_inference defaults).</summary>
    public DenseCrfOptions Crf { get; init; } = new();

    /// <summary>la/ha affinity labels (docs/METHOD.md §2; PSA's α 4 / 32).</summary>
    public AffinityLabelOptions AffinityLabels { get; init; } = new();

    /// <summary>AffinityNet training (docs/METHOD.md §4; PSA train_aff.py).</summary>
    public AffinityNetOptions Affinity { get; init; } = new();

    /// <summary>
    /// Start AffinityNet's trunk from the trained CAM network's trunk when no ImageNet weights are given (the CPU
    /// default: a from-scratch trunk learns little from a few hundred images). PSA starts it from ImageNet.
    /// </summary>
    public bool AffinityTrunkFromCam { get; init; } = false;

    /// <summary>Random walk (docs/METHOD.md §4; PSA infer_aff.py).</summary>
    public RandomWalkOptions RandomWalk { get; init; } = new();

    /// <summary>Constant background score for CAM pseudo labels (docs/METHOD.md §2: PSA 0.2).</summary>
    public double BackgroundThreshold { get; init; } = 0.2;

    /// <summary>Segmentation network trained on the pseudo labels (docs/METHOD.md §5: DeepLab, 321 crops, lr 0.001 poly, batch 10, 20 epochs).</summary>
    public SegOptions Seg { get; init; } = new();

    /// <summary>
    /// How overlay PNGs are drawn (size, legend): for people only, so no stage's outputs depend on it and a change
    /// recomputes nothing.
    /// </summary>
    public OverlayOptions Overlays { get; init; } = new();

    /// <summary>The plain CAM baseline (paper Table 4, first row) with the other options of <paramref name="cam"/>.</summary>
    public static EcsNetOptions CamBaselineOf(EcsNetOptions cam) =>
        cam with { Method = CamMethod.Cam, UseCe = false, Overlay = false, Beta = 1.0, RefineClassification = false };

    /// <summary>
    /// The embedded default for this CPU: small trunk, 128-px crops of the synthetic set, momentum SGD
    /// (a from-scratch trunk needs it). Its small trunk starts from scratch, so nothing is frozen; with
    /// <c>backbone: resNet18</c> and its ImageNet weights the trunk's first stages and every BatchNorm are frozen
    /// (<c>freezePretrained</c> left at auto). See docs/RESULTS.md for the measured runs.
    /// </summary>
    public static ExperimentConfig SmallCpu { get; } = new()
    {
        Backbone = BackboneKind.Small,
        // The best ECS-Net variant measured on the synthetic set (docs/RESULTS.md, row r11): β and the overlay
        // rates are tied to 448-px crops, so at 128 px they stay off; Eq 6 trains the first CAM directly from
        // half-way through training, with a confident-background counter-weight.
        Cam = new EcsNetOptions
        {
            HeadDropout = 0, Beta = 1, Overlay = false, CeOn = CeTarget.Cam, RefineLogitScale = 10,
            BackgroundCeThreshold = 0.1, CeStartStep = 120, CeWeight = 0.3,
        },
        CamTraining = new CamTrainingOptions
        {
            Crop = 128, BatchSize = 8, Epochs = 8, LearningRate = 0.05, WarmupSteps = 20,
            WarmupLearningRate = 0.01, Momentum = 0.9, CheckpointEvery = 50,
        },
        Augment = new AugmentOptions { LongEdgeMin = 112, LongEdgeMax = 160, CropSize = 128 },
        Affinity = new AffinityNetOptions { CropSize = 128, BatchSize = 8, Epochs = 6 },
        AffinityTrunkFromCam = true,
        // PSA's CRF kernels are sized for ~500-px photos; at 128 px the spatial σ shrink with the image
        // (80 → 20, 3 → 1), else the bilateral kernel spans the whole image (docs/RESULTS.md, CRF sweep).
        Crf = new DenseCrfOptions { BilateralSxy = 20, GaussianSxy = 1 },
        // So does the walk's length: a walk of t steps of radius r spreads about r·√t cells, and PSA's t = 256 is
        // for ~500-px images (a ~63×47 grid at stride 8). Our 128-px images give a 4× smaller grid, so t shrinks
        // 16× to 16 (logT 4); t = 256 spreads each CAM over the whole 16×16 grid (docs/RESULTS.md, "Random walk").
        RandomWalk = new RandomWalkOptions { LogT = 4 },
        // One inference scale: PSA's 0.5 and 1.5–2 are for ~500-px photos; on 100–160-px images the 0.5 scale gives
        // the stride-8 trunk a CAM of 6–10 cells. Measured (docs/RESULTS.md, "What the small trunk's CAM lacks on
        // marks" and the demo): as good on the demo's family, better on the other, better labels at every later stage.
        CamInference = new CamInferenceOptions { Scales = new[] { 1.0 } },
        // The best constant on the 96-px ablation set (docs/RESULTS.md, rows r11/r13), not on the demo set.
        BackgroundThreshold = 0.1,
        // No ImageNet trunk on this CPU: the segmentation trunk starts from the CAM network's (trained with
        // image labels only on the same images), with a larger lr than DeepLab's fine-tuning rate, a smaller head
        // dilation (SegOptions.HeadDilation's default for the small trunk) and the loss on the crop's grid.
        // Measured on the 240/60 synthetic set with ground-truth masks as labels (docs/SEG.md): 6 epochs from
        // scratch 27.4 % val mIoU, 12 epochs 39.3 %, 12 epochs from the CAM trunk 50.3 %.
        Seg = new SegOptions
        {
            Crop = 112, BatchSize = 8, Epochs = 12, LearningRate = 0.01, HeadDropout = 0.1,
            LossGrid = SegLossGrid.Image, CheckpointEvery = 50, Scales = new[] { 0.75, 1.0, 1.25 }, TrunkFromCam = true,
            Augment = new AugmentOptions { LongEdgeMin = 96, LongEdgeMax = 160, CropSize = 112 },
        },
    };
    /// <summary>
    /// <see cref="SmallCpu"/> with the ImageNet ResNet-18 that installs with the build (docs/WEIGHTS.md): frozen
    /// BatchNorm and first stages (<c>freezePretrained</c> at auto), a CAM learning rate five times lower, as
    /// fine-tuning a pretrained trunk wants (docs/RESULTS.md, "ImageNet ResNet-18 trunk on the CAM stage"), and
    /// PSA's background score 0.2: the pretrained CAMs are not under-confident the way the small trunk's are (the
    /// sweep's best lies at 0.2–0.35 for every pretrained row there). Better labels at every stage and about three
    /// times the small trunk's time on a 2-core CPU (docs/RESULTS.md, "The demo with the pretrained ResNet-18 trunk").
    /// </summary>
    public static ExperimentConfig PretrainedCpu { get; } = SmallCpu with
    {
        Backbone = BackboneKind.ResNet18,
        CamTraining = SmallCpu.CamTraining with { LearningRate = 0.01, WarmupLearningRate = 0.002 },
        // PSA's four inference scales, with which every pretrained row of docs/RESULTS.md was measured
        CamInference = new CamInferenceOptions(),
        BackgroundThreshold = 0.2,
    };

    /// <summary>The built-in experiment a preset names; an experiment file and <c>--set</c> apply on top of it.</summary>
    public static ExperimentConfig For(ExperimentPreset preset) => preset switch
    {
        ExperimentPreset.Small => SmallCpu,
        ExperimentPreset.Quality => PretrainedCpu,
        _ => throw new BadInputException("--preset", $"unknown preset '{preset}'; the presets are small and quality"),
    };

    /// <summary>
    /// The ImageNet weights a trunk of <paramref name="kind"/> starts from: <paramref name="file"/> when given, else
    /// the packaged ResNet-18 (named by package and version) when <see cref="Pretrained"/>, else null.
    /// </summary>
    public string? ImageNetWeights(BackboneKind kind, string? file) =>
        file ?? (kind == BackboneKind.ResNet18 && Pretrained ? $"{ResNet18Onnx.PackageId} {ResNet18Onnx.PackageVersion}" : null);

    /// <summary>
    /// A trunk's identity in a stage's fingerprint: the kind, plus the layout for ResNet-18 (the only trunk that has
    /// one), so that fingerprints of the other trunks stay what they were.
    /// </summary>
    public object TrunkFingerprint(BackboneKind kind) =>
        kind == BackboneKind.ResNet18 ? new { Kind = kind, Trunk.OutputStride, Trunk.Layer4Blocks } : kind;

    /// <summary>
    /// Checks every stage's options before anything runs; the error's subject is the experiment key at fault
    /// (e.g. <c>camTraining.momentum</c>, or <c>crf</c> with the option named in the problem).
    /// </summary>
    public void Validate()
    {
        static void Check(string key, Action validate)
        {
            try
            {
                validate();
            }
            catch (BadInputException e) when (!e.Subject.StartsWith(key, StringComparison.Ordinal))
            {
                throw new BadInputException(key, e.Problem, e);
            }
            catch (ArgumentException e)
            {
                // Options records of the data layer (AugmentOptions) report a bad value as an argument error.
                throw new BadInputException(key, e.Message, e);
            }
        }
        Check("trunk", Trunk.Validate);
        Check("cam", Cam.Validate);
        Check("camTraining", CamTraining.Validate);
        Check("augment", Augment.Validate);
        Check("crf", Crf.Validate);
        Check("affinityLabels", AffinityLabels.Validate);
        Check("affinity", Affinity.Validate);
        Check("randomWalk", RandomWalk.Validate);
        Check("seg", Seg.Validate);
        Check("overlays", Overlays.Validate);
        if (!(BackgroundThreshold is > 0 and < 1))
            throw new BadInputException("backgroundThreshold", $"must lie in (0, 1), got {BackgroundThreshold}");
    }
}

/// <summary>The built-in experiments a run starts from (<c>--preset</c>; docs/EXPERIMENTS.md).</summary>
public enum ExperimentPreset
{
    /// <summary><see cref="ExperimentConfig.SmallCpu"/>: the small trunk from scratch, the README's demo in minutes.</summary>
    Small,

    /// <summary><see cref="ExperimentConfig.PretrainedCpu"/>: the ImageNet ResNet-18, better labels at about three times the time.</summary>
    Quality,
}
