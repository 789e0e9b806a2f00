using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace EcsNet.Core.Nets;

/// <summary>What one pass of F (or F') produces.</summary>
/// <param name="Heatmap">H (or H' with the overlay), [B, C, h, w].</param>
/// <param name="Refined">E, [B, 1 + C, h, w]: channel 0 is background, 1..C the classes.</param>
public sealed record EcsPass(Tensor Heatmap, Tensor Refined);

/// <summary>
/// ECS-Net (Erasing-Correct-Supervise network; paper §3, Fig. 2–3). One set of weights serves both F (the
/// β-rescaled image) and F' (the erased full-size image):
/// trunk → classifier B (3×3 conv, no bias) → H → GAP → o_cam; refine module → E → GAP → o_pro.
/// In F' the multi-dilated overlay adds K dilated convolutions that reuse B's weight tensor (Eq 8).
/// </summary>
public sealed class EcsNetModel : Module<Tensor, Tensor>
{
    private readonly Backbone trunk;
    private readonly Conv2d classifier;        // B
    private readonly Conv2d? projMid, projLate, pcmFeatures;   // PCM projections (SEAM f8_3, f8_4, f9)
    private readonly Conv2d? gate, gateHead;                   // gate variant
    private readonly EcsNetOptions options;
    private readonly Generator dropoutGenerator = new Generator(0);
    private long dropoutStart, dropoutBatch;
    private Tensor? classifierInput;

    public EcsNetModel(Backbone trunk, EcsNetOptions options) : base(nameof(EcsNetModel))
    {
        this.trunk = trunk;
        this.options = options;
        classifier = Conv2d(trunk.OutChannels, options.Classes, 3, padding: 1, bias: false);
        if (options.Refine == RefineKind.Pcm)
        {
            int mid = 64, late = 128;
            projMid = Conv2d(trunk.StageChannels[0], mid, 1, bias: false);
            projLate = Conv2d(trunk.StageChannels[1], late, 1, bias: false);
            pcmFeatures = Conv2d(mid + late + 3, mid + late, 1, bias: false);
        }
        else
        {
            gate = Conv2d(trunk.OutChannels, 1, 1);
            gateHead = Conv2d(trunk.OutChannels, options.Classes + 1, 1, bias: false);
        }
        RegisterComponents();
        init.kaiming_normal_(classifier.weight);
        // The tensor B actually received (after any forward pre-hook, e.g. DistributedDataParallel's readiness probe):
        // the overlay convolutions of Eq 8 read the same tensor, so every use of B's weight sits behind
        // that probe and its gradient is final when the probe fires.
        classifier.register_forward_hook((_, input, output) =>
        {
            classifierInput = input;
            return output;
        });
    }

    public Backbone Trunk => trunk;

    /// <summary>
    /// Seeds the head dropout (trainers call it every step with a value derived from seed and step). A
    /// data-parallel rank passes where its shard starts in the global batch and the global batch size: the
    /// masks are then drawn for the whole global batch and the shard's rows taken, so every image gets the
    /// mask it would get in single-process training.
    /// </summary>
    public void SeedDropout(long seed, long shardStart = 0, long globalBatch = 0)
    {
        dropoutGenerator.manual_seed(seed);
        dropoutStart = shardStart;
        dropoutBatch = globalBatch;
    }

    public EcsNetOptions Options => options;

    /// <summary>The classifier B's weight: the one parameter the overlay convolutions share (Eq 8).</summary>
    public Parameter ClassifierWeight => classifier.weight!;

    /// <summary>Parameters of the layers ECS-Net adds on top of the trunk (the 10× learning-rate group).</summary>
    public IEnumerable<(string Name, Parameter Param)> NewLayerParameters() =>
        named_parameters().Where(p => !p.name.StartsWith("trunk.", StringComparison.Ordinal));

    /// <summary>Trunk parameters (the 1× learning-rate group).</summary>
    public IEnumerable<(string Name, Parameter Param)> TrunkParameters() =>
        named_parameters().Where(p => p.name.StartsWith("trunk.", StringComparison.Ordinal));

    /// <summary>The CAM H of an image (inference path): no overlay.</summary>
    public override Tensor forward(Tensor image) => Pass(image, overlay: false).Heatmap;

