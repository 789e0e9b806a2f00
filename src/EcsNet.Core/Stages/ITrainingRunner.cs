using EcsNet.Core.Training;

namespace EcsNet.Core.Stages;

/// <summary>Trains a stage's <see cref="TrainingJob"/>: in this process, or data-parallel on a cluster's workers.</summary>
public interface ITrainingRunner
{
    /// <summary>Trains the job to its end (or until cancelled) and returns the result as the group's root saw it.</summary>
    TrainingResult Train(TrainingJob job, TrainingCallbacks? callbacks, CancellationToken ct);
}

/// <summary>Trains every job in this process with one placement (device, group, sample source).</summary>
public sealed class LocalTrainingRunner(TrainingPlacement? placement = null) : ITrainingRunner
{
    public static LocalTrainingRunner Default { get; } = new();

    public TrainingPlacement Placement { get; } = placement ?? TrainingPlacement.Local;

    public TrainingResult Train(TrainingJob job, TrainingCallbacks? callbacks, CancellationToken ct) =>
        StageTraining.Run(job, Placement, callbacks, ct);
}
