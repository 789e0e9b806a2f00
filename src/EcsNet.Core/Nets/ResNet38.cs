using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.Core.Nets;

/// <summary>
/// ResNet-38 (Wu, Shen, van den Hengel, "Wider or deeper", model A1) exactly as the trunk PSA and SEAM use
/// (their <c>network/resnet38d.py</c>): pre-activation residual blocks, a stride-1 stem, three stride-2 stages
/// (output stride 8), then dilated stages instead of further downsampling, 4096 output channels.
/// <para>
/// Parameter and buffer names equal the reference state-dict keys (<c>conv1a.weight</c>,
/// <c>b2.bn_branch2a.weight</c>, <c>b4_5.conv_branch2b1.weight</c>, <c>b7.conv_branch2b2.weight</c>,
/// <c>bn7.running_var</c>, …), so weights converted for PSA/SEAM load by name (docs/WEIGHTS.md).
/// 105,070,912 parameters, the reference's count.
/// </para>
/// </summary>
public sealed class ResNet38 : Backbone
{
    /// <summary>Reference channel counts of the three stage maps: conv4 (b5's input), conv5 (b6's input), conv6.</summary>
    public static readonly IReadOnlyList<int> ReferenceStageChannels = new[] { 512, 1024, 4096 };

    private readonly Conv2d conv1a;
    private readonly PreActBlock[] stages2to5;
    private readonly PreActBlock b5;
    private readonly PreActBlock[] b5Rest;
    private readonly BottleneckBlock b6, b7;
    private readonly BatchNorm2d bn7;

    /// <param name="dropoutB6">Dropout2d rate inside b6 (reference 0.3).</param>
    /// <param name="dropoutB7">Dropout2d rate inside b7 (reference 0.5).</param>
    public ResNet38(double dropoutB6 = 0.3, double dropoutB7 = 0.5) : base(nameof(ResNet38))
    {
        // Stem: a 3×3 conv at full resolution, no BN/ReLU of its own (the next block pre-activates).
        conv1a = Conv2d(3, 64, 3, padding: 1, bias: false);
        register_module("conv1a", conv1a);

        var blocks = new List<PreActBlock>();
        PreActBlock Add(string name, PreActBlock block)
        {
            register_module(name, block);
            blocks.Add(block);
            return block;
        }

        // b2–b4: the first block of each stage halves the resolution (stride 1 → 2 → 4 → 8).
        Add("b2", new PreActBlock(64, 128, 128, stride: 2, firstDilation: 1, dilation: 1));
        Add("b2_1", new PreActBlock(128, 128, 128, 1, 1, 1));
        Add("b2_2", new PreActBlock(128, 128, 128, 1, 1, 1));
        Add("b3", new PreActBlock(128, 256, 256, stride: 2, firstDilation: 1, dilation: 1));
        Add("b3_1", new PreActBlock(256, 256, 256, 1, 1, 1));
        Add("b3_2", new PreActBlock(256, 256, 256, 1, 1, 1));
        Add("b4", new PreActBlock(256, 512, 512, stride: 2, firstDilation: 1, dilation: 1));
        for (int i = 1; i <= 5; i++)
            Add($"b4_{i}", new PreActBlock(512, 512, 512, 1, 1, 1));
        stages2to5 = blocks.ToArray();
        blocks.Clear();

        // b5: stride 1 with dilation 2 in place of a fourth downsampling (its first conv keeps dilation 1).
        b5 = new PreActBlock(512, 512, 1024, stride: 1, firstDilation: 1, dilation: 2);
        register_module("b5", b5);
        b5Rest = new[]
        {
            new PreActBlock(1024, 512, 1024, 1, 2, 2),
            new PreActBlock(1024, 512, 1024, 1, 2, 2),
        };
        register_module("b5_1", b5Rest[0]);
        register_module("b5_2", b5Rest[1]);

        // b6, b7: bottleneck blocks (1×1 → 3×3 dilation 4 → 1×1) widening to 2048 and 4096 channels.
        b6 = new BottleneckBlock(1024, 2048, dilation: 4, dropout: dropoutB6);
        register_module("b6", b6);
        b7 = new BottleneckBlock(2048, 4096, dilation: 4, dropout: dropoutB7);
        register_module("b7", b7);
        bn7 = BatchNorm2d(4096);
        register_module("bn7", bn7);
    }

