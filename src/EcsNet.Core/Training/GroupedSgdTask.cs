using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EcsNet.Core.Training;

/// <summary>
/// What the CAM network's and DeepLab's training share: the model placed on its device, the pretrained trunk frozen
/// when asked, SGD with the four PSA/SEAM parameter groups (<see cref="SgdGroups"/>) and a poly schedule (with an
/// optional warm-up). A subclass adds its loss, its terms and its train mode.
/// </summary>
public abstract class GroupedSgdTask : ITrainingTask
{
    private readonly SGD optimizer;
    private readonly List<(SGD.ParamGroup Group, double Multiplier)> groups;
    private readonly Func<int, PolySchedule> schedule;
    private PolySchedule? current;

    /// <param name="validateOptions">The subclass's options check, run before anything is placed, frozen or built.</param>
    /// <param name="trunk">The trunk (frozen when <paramref name="freezeTrunk"/>: its first stages and every BatchNorm).</param>
    /// <param name="trunkParameters">The 1× group (weights ×1, biases ×2).</param>
    /// <param name="addedParameters">The ×<paramref name="addedMultiplier"/> group (weights ×m, biases ×2m).</param>
    /// <param name="schedule">The learning rate schedule, given the run's step count.</param>
    protected GroupedSgdTask(Action validateOptions, nn.Module model, Nets.Backbone trunk, bool freezeTrunk, Func<IEnumerable<(string Name, Parameter Param)>> trunkParameters,
        Func<IEnumerable<(string Name, Parameter Param)>> addedParameters, double learningRate, double momentum, double weightDecay,
        double addedMultiplier, Func<int, PolySchedule> schedule, Device? device)
    {
        validateOptions();
        Device = device ?? CPU;
        if (Device.type != DeviceType.CPU)
            model.to(Device);
        if (freezeTrunk)
        {
            trunk.FreezeStages();
            trunk.FreezeBatchNorm();
        }
        groups = SgdGroups.Build(trunkParameters(), addedParameters(), learningRate, momentum, weightDecay, addedMultiplier);
        optimizer = torch.optim.SGD(groups.Select(g => g.Group), learningRate, momentum, 0, weightDecay, false, false);
        this.schedule = schedule;
    }

    public abstract string Name { get; }
    public abstract nn.Module Model { get; }
    public Device Device { get; }
    public optim.Optimizer Optimizer => optimizer;
    public abstract TrainingLoopOptions Loop { get; }
    public abstract IReadOnlyList<LossTerm> Terms { get; }
    public abstract string LearningRateTag { get; }

    public double SetLearningRate(int step, int maxSteps)
    {
        current ??= schedule(maxSteps);
        double lr = current.At(step);
        SgdGroups.SetLearningRate(groups, lr);
        return lr;
    }

    public abstract void TrainMode();

    public abstract (Tensor Loss, double[] Terms) Loss(int step, IReadOnlyList<Labels.Samples.TrainingSample> samples, BatchShard shard, IGradientSync? sync);

    public void Dispose()
    {
        optimizer.Dispose();
        GC.SuppressFinalize(this);
    }
}
