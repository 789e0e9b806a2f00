using EcsNet.Core.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace EcsNet.Core.Nets;

/// <summary>
/// The segmentation network of docs/METHOD.md §5: a stride-8 trunk and a dilated head giving per-pixel class scores.
/// <list type="bullet">
/// <item>VGG16 → DeepLab-v1 LargeFOV (Chen et al., ICLR 2015; its <c>train.prototxt</c>): pool5a (3×3 average,
/// stride 1), fc6 = 3×3 conv dilation 12 → 1024, ReLU, dropout 0.5, fc7 = 1×1 → 1024, ReLU, dropout 0.5,
/// fc8 = 1×1 → 21.</item>
/// <item>ResNet-38 → the dilated head of PSA/SEAM's DeepLab-ResNet38 segmentation net: on the 4096-channel
/// map, <c>fc8_seg_conv1</c> = 3×3 conv dilation 12 → 512, ReLU, <c>fc8_seg_conv2</c> = 3×3 conv dilation 12 → 21
/// (Xavier-uniform weights).</item>
/// <item>ResNet-18 → the same two-conv dilated head on its 512 channels, 256 wide, dilation 12 at output stride 8
/// (96 / stride in general), plus dropout.</item>
/// <item>Small trunk → the same two-conv dilated head, narrower (128) and with dilation 4, plus dropout.</item>
/// </list>
/// Head layers are named as in the references, so converted reference weights load by name.
/// Dropout masks come from the model's own generator (<see cref="SeedDropout"/>): a training step's randomness
/// then depends only on (seed, step), whatever else in the process draws random numbers.
/// </summary>
public sealed class DeepLab : Module<Tensor, Tensor>
{
    private readonly Backbone trunk;
    private readonly Module<Tensor, Tensor> head;
    private readonly Generator dropoutGenerator = new Generator(0);

    public DeepLab(Backbone trunk, SegOptions options) : base(nameof(DeepLab))
    {
        this.trunk = trunk;
        Classes = options.Classes;
        head = trunk.Kind switch
        {
            BackboneKind.Vgg16 => new LargeFovHead(trunk.OutChannels, Classes, options.HeadDilation ?? 12, options.HeadDropout, dropoutGenerator),
            BackboneKind.ResNet38 => new DilatedHead(trunk.OutChannels, 512, Classes, options.HeadDilation ?? 12, 0, dropoutGenerator),
            // An ImageNet trunk at stride 8 (16): DeepLab's dilation 12 (6, the same field of view in pixels).
            BackboneKind.ResNet18 => new DilatedHead(trunk.OutChannels, 256, Classes, options.HeadDilation ?? 96 / trunk.OutputStride, options.HeadDropout, dropoutGenerator),
            _ => new DilatedHead(trunk.OutChannels, 128, Classes, options.HeadDilation ?? 4, options.HeadDropout, dropoutGenerator),
        };
        register_module("trunk", trunk);
        register_module("head", head);
    }

    public Backbone Trunk => trunk;

    public int Classes { get; }

    /// <summary>Ratio of input size to logit-grid size.</summary>
    public int OutputStride => trunk.OutputStride;

    /// <summary>Seeds the head dropout (the trainer calls it every step with a value derived from seed and step).</summary>
    public void SeedDropout(long seed) => dropoutGenerator.manual_seed(seed);

    /// <summary>Trunk parameters (the 1× learning-rate group).</summary>
    public IEnumerable<(string Name, Parameter Param)> TrunkParameters() =>
        named_parameters().Where(p => p.name.StartsWith("trunk.", StringComparison.Ordinal));

    /// <summary>Head parameters (the 10× learning-rate group).</summary>
    public IEnumerable<(string Name, Parameter Param)> HeadParameters() =>
        named_parameters().Where(p => !p.name.StartsWith("trunk.", StringComparison.Ordinal));

    /// <summary>Class scores on the trunk's grid, [B, Classes, ⌈H/s⌉, ⌈W/s⌉], s = <see cref="OutputStride"/> (8 but for a ResNet-18 built otherwise).</summary>
    public override Tensor forward(Tensor image) => head.forward(trunk.forward(image));