    public override BackboneKind Kind => BackboneKind.ResNet38;
    public override int OutChannels => 4096;
    public override IReadOnlyList<int> StageChannels => ReferenceStageChannels;

    /// <summary>SEAM/PSA-AffinityNet freeze the stem and the first residual stage (docs/METHOD.md §1).</summary>
    public override IReadOnlyList<string> FrozenPrefixes { get; } = new[] { "conv1a.", "b2.", "b2_1.", "b2_2." };

    /// <summary>
    /// Stages as PSA's <c>forward_as_dict</c>: conv4 = BN-ReLU of b4_5's output (512 ch, taken inside b5),
    /// conv5 = BN-ReLU of b5_2's output (1024 ch, taken inside b6), conv6 = ReLU(bn7(b7)) (4096 ch, the final map).
    /// All three are at stride 8.
    /// </summary>
    public override BackboneFeatures ForwardFeatures(Tensor input)
    {
        var x = conv1a.call(input);
        foreach (var block in stages2to5)
            x = block.Forward(x, out _);
        x = b5.Forward(x, out var conv4);
        foreach (var block in b5Rest)
            x = block.Forward(x, out _);
        x = b6.Forward(x, out var conv5);
        x = b7.Forward(x, out _);
        var conv6 = functional.relu(bn7.call(x));
        return new BackboneFeatures(conv6, new[] { conv4, conv5, conv6 });
    }

    /// <summary>
    /// Pre-activation block (reference <c>ResBlock</c>): BN-ReLU on the input, then 3×3 (stride, first dilation)
    /// → BN-ReLU → 3×3 (dilation). The shortcut is the identity when the shape is kept, else a 1×1 projection of
    /// the pre-activated input.
    /// </summary>
    private sealed class PreActBlock : Module<Tensor, Tensor>
    {
        // TorchSharp registers fields by name when it first enumerates a module; the attributes give the
        // reference names so that pass finds them already registered (below, in the reference's order).
        [ComponentName(Name = "bn_branch2a")] private readonly BatchNorm2d bnBranch2a;
        [ComponentName(Name = "conv_branch2a")] private readonly Conv2d convBranch2a;
        [ComponentName(Name = "bn_branch2b1")] private readonly BatchNorm2d bnBranch2b1;
        [ComponentName(Name = "conv_branch2b1")] private readonly Conv2d convBranch2b1;
        [ComponentName(Name = "conv_branch1")] private readonly Conv2d? convBranch1;

        public PreActBlock(int cin, int mid, int cout, int stride, int firstDilation, int dilation)
            : base(nameof(PreActBlock))
        {
            bnBranch2a = BatchNorm2d(cin);
            convBranch2a = Conv2d(cin, mid, 3, stride: stride, padding: firstDilation, dilation: firstDilation, bias: false);
            bnBranch2b1 = BatchNorm2d(mid);
            convBranch2b1 = Conv2d(mid, cout, 3, padding: dilation, dilation: dilation, bias: false);
            // Registration order follows the reference so state dicts list keys in the same order.
            register_module("bn_branch2a", bnBranch2a);
            register_module("conv_branch2a", convBranch2a);
            register_module("bn_branch2b1", bnBranch2b1);
            register_module("conv_branch2b1", convBranch2b1);
            if (cin != cout || stride != 1)
            {
                convBranch1 = Conv2d(cin, cout, 1, stride: stride, bias: false);
                register_module("conv_branch1", convBranch1);
            }
        }

