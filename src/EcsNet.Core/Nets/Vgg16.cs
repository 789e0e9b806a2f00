using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.Core.Nets;

/// <summary>
/// VGG16 convolutional trunk in the DeepLab-v1 LargeFOV arrangement (Chen et al., ICLR 2015; the
/// <c>vgg16_20M</c> prototxt PSA ships): 3×3 max-pools with padding 1, stride 2 after conv1–conv3 and stride 1
/// after conv4 and conv5, conv5_1–conv5_3 dilated by 2 — output stride 8, 512 channels.
/// <para>
/// Layers sit in one <c>features</c> sequence at torchvision's indices (conv1_1 = <c>features.0</c>,
/// conv5_3 = <c>features.28</c>, ReLUs and pools in between), so torchvision's <c>vgg16</c> ImageNet state
/// dict loads by name (its <c>classifier.*</c> entries are skipped with the ignore-classifier option), and
/// Caffe-named files (<c>conv1_1.weight</c>, as PSA's converter writes) load through
/// <see cref="Weights.WeightNameMaps.CaffeVgg16"/>. The LargeFOV head (pool5a, fc6 dilation 12, fc7, fc8) is not part
/// of the trunk: the segmentation stage owns it.
/// </para>
/// </summary>
public sealed class Vgg16 : Backbone
{
    /// <summary>Caffe layer name → index in <c>features</c> (torchvision numbering).</summary>
    public static readonly IReadOnlyDictionary<string, int> ConvIndex = new Dictionary<string, int>
    {
        ["conv1_1"] = 0, ["conv1_2"] = 2,
        ["conv2_1"] = 5, ["conv2_2"] = 7,
        ["conv3_1"] = 10, ["conv3_2"] = 12, ["conv3_3"] = 14,
        ["conv4_1"] = 17, ["conv4_2"] = 19, ["conv4_3"] = 21,
        ["conv5_1"] = 24, ["conv5_2"] = 26, ["conv5_3"] = 28,
    };

    private readonly Sequential features;

    // Where ForwardFeatures taps the stages: after relu4_3 (index 22) and relu5_3 (index 29).
    private const int Conv4Tap = 22, Conv5Tap = 29;

    public Vgg16() : base(nameof(Vgg16))
    {
        var layers = new List<(string, Module<Tensor, Tensor>)>();
        void Conv(int cin, int cout, int dilation = 1)
        {
            layers.Add((layers.Count.ToString(), Conv2d(cin, cout, 3, padding: dilation, dilation: dilation)));
            layers.Add((layers.Count.ToString(), ReLU(inplace: true)));
        }
        void Pool(int stride) =>
            layers.Add((layers.Count.ToString(), MaxPool2d(kernel_size: 3, stride: stride, padding: 1)));

        Conv(3, 64); Conv(64, 64); Pool(2);
        Conv(64, 128); Conv(128, 128); Pool(2);
        Conv(128, 256); Conv(256, 256); Conv(256, 256); Pool(2);
        Conv(256, 512); Conv(512, 512); Conv(512, 512); Pool(1);
        Conv(512, 512, 2); Conv(512, 512, 2); Conv(512, 512, 2); Pool(1);
        features = Sequential(layers);
        register_module("features", features);
    }

    public override BackboneKind Kind => BackboneKind.Vgg16;
    public override int OutChannels => 512;

    /// <summary>conv4_3 (after ReLU), conv5_3 (after ReLU), and the final map (pool5 of conv5_3), all 512.</summary>
    public override IReadOnlyList<int> StageChannels { get; } = new[] { 512, 512, 512 };

    /// <summary>PSA's VGG16 nets keep conv1_1, conv1_2, conv2_1, conv2_2 frozen.</summary>
    public override IReadOnlyList<string> FrozenPrefixes { get; } =
        new[] { "features.0.", "features.2.", "features.5.", "features.7." };

    public override BackboneFeatures ForwardFeatures(Tensor input)
    {
        var x = input;
        Tensor? conv4 = null, conv5 = null;
        int index = 0;
        foreach (var layer in features.children())
        {
            x = ((Module<Tensor, Tensor>)layer).call(x);   // call(): runs forward hooks (data-parallel overlap)
            // In-place ReLUs overwrite their input, so the taps sit right after a ReLU and before the next layer
            // (a max-pool, which allocates its output).
            if (index == Conv4Tap) conv4 = x;
            else if (index == Conv5Tap) conv5 = x;
            index++;
        }
        return new BackboneFeatures(x, new[] { conv4!, conv5!, x });
    }
}
