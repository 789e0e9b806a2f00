using EcsNet.Core.Nets;
using EcsNet.Core.Weights;

namespace EcsNet.Core.Stages;

/// <summary>Where a stage's trunk gets its ImageNet weights.</summary>
public static class TrunkWeights
{
    /// <summary>
    /// Loads <paramref name="file"/> into <paramref name="trunk"/> when given; otherwise, for a ResNet-18 with
    /// <paramref name="packaged"/> set, the ImageNet weights that install with the build (<see cref="ResNet18Onnx"/>).
    /// Returns whether the trunk now holds pretrained weights.
    /// </summary>
    public static bool LoadImageNet(Backbone trunk, string? file, bool packaged)
    {
        if (file is not null)
        {
            PretrainedWeights.Load(trunk, file);
            return true;
        }
        if (packaged && trunk is ResNet18Trunk resnet)
        {
            ResNet18Onnx.Load(resnet);
            return true;
        }
        return false;
    }
}