    /// <summary>Class scores upsampled bilinearly to the input's size, [B, Classes, H, W].</summary>
    public Tensor Dense(Tensor image) =>
        F.interpolate(forward(image), new long[] { image.shape[2], image.shape[3] }, mode: InterpolationMode.Bilinear, align_corners: false);

    /// <summary>Elementwise dropout (Caffe's Dropout layer, as LargeFOV uses) drawn from <paramref name="generator"/>.</summary>
    private static Tensor Drop(Tensor x, double p, bool training, Generator generator)
    {
        if (!training || p <= 0) return x;
        // drawn where the generator lives (the CPU), so a CUDA model gets the same masks as a CPU one
        var keep = (rand(x.shape, generator: generator).to(x.device) >= p).to_type(x.dtype);
        return x * keep / (1 - p);
    }

    /// <summary>DeepLab-v1 LargeFOV head: pool5a, fc6 (3×3, dilation 12, 1024), fc7 (1×1, 1024), fc8 (1×1, classes).</summary>
    private sealed class LargeFovHead : Module<Tensor, Tensor>
    {
        private readonly Conv2d fc6, fc7, fc8;
        private readonly double dropout;
        private readonly Generator generator;

        public LargeFovHead(int cin, int classes, int dilation, double dropout, Generator generator) : base(nameof(LargeFovHead))
        {
            this.dropout = dropout;
            this.generator = generator;
            fc6 = Conv2d(cin, 1024, 3, padding: dilation, dilation: dilation);
            fc7 = Conv2d(1024, 1024, 1);
            fc8 = Conv2d(1024, classes, 1);
            register_module("fc6", fc6);
            register_module("fc7", fc7);
            register_module("fc8", fc8);
            using var _ = no_grad();
            // fc6/fc7 start from scratch here (DeepLab initialised them from VGG16's subsampled fc layers);
            // fc8 is DeepLab's Gaussian σ 0.01 with zero bias.
            init.kaiming_normal_(fc6.weight!, nonlinearity: init.NonlinearityType.ReLU);
            init.kaiming_normal_(fc7.weight!, nonlinearity: init.NonlinearityType.ReLU);
            init.normal_(fc8.weight!, 0, 0.01);
            foreach (var c in new[] { fc6, fc7, fc8 })
                init.zeros_(c.bias!);
        }

        public override Tensor forward(Tensor x)
        {
            // pool5a: 3×3 average pooling with stride 1 and padding 1 (Caffe AVE counts the padding, as here).
            x = F.avg_pool2d(x, 3, stride: 1, padding: 1);
            x = Drop(F.relu(fc6.forward(x)), dropout, training, generator);
            x = Drop(F.relu(fc7.forward(x)), dropout, training, generator);
            return fc8.forward(x);
        }
    }

    /// <summary>Two dilated 3×3 convolutions (PSA/SEAM's ResNet-38 segmentation head), optional dropout between them.</summary>
    private sealed class DilatedHead : Module<Tensor, Tensor>
    {
        private readonly Conv2d conv1, conv2;
        private readonly double dropout;
        private readonly Generator generator;

        public DilatedHead(int cin, int mid, int classes, int dilation, double dropout, Generator generator) : base(nameof(DilatedHead))
        {
            this.dropout = dropout;
            this.generator = generator;
            conv1 = Conv2d(cin, mid, 3, padding: dilation, dilation: dilation);
            conv2 = Conv2d(mid, classes, 3, padding: dilation, dilation: dilation);
            register_module("fc8_seg_conv1", conv1);
            register_module("fc8_seg_conv2", conv2);
            using var _ = no_grad();
            init.xavier_uniform_(conv1.weight!);
            init.xavier_uniform_(conv2.weight!);
            init.zeros_(conv1.bias!);
            init.zeros_(conv2.bias!);
        }

        public override Tensor forward(Tensor x)
        {
            x = Drop(F.relu(conv1.forward(x)), dropout, training, generator);
            return conv2.forward(x);
        }
    }
}