    /// <summary>Labels [B, C] of the batch being passed, or null (inference): PCM zeroes absent classes (Eq 1's w_c).</summary>
    private Tensor? passLabels;

    /// <summary>One pass of F (overlay false) or F' (overlay true, when enabled in the options).</summary>
    public EcsPass Pass(Tensor image, bool overlay, Tensor? labels = null)
    {
        passLabels = labels;
        var features = trunk.ForwardFeatures(image);
        var x = features.Final;
        if (options.HeadDropout > 0 && training)
        {
            // Channel dropout (Dropout2d) drawn from the model's own generator, so a step's randomness depends
            // only on (seed, step), whatever else in the process draws random numbers.
            long rows = x.shape[0];
            bool shard = dropoutBatch > 0 && (dropoutStart != 0 || dropoutBatch != rows);
            if (shard && dropoutStart + rows > dropoutBatch)
                throw new InvalidOperationException($"shard [{dropoutStart}, {dropoutStart + rows}) does not fit the global batch of {dropoutBatch}");
            // drawn where the generator lives (the CPU), so a CUDA replica gets the same masks as a CPU one
            var draw = rand(new long[] { shard ? dropoutBatch : rows, x.shape[1], 1, 1 }, generator: dropoutGenerator).to(x.device);
            if (shard)
                draw = draw.narrow(0, dropoutStart, rows);
            var keep = (draw >= options.HeadDropout).to_type(x.dtype);
            x = x * keep / (1 - options.HeadDropout);
        }
        classifierInput = null;
        var h = classifier.call(x);
        if (overlay && options.Overlay && options.OverlayRates.Count > 0)
        {
            // Eq 8: H' = ½ H'_0 + 1/(2K) Σ_k H'_k, H'_k = B's weights applied with dilation r_k.
            var xb = classifierInput ?? x;
            Tensor sum = zeros_like(h);
            foreach (var rate in options.OverlayRates)
                sum = sum + F.conv2d(xb, classifier.weight!, padding: new long[] { rate, rate }, dilation: new long[] { rate, rate });
            h = 0.5 * h + sum / (2.0 * options.OverlayRates.Count);
        }
        classifierInput = null;
        var e = options.Refine == RefineKind.Pcm ? Pcm(h, features, image) : Gate(x);
        return new EcsPass(h, e);
    }

    /// <summary>
    /// SEAM's pixel correlation module: E = CAM re-projected through cosine affinities of projected mid-level
    /// features (plus the downsampled image). By default the CAM and trunk features are detached so Eq 6
    /// trains only these projections (<see cref="EcsNetOptions.CeIntoTrunk"/>).
    /// </summary>
    private Tensor Pcm(Tensor heatmap, BackboneFeatures features, Tensor image)
    {
        long b = heatmap.shape[0], hh = heatmap.shape[2], ww = heatmap.shape[3];
        var cam = F.relu(heatmap);
        cam = cam / (cam.flatten(2).amax(new long[] { 2 }, keepdim: true).unsqueeze(-1) + 1e-5);
        if (passLabels is not null)
            cam = cam * passLabels.to_type(cam.dtype).unsqueeze(-1).unsqueeze(-1);
        var bg = 1 - cam.amax(new long[] { 1 }, keepdim: true);
        var camAll = cat(new[] { bg, cam }, 1);
        Tensor mid = features.Stages[0], late = features.Stages[1];
        if (!options.CeIntoTrunk)
        {
            camAll = camAll.detach();
            mid = mid.detach();
            late = late.detach();
        }
        var small = F.interpolate(image, new long[] { hh, ww }, mode: InterpolationMode.Bilinear, align_corners: true);
        var f = cat(new[] { projMid!.call(mid), projLate!.call(late), small }, 1);
        f = pcmFeatures!.call(f).flatten(2);                                   // [B, D, N]
        f = f / (f.pow(2).sum(1, keepdim: true).sqrt() + 1e-5);
        var aff = F.relu(matmul(f.transpose(1, 2), f));                           // [B, N, N]
        aff = aff / (aff.sum(1, keepdim: true) + 1e-5);
        return matmul(camAll.flatten(2), aff).view(b, -1, hh, ww);
    }

    /// <summary>A learned spatial gate σ(g(x)) on a 1×1 class head (background channel first).</summary>
    private Tensor Gate(Tensor x) => functional.sigmoid(gate!.call(x)) * gateHead!.call(x);
}
