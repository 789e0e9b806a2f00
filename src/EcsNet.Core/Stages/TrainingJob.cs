using EcsNet.Data;

namespace EcsNet.Core.Stages;

/// <summary>
/// One stage's training as a self-contained job: everything a process needs to train it, by path on storage that
/// every node sees (the run folder, the data set, the experiment file). The pipeline hands it to an
/// <see cref="ITrainingRunner"/>, which trains it here or on a cluster's workers.
/// </summary>
public sealed record TrainingJob
{
    /// <summary><see cref="CamStage.StageName"/>, <see cref="AffinityStage.StageName"/> or <see cref="SegStage.StageName"/>.</summary>
    public required string Stage { get; init; }

    /// <summary>The experiment (JSON, as <see cref="ExperimentFile"/> writes it).</summary>
    public required string ExperimentFile { get; init; }

    public required string VocRoot { get; init; }

    public required string Split { get; init; }

    /// <summary>How the split is opened (every rank must get the same sample list).</summary>
    public VocOptions Voc { get; init; } = new();

    /// <summary>Checkpoints, log, TensorBoard events.</summary>
    public required string RunDir { get; init; }

    /// <summary>aff, seg: the CAM network's run, whose trunk they may start from.</summary>
    public string? CamRun { get; init; }

    /// <summary>seg: the pseudo labels (&lt;id&gt;.png).</summary>
    public string? LabelDir { get; init; }

    /// <summary>aff: the la/ha maps files.</summary>
    public string? MapsDir { get; init; }
}
