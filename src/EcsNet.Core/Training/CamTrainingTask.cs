using EcsNet.Core.Ecs;
using EcsNet.Core.Nets;
using EcsNet.Data;
using EcsNet.Labels.Samples;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EcsNet.Core.Training;

/// <summary>
/// Training of the CAM network (ECS-Net or the CAM baseline; docs/METHOD.md §1, paper §3 and §4.2) for
/// <see cref="TrainingLoop"/>: SGD with the four PSA/SEAM parameter groups (trunk weights ×1, trunk biases ×2
/// without decay, new weights ×10, new biases ×20 without decay), a warm-up then poly schedule, and the paper's
/// objective (Eq 1–8, <see cref="EcsObjective"/>). With pretrained weights the first stages and every BatchNorm
/// are frozen unless <see cref="CamTrainingOptions.FreezePretrained"/> is false.
/// <para>
/// Data-parallel, each rank draws the head's dropout masks for the whole global batch and keeps its rows, so every
/// image gets the mask it gets in single-process training; with <see cref="BatchNormMode.Eval"/> N ranks then
/// train exactly like one process (up to float rounding).
/// </para>
/// </summary>
public sealed class CamTrainingTask : GroupedSgdTask
{
    private static readonly LossTerm[] TermList =
    {
        new("Total", "loss/total"), new("Classification", "loss/cls"), new("CrossEntropy", "loss/ce"),
        new("ReliableFraction", "reliable_fraction"), new("ErasedFraction", "erased_fraction"),
    };

    private readonly EcsNetModel model;
    private readonly CamTrainingOptions options;
    private readonly bool frozen;

    /// <param name="model">The network (the task moves it to <paramref name="device"/> and owns its optimizer, not the model).</param>
    /// <param name="pretrained">The trunk holds ImageNet weights (then <see cref="CamTrainingOptions.FreezePretrained"/> applies).</param>
    /// <param name="device">Where to train (null: the CPU).</param>
    public CamTrainingTask(EcsNetModel model, CamTrainingOptions options, bool pretrained, Device? device = null)
        : base(options.Validate, model, model.Trunk, options.FreezesTrunk(pretrained), model.TrunkParameters, model.NewLayerParameters,
            options.LearningRate, options.Momentum, options.WeightDecay, options.NewLayerLrMultiplier,
            maxSteps => new PolySchedule(options.LearningRate, maxSteps, options.PolyPower, options.WarmupSteps, options.WarmupLearningRate), device)
    {
        this.model = model;
        this.options = options;
        frozen = options.FreezesTrunk(pretrained);
        Loop = new TrainingLoopOptions(options.BatchSize, options.Epochs, options.Seed, PlanSalt: -2, SampleSalt: 0,
            options.CheckpointEvery, options.StopAfterSteps, options.Threads);
    }

    public override string Name => "cam";
    public override nn.Module Model => model;
    public override TrainingLoopOptions Loop { get; }
    public override IReadOnlyList<LossTerm> Terms => TermList;
    public override string LearningRateTag => "lr";

    /// <summary>model.train(), then BatchNorms that are frozen, or that <see cref="BatchNormMode.Eval"/> fixes, back in eval mode.</summary>
    public override void TrainMode()
    {
        model.train();
        if (frozen) model.Trunk.FreezeBatchNormIfFrozen();
        if (options.BatchNormMode == BatchNormMode.Eval)
            foreach (var m in model.modules())
                if (m is BatchNorm2d bn)
                    bn.eval();
    }

    public override (Tensor Loss, double[] Terms) Loss(int step, IReadOnlyList<TrainingSample> samples, BatchShard shard, IGradientSync? sync)
    {
        torch.manual_seed(Seeds.Mix(options.Seed, step, -1));
        model.SeedDropout(Seeds.Mix(options.Seed, step, -3), shard.Start, shard.GlobalBatch);
        int crop = options.Crop, classes = model.Options.Classes, n = samples.Count;
        var images = new float[n * 3 * crop * crop];
        var labels = new float[n * classes];
        for (int k = 0; k < n; k++)
        {
            var s = samples[k];
            if (s.Image.Length != 3 * crop * crop || s.Target.Length != classes)
                throw new BadInputException($"cam training sample {k} of step {step}",
                    $"has {s.Image.Length} image values and {s.Target.Length} labels; a {crop}x{crop} crop needs {3 * crop * crop} and {classes}");
            Array.Copy(s.Image, 0, images, k * s.Image.Length, s.Image.Length);
            for (int c = 0; c < classes; c++)
                labels[k * classes + c] = s.Target[c];
        }
        var x = tensor(images).view(n, 3, crop, crop).to(Device);
        var y = tensor(labels).view(n, classes).to(Device);
        double weight = sync is null ? 1 : shard.Weight(sync.WorldSize);
        var (loss, t) = EcsObjective.Compute(model, x, y, step, sync, weight);
        return (loss, new[] { t.Total, t.Classification, t.CrossEntropy, t.ReliableFraction, t.ErasedFraction });
    }
}
