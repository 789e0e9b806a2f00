using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.Core.Nets;

/// <summary>
/// A small residual trunk for CPU demos and tests: output stride 8 like ResNet-38 (two stride-2 stages after
/// a stride-2 stem, then dilated stages), a few hundred thousand parameters, trained from scratch.
/// </summary>
public sealed class SmallBackbone : Backbone
{
    private readonly Sequential stem;
    private readonly Block stage1, stage2, stage3, stage4;

    public SmallBackbone(int width = 32) : base(nameof(SmallBackbone))
    {
        stem = Sequential(
            ("conv", Conv2d(3, width, 3, stride: 2, padding: 1, bias: false)),
            ("bn", BatchNorm2d(width)),
            ("relu", ReLU(inplace: true)));
        stage1 = new Block("stage1", width, width * 2, stride: 2, dilation: 1);
        stage2 = new Block("stage2", width * 2, width * 4, stride: 2, dilation: 1);
        stage3 = new Block("stage3", width * 4, width * 4, stride: 1, dilation: 2);
        stage4 = new Block("stage4", width * 4, width * 8, stride: 1, dilation: 4);
        OutChannels = width * 8;
        StageChannels = new[] { width * 4, width * 4, width * 8 };
        RegisterComponents();
    }

    public override BackboneKind Kind => BackboneKind.Small;
    public override int OutChannels { get; }
    public override IReadOnlyList<int> StageChannels { get; }

    public override BackboneFeatures ForwardFeatures(Tensor input)
    {
        // call() (not forward()) runs the layers' forward hooks, where data-parallel training watches
        // each layer's backward finish to start its gradient all-reduce early.
        var x = stem.call(input);
        x = stage1.call(x);
        var s2 = stage2.call(x);
        var s3 = stage3.call(s2);
        var s4 = stage4.call(s3);
        return new BackboneFeatures(s4, new[] { s2, s3, s4 });
    }

    /// <summary>Two 3×3 convs with a projected shortcut (pre-activation free, BN after each conv).</summary>
    private sealed class Block : Module<Tensor, Tensor>
    {
        private readonly Conv2d conv1, conv2, proj;
        private readonly BatchNorm2d bn1, bn2, bnProj;

        public Block(string name, int cin, int cout, int stride, int dilation) : base(name)
        {
            conv1 = Conv2d(cin, cout, 3, stride: stride, padding: dilation, dilation: dilation, bias: false);
            bn1 = BatchNorm2d(cout);
            conv2 = Conv2d(cout, cout, 3, padding: dilation, dilation: dilation, bias: false);
            bn2 = BatchNorm2d(cout);
            proj = Conv2d(cin, cout, 1, stride: stride, bias: false);
            bnProj = BatchNorm2d(cout);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = functional.relu(bn1.call(conv1.call(x)));
            h = bn2.call(conv2.call(h));
            return functional.relu(h + bnProj.call(proj.call(x)));
        }
    }
}