        public override Tensor forward(Tensor x) => Forward(x, out _);

        /// <param name="bnRelu">The pre-activated input (the reference's <c>x_bn_relu</c>).</param>
        public Tensor Forward(Tensor x, out Tensor bnRelu)
        {
            bnRelu = functional.relu(bnBranch2a.call(x));
            var shortcut = convBranch1 is null ? x : convBranch1.call(bnRelu);
            var h = convBranch2a.call(bnRelu);
            h = functional.relu(bnBranch2b1.call(h));
            h = convBranch2b1.call(h);
            return shortcut + h;
        }
    }

    /// <summary>
    /// Pre-activation bottleneck (reference <c>ResBlock_bot</c>): BN-ReLU → 1×1 to cout/4 → BN-ReLU-Dropout2d →
    /// 3×3 dilated to cout/2 → BN-ReLU-Dropout2d → 1×1 to cout; shortcut is a 1×1 projection (always, since the
    /// width changes).
    /// </summary>
    private sealed class BottleneckBlock : Module<Tensor, Tensor>
    {
        [ComponentName(Name = "bn_branch2a")] private readonly BatchNorm2d bnBranch2a;
        [ComponentName(Name = "conv_branch2a")] private readonly Conv2d convBranch2a;
        [ComponentName(Name = "bn_branch2b1")] private readonly BatchNorm2d bnBranch2b1;
        [ComponentName(Name = "dropout_2b1")] private readonly Dropout2d dropout2b1;
        [ComponentName(Name = "conv_branch2b1")] private readonly Conv2d convBranch2b1;
        [ComponentName(Name = "bn_branch2b2")] private readonly BatchNorm2d bnBranch2b2;
        [ComponentName(Name = "dropout_2b2")] private readonly Dropout2d dropout2b2;
        [ComponentName(Name = "conv_branch2b2")] private readonly Conv2d convBranch2b2;
        [ComponentName(Name = "conv_branch1")] private readonly Conv2d convBranch1;

        public BottleneckBlock(int cin, int cout, int dilation, double dropout) : base(nameof(BottleneckBlock))
        {
            bnBranch2a = BatchNorm2d(cin);
            convBranch2a = Conv2d(cin, cout / 4, 1, bias: false);
            bnBranch2b1 = BatchNorm2d(cout / 4);
            dropout2b1 = Dropout2d(dropout);
            convBranch2b1 = Conv2d(cout / 4, cout / 2, 3, padding: dilation, dilation: dilation, bias: false);
            bnBranch2b2 = BatchNorm2d(cout / 2);
            dropout2b2 = Dropout2d(dropout);
            convBranch2b2 = Conv2d(cout / 2, cout, 1, bias: false);
            convBranch1 = Conv2d(cin, cout, 1, bias: false);
            register_module("bn_branch2a", bnBranch2a);
            register_module("conv_branch2a", convBranch2a);
            register_module("bn_branch2b1", bnBranch2b1);
            register_module("dropout_2b1", dropout2b1);
            register_module("conv_branch2b1", convBranch2b1);
            register_module("bn_branch2b2", bnBranch2b2);
            register_module("dropout_2b2", dropout2b2);
            register_module("conv_branch2b2", convBranch2b2);
            register_module("conv_branch1", convBranch1);
        }

        public override Tensor forward(Tensor x) => Forward(x, out _);

        public Tensor Forward(Tensor x, out Tensor bnRelu)
        {
            bnRelu = functional.relu(bnBranch2a.call(x));
            var shortcut = convBranch1.call(bnRelu);
            var h = convBranch2a.call(bnRelu);
            h = dropout2b1.call(functional.relu(bnBranch2b1.call(h)));
            h = convBranch2b1.call(h);
            h = dropout2b2.call(functional.relu(bnBranch2b2.call(h)));
            h = convBranch2b2.call(h);
            return shortcut + h;
        }
    }
}
