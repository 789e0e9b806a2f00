namespace EcsNet.Core.Nets;

/// <summary>CAM network variant: plain CAM (the baseline of paper Table 4) or ECS-Net.</summary>
public enum CamMethod
{
    Cam,
    Ecs,
}

/// <summary>Refine module E (paper §3.2 "spatial attention"; the paper leaves its form open, docs/METHOD.md §1).</summary>
public enum RefineKind
{
    /// <summary>SEAM's pixel correlation module: the CAM re-projected through feature affinities.</summary>
    Pcm,

    /// <summary>A learned spatial gate on the features multiplying a 1×1 class head.</summary>
    Gate,
}

/// <summary>Which heatmap of F' gives the segment labels L' (paper Table 3).</summary>
public enum LabelSource
{
    /// <summary>H' (the paper's choice).</summary>
    Heatmap,

    /// <summary>E', the refine output of F'.</summary>
    Refine,
}

/// <summary>Which map of F the cross-entropy of Eq 6 trains.</summary>
public enum CeTarget
{
    /// <summary>softmax(E), E the refine module's output (the paper's Eq 6).</summary>
    Refine,

    /// <summary>
    /// softmax over [background score, a_1..a_C] with a the label-weighted, min-max normalised CAM of F (Eq 1,
    /// not detached): the erased image's reliable labels supervise the first CAM directly.
    /// </summary>
    Cam,
}

/// <summary>Which map CAM inference reads (the final maps).</summary>
public enum InferenceMap
{
    /// <summary>H from classifier B.</summary>
    Cam,

    /// <summary>E from the refine module.</summary>
    Refine,
}

/// <summary>
/// Every knob of the CAM network (docs/METHOD.md §1), defaults from the paper (§3, §4.2, Tables 1–4). Each switch of
/// the paper's ablation rows is here: <see cref="Method"/> (CAM baseline), <see cref="UseCe"/> (erasing
/// without CE), <see cref="Beta"/>, <see cref="Overlay"/>, <see cref="Labels"/>, <see cref="Theta"/>.
/// </summary>
public sealed record EcsNetOptions
{
    public CamMethod Method { get; init; } = CamMethod.Ecs;

    /// <summary>Foreground classes C (VOC: 20).</summary>
    public int Classes { get; init; } = 20;

    /// <summary>β: F sees the crop rescaled by β, F' sees it full size (Table 1 best: 0.5).</summary>
    public double Beta { get; init; } = 0.5;

    /// <summary>δ: erased region R = {s > δ} (paper §3.1: 0.6).</summary>
    public double Delta { get; init; } = 0.6;

    /// <summary>θ: reliable labels need s' > θ (Table 2 best: 0.8).</summary>
    public double Theta { get; init; } = 0.8;

    /// <summary>Multi-dilated overlay in F' (Eq 8), sharing B's weights.</summary>
    public bool Overlay { get; init; } = true;

    /// <summary>Dilation rates of the overlay convolutions (K = 3; paper Fig. 3).</summary>
    public IReadOnlyList<int> OverlayRates { get; init; } = new[] { 5, 7, 12 };

    /// <summary>Train with the reliable-label cross-entropy of Eq 6 (Table 4 "+CE").</summary>
    public bool UseCe { get; init; } = true;

    /// <summary>Add the refine branch's classification terms o_pro, o'_pro of Eq 5.</summary>
    public bool RefineClassification { get; init; } = true;

    /// <summary>Source of L' (Table 3: H' beats E').</summary>
    public LabelSource Labels { get; init; } = LabelSource.Heatmap;

    public RefineKind Refine { get; init; } = RefineKind.Pcm;

    /// <summary>
    /// Multiplier on E before the softmax of Eq 6. PCM outputs lie in [0, 1], so softmax(E) is nearly flat
    /// at scale 1 (the literal paper reading); a larger scale sharpens it. Documented in docs/RESULTS.md.
    /// </summary>
    public double RefineLogitScale { get; init; } = 1.0;

    /// <summary>Map of F that Eq 6 trains (paper: E).</summary>
    public CeTarget CeOn { get; init; } = CeTarget.Refine;

    /// <summary>
    /// Let Eq 6 back-propagate into B and the trunk. False follows SEAM's PCM, which detaches the CAM and the
    /// features it reads, so the CE trains only the refine module's projections.
    /// </summary>
    public bool CeIntoTrunk { get; init; } = false;

    /// <summary>
    /// Counter-weight for Eq 6: also supervise confident background (s &lt; this in F and s' &lt; this in F')
    /// as class 0. 0 disables it (the paper's Φ holds no background).
    /// </summary>
    public double BackgroundCeThreshold { get; init; } = 0.0;

    /// <summary>Weight of L_ce in Eq 7 (paper: 1).</summary>
    public double CeWeight { get; init; } = 1.0;

    /// <summary>Steps before Eq 6 is switched on (0: from the start).</summary>
    public int CeStartStep { get; init; } = 0;

    /// <summary>Background score used in the argmax of Eq 3 (PSA's CAM threshold, 0.2).</summary>
    public double LabelBackgroundScore { get; init; } = 0.2;

    /// <summary>Gaussian blur σ for erasing as a fraction of the crop side (448 → σ 8 px). Kernel = 2⌈3σ⌉+1.</summary>
    public double BlurSigmaFraction { get; init; } = 8.0 / 448.0;

    /// <summary>Dropout before classifier B in training (PSA/SEAM's dropout7 on ResNet-38: 0.5).</summary>
    public double HeadDropout { get; init; } = 0.5;

    /// <summary>Map read by CAM inference.</summary>
    public InferenceMap Inference { get; init; } = InferenceMap.Cam;

    /// <summary>Rejects values no run can use, naming the option.</summary>
    public void Validate()
    {
        static void Need(bool ok, string key, string what)
        {
            if (!ok) throw new EcsNet.Data.BadInputException($"cam.{key}", what);
        }
        Need(Classes >= 1, "classes", $"must be at least 1, got {Classes}");
        Need(Beta is > 0 and <= 1, "beta", $"must lie in (0, 1], got {Beta}");
        Need(Delta is > 0 and < 1, "delta", $"must lie in (0, 1), got {Delta}");
        Need(Theta is > 0 and < 1, "theta", $"must lie in (0, 1), got {Theta}");
        Need(OverlayRates.All(r => r >= 1), "overlayRates", "every rate must be at least 1");
        Need(HeadDropout is >= 0 and < 1, "headDropout", $"must lie in [0, 1), got {HeadDropout}");
        Need(CeWeight >= 0, "ceWeight", $"must not be negative, got {CeWeight}");
        Need(RefineLogitScale > 0, "refineLogitScale", $"must be positive, got {RefineLogitScale}");
    }
}
