using EcsNet.Labels.Samples;
using static TorchSharp.torch;

namespace EcsNet.Core.Training;

/// <summary>Opens the batch source of a stage's samples.</summary>
public interface IBatchSources
{
    IBatchSource Open(SampleSetSpec spec);
}

/// <summary>Samples made in this process.</summary>
public sealed class LocalBatchSources : IBatchSources
{
    public static LocalBatchSources Instance { get; } = new();

    public IBatchSource Open(SampleSetSpec spec) => new LocalBatchSource(spec.Open());
}

/// <summary>
/// How and where a stage trains: alone or as one member of a data-parallel group, on which device, and where its
/// samples are made. The default is what a single process does: alone, on the CPU, samples made here.
/// </summary>
public sealed record TrainingPlacement
{
    public static TrainingPlacement Local { get; } = new();

    /// <summary>The data-parallel group (null: train alone).</summary>
    public ITrainingGroup? Group { get; init; }

    /// <summary>Where the replica trains (null: the CPU).</summary>
    public Device? Device { get; init; }

    public IBatchSources Sources { get; init; } = LocalBatchSources.Instance;

    /// <summary>True in single-process training and on the group's root: the member that writes files.</summary>
    public bool IsRoot => Group?.Current.IsRoot ?? true;
}
