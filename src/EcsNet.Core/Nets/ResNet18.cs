using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.Core.Nets;

/// <summary>
/// The ResNet-18 trunk of He et al. 2016 laid out as torchvision's <c>resnet18</c> up to and including
/// <c>layer4</c> (avgpool and fc dropped): conv1 7×7/2 → BN → ReLU → maxpool 3×3/2 → four stages of two
/// <see cref="BasicBlock"/>s (64/128/256/512 channels, strides 1/2/2/2). Output stride 32: 3×224×224 → 512×7×7.
/// Field names match torchvision's, so parameters are named <c>conv1.weight</c>, <c>layer2.0.downsample.1.bias</c>
/// and so on, and a torchvision state dict loads once its <c>fc.*</c> entries are left out.
/// Initialised as torchvision does: convs kaiming_normal_ (fan_out, ReLU gain), BatchNorm γ = 1, β = 0.
/// </summary>
public sealed class ResNet18 : Module<Tensor, Tensor>
{
    /// <summary>Channels of the <c>layer4</c> output.</summary>
    public const int OutChannels = 512;

    /// <summary>Input size over feature size.</summary>
    public const int OutputStride = 32;

    // Declaration order is registration order: the same parameter order as torchvision.
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly ReLU relu;
    private readonly MaxPool2d maxpool;
    private readonly Sequential layer1, layer2, layer3, layer4;

    public ResNet18() : base(nameof(ResNet18))
    {
        conv1 = Conv2d(3, 64, kernel_size: 7, stride: 2, padding: 3, bias: false);
        bn1 = BatchNorm2d(64);
        relu = ReLU(inplace: true);
        maxpool = MaxPool2d(kernel_size: 3, stride: 2, padding: 1);
        layer1 = Stage(64, 64, stride: 1);
        layer2 = Stage(64, 128, stride: 2);
        layer3 = Stage(128, 256, stride: 2);
        layer4 = Stage(256, 512, stride: 2);
        RegisterComponents();
        InitLikeTorchvision(this);
    }

    public override Tensor forward(Tensor input)
    {
        var x = maxpool.forward(relu.forward(bn1.forward(conv1.forward(input))));
        x = layer1.forward(x);
        x = layer2.forward(x);
        x = layer3.forward(x);
        return layer4.forward(x);
    }

    /// <summary>torchvision's ResNet init: every conv kaiming_normal_(fan_out, relu), every BatchNorm γ = 1, β = 0.</summary>
    public static void InitLikeTorchvision(Module module)
    {
        using var _ = no_grad();
        foreach (var m in module.modules())
        {
            switch (m)
            {
                case Conv2d conv:
                    init.kaiming_normal_(conv.weight, mode: init.FanInOut.FanOut, nonlinearity: init.NonlinearityType.ReLU);
                    break;
                case BatchNorm2d bn:
                    init.constant_(bn.weight, 1.0);
                    init.constant_(bn.bias, 0.0);
                    break;
            }
        }
    }

    // Named "0", "1" like torchvision's nn.Sequential of blocks.
    private static Sequential Stage(int cin, int cout, int stride) => Sequential(
        ("0", new BasicBlock(cin, cout, stride)),
        ("1", new BasicBlock(cout, cout, 1)));

    /// <summary>
    /// torchvision's ResNet BasicBlock: 3×3 conv (stride s) → BN → ReLU → 3×3 conv → BN, plus the identity, or a
    /// 1×1/s conv + BN projection (<c>downsample</c>) when the shape changes; ReLU after the sum. The two 3×3 convs
    /// may be dilated (padding = dilation, so the size is kept), for trunks that trade strides for dilation
    /// (<see cref="ResNet18Trunk"/>).
    /// </summary>
    public sealed class BasicBlock : Module<Tensor, Tensor>
    {
        private readonly Conv2d conv1;
        private readonly BatchNorm2d bn1;
        private readonly ReLU relu;
        private readonly Conv2d conv2;
        private readonly BatchNorm2d bn2;
        private readonly Sequential? downsample;

        public BasicBlock(int cin, int cout, int stride, int dilation1 = 1, int dilation2 = 1) : base(nameof(BasicBlock))
        {
            conv1 = Conv2d(cin, cout, kernel_size: 3, stride: stride, padding: dilation1, dilation: dilation1, bias: false);
            bn1 = BatchNorm2d(cout);
            relu = ReLU(inplace: true);
            conv2 = Conv2d(cout, cout, kernel_size: 3, padding: dilation2, dilation: dilation2, bias: false);
            bn2 = BatchNorm2d(cout);
            if (stride != 1 || cin != cout)
                downsample = Sequential(
                    ("0", Conv2d(cin, cout, kernel_size: 1, stride: stride, bias: false)),
                    ("1", BatchNorm2d(cout)));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            // call(): runs forward hooks (data-parallel training watches them to start gradient all-reduces early).
            var h = relu.call(bn1.call(conv1.call(x)));
            h = bn2.call(conv2.call(h));
            var identity = downsample is null ? x : downsample.call(x);
            return relu.call(h.add_(identity));
        }
    }
}
