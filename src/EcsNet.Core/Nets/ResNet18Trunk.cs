using EcsNet.Data;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.Core.Nets;

/// <summary>Layout options of the <see cref="BackboneKind.ResNet18"/> trunk (the other trunks have fixed layouts).</summary>
public sealed record TrunkOptions
{
    /// <summary>
    /// Input size over feature size: 8 (layer3 and layer4 dilated by 2 and 4 instead of strided, as DeepLab and
    /// PSA do), 16 (layer4 dilated by 2) or 32 (torchvision's layout). 8 is what AffinityNet and the random walk
    /// need and what the other trunks give; 16 needs a third of 8's multiply-adds and gives 4× fewer CAM cells.
    /// </summary>
    public int OutputStride { get; init; } = 8;

    /// <summary>
    /// BasicBlocks in layer4: 2 as in torchvision's <c>resnet18</c> (the packaged network's third layer4 block is
    /// then not loaded), or 3 as in the packaged ImageNet network (CNTK's ResNet-18 has one more than
    /// torchvision's). 2 is the default: its features told foreground from background better on the VOC sample
    /// (docs/WEIGHTS.md), it is cheaper, and torchvision's resnet18 weights load into it as they are.
    /// </summary>
    public int Layer4Blocks { get; init; } = 2;

    /// <summary>Throws <see cref="BadInputException"/> naming the first out-of-range option.</summary>
    public void Validate()
    {
        if (OutputStride is not (8 or 16 or 32))
            throw new BadInputException("trunk.outputStride", $"must be 8, 16 or 32, got {OutputStride}");
        if (Layer4Blocks is not (2 or 3))
            throw new BadInputException("trunk.layer4Blocks", $"must be 2 (torchvision) or 3 (the packaged ImageNet network), got {Layer4Blocks}");
    }
}

/// <summary>
/// ResNet-18 (He et al., CVPR 2016) as a <see cref="Backbone"/>: torchvision's layout and parameter names
/// (<c>conv1</c>, <c>bn1</c>, <c>layer1</c>…<c>layer4</c> of <see cref="ResNet18.BasicBlock"/>s, no avgpool/fc), with
/// the output stride and the number of layer4 blocks of <see cref="TrunkOptions"/>. Where strides become
/// dilations, the first block of the stage keeps the previous dilation in its first conv, as torchvision's
/// <c>replace_stride_with_dilation</c> does. ImageNet weights: <see cref="Weights.ResNet18Onnx"/> (docs/WEIGHTS.md).
/// <para>
/// Stage maps are the outputs of layer2 (128), layer3 (256) and layer4 (512), average-pooled to the final map's
/// size when they are finer (only for output stride 16 or 32), so that all three share one grid.
/// </para>
/// </summary>
public sealed class ResNet18Trunk : Backbone
{
    // Declaration order is registration order: the same parameter order as torchvision.
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly MaxPool2d maxpool;
    private readonly Sequential layer1, layer2, layer3, layer4;
    private readonly int layer2Stride, layer3Stride;

    public ResNet18Trunk(TrunkOptions? options = null) : base(nameof(ResNet18Trunk))
    {
        Options = options ?? new TrunkOptions();
        Options.Validate();
        bool dilate3 = Options.OutputStride == 8, dilate4 = Options.OutputStride <= 16;
        conv1 = Conv2d(3, 64, kernel_size: 7, stride: 2, padding: 3, bias: false);
        bn1 = BatchNorm2d(64);
        relu = ReLU(inplace: true);
        maxpool = MaxPool2d(kernel_size: 3, stride: 2, padding: 1);
        layer1 = Stage(64, 64, 2, stride: 1, previousDilation: 1, dilation: 1);
        layer2 = Stage(64, 128, 2, stride: 2, previousDilation: 1, dilation: 1);
        layer3 = dilate3 ? Stage(128, 256, 2, stride: 1, previousDilation: 1, dilation: 2)
                         : Stage(128, 256, 2, stride: 2, previousDilation: 1, dilation: 1);
        int d3 = dilate3 ? 2 : 1;
        layer4 = dilate4 ? Stage(256, 512, Options.Layer4Blocks, stride: 1, previousDilation: d3, dilation: 2 * d3)
                         : Stage(256, 512, Options.Layer4Blocks, stride: 2, previousDilation: 1, dilation: 1);
        layer2Stride = 8;
        layer3Stride = dilate3 ? 8 : 16;
        RegisterComponents();
        ResNet18.InitLikeTorchvision(this);
    }

    public TrunkOptions Options { get; }

    public override BackboneKind Kind => BackboneKind.ResNet18;

    public override int OutChannels => 512;

    public override int OutputStride => Options.OutputStride;

    /// <summary>layer2, layer3 and layer4 outputs.</summary>
    public override IReadOnlyList<int> StageChannels { get; } = new[] { 128, 256, 512 };

    /// <summary>The stem and layer1 stay frozen with pretrained weights (as PSA freezes ResNet-38's first stages).</summary>
    public override IReadOnlyList<string> FrozenPrefixes { get; } = new[] { "conv1.", "bn1.", "layer1." };

    public override BackboneFeatures ForwardFeatures(Tensor input)
    {
        // call() (not forward()) runs the layers' forward hooks (data-parallel gradient overlap).
        var x = maxpool.call(relu.call(bn1.call(conv1.call(input))));
        x = layer1.call(x);
        var s2 = layer2.call(x);
        var s3 = layer3.call(s2);
        var s4 = layer4.call(s3);
        return new BackboneFeatures(s4, new[] { Pool(s2, layer2Stride), Pool(s3, layer3Stride), s4 });
    }

    private Tensor Pool(Tensor stage, int stride) =>
        stride == OutputStride ? stage
            : functional.avg_pool2d(stage, OutputStride / stride, OutputStride / stride, ceil_mode: true);

    // Blocks named "0", "1", … like torchvision's nn.Sequential. Block 0 carries the stride (or, when dilated,
    // the previous dilation in its first conv); the others use the stage's dilation throughout.
    private static Sequential Stage(int cin, int cout, int blocks, int stride, int previousDilation, int dilation)
    {
        var list = new List<(string, Module<Tensor, Tensor>)>
        {
            ("0", new ResNet18.BasicBlock(cin, cout, stride, previousDilation, dilation)),
        };
        for (int i = 1; i < blocks; i++)
            list.Add((i.ToString(), new ResNet18.BasicBlock(cout, cout, 1, dilation, dilation)));
        return Sequential(list);
    }
}
