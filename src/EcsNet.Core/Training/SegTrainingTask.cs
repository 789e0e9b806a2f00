using EcsNet.Core.Nets;
using EcsNet.Data;
using EcsNet.Labels.Samples;
using TorchSharp;
using static TorchSharp.torch;

namespace EcsNet.Core.Training;

/// <summary>
/// Training of the segmentation network on pseudo labels (docs/METHOD.md §5) for <see cref="TrainingLoop"/>:
/// SGD with momentum and DeepLab's four parameter groups (trunk weights ×1, trunk biases ×2 without decay, head
/// weights ×10, head biases ×20 without decay), poly schedule, pixel cross-entropy ignoring 255.
/// </summary>
public sealed class SegTrainingTask : GroupedSgdTask
{
    private static readonly LossTerm[] TermList = { new("loss", "seg/loss") };

    private readonly DeepLab model;
    private readonly SegOptions options;
    private readonly bool frozen;

    /// <param name="pretrained">The trunk holds ImageNet (or CAM-trained) weights (then <see cref="SegOptions.FreezePretrained"/> applies).</param>
    /// <param name="device">Where to train (null: the CPU).</param>
    /// <param name="fromImageNet">Those weights trace back to ImageNet (see <see cref="SegOptions.FreezesTrunk"/>); a CAM trunk trained from scratch does not.</param>
    public SegTrainingTask(DeepLab model, SegOptions options, bool pretrained, Device? device = null, bool fromImageNet = true)
        : base(options.Validate, model, model.Trunk, options.FreezesTrunk(pretrained, fromImageNet), model.TrunkParameters, model.HeadParameters,
            options.LearningRate, options.Momentum, options.WeightDecay, options.HeadLrMultiplier,
            maxSteps => new PolySchedule(options.LearningRate, maxSteps, options.PolyPower), device)
    {
        this.model = model;
        this.options = options;
        frozen = options.FreezesTrunk(pretrained, fromImageNet);
        Loop = new TrainingLoopOptions(options.BatchSize, options.Epochs, options.Seed, PlanSalt: -2, SampleSalt: 0,
            options.CheckpointEvery, options.StopAfterSteps, options.Threads);
    }

    public override string Name => "seg";
    public override nn.Module Model => model;
    public override TrainingLoopOptions Loop { get; }
    public override IReadOnlyList<LossTerm> Terms => TermList;
    public override string LearningRateTag => "seg/lr";

    public override void TrainMode()
    {
        model.train();
        if (frozen) model.Trunk.FreezeBatchNormIfFrozen();
    }

    public override (Tensor Loss, double[] Terms) Loss(int step, IReadOnlyList<TrainingSample> samples, BatchShard shard, IGradientSync? sync)
    {
        // Trunk dropout (ResNet-38's b6/b7) draws from the global generator; the head from its own.
        torch.manual_seed(Seeds.Mix(options.Seed, step, -1));
        model.SeedDropout(Seeds.Mix(options.Seed, step, -3));
        int n = samples.Count, crop = options.Crop, plane = crop * crop;
        var images = new float[n * 3 * plane];
        var labels = new long[n * plane];
        for (int i = 0; i < n; i++)
        {
            var s = samples[i];
            if (s.Image.Length != 3 * plane || s.Target.Length != plane)
                throw new BadInputException($"segmentation training sample {i} of step {step}",
                    $"has {s.Image.Length} image values and {s.Target.Length} labels; a {crop}x{crop} crop needs {3 * plane} and {plane}");
            Array.Copy(s.Image, 0, images, i * s.Image.Length, s.Image.Length);
            for (int p = 0; p < plane; p++)
                labels[i * plane + p] = s.Target[p];
        }
        var x = tensor(images).view(n, 3, crop, crop).to(Device);
        var y = tensor(labels).view(n, crop, crop).to(Device);
        var value = SegLoss.CrossEntropy(model.forward(x), y, options.LossGrid, sync);
        return (value, new double[] { value.item<float>() });
    }
}
