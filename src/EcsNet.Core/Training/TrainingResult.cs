namespace EcsNet.Core.Training;

/// <summary>One finished step, as every rank sees it (terms are the global batch's).</summary>
public sealed record StepReport(string Task, int Step, int MaxSteps, int Epoch, double LearningRate,
    IReadOnlyList<(string Name, double Value)> Terms, long Generation, int Rank, int WorldSize, double Seconds)
{
    /// <summary>The first term: the total loss.</summary>
    public double Loss => Terms.Count > 0 ? Terms[0].Value : double.NaN;

    /// <summary>A term by name (NaN when the task has none of that name).</summary>
    public double Term(string name) => Terms.FirstOrDefault(t => t.Name == name) is { Name: not null } t ? t.Value : double.NaN;
}

/// <summary>
/// A data-parallel generation this rank joined: who it is in it, the step training went on from and where that
/// state came from. <see cref="AbandonedStep"/> is the step this rank was in when the previous generation
/// failed (its attempt was thrown away); it is redone unless another member had finished it.
/// </summary>
public sealed record GenerationChange(long Generation, int Rank, int WorldSize, int ResumedStep, int StateFrom,
    int? AbandonedStep, string Reason)
{
    public bool Redone => AbandonedStep is { } s && s == ResumedStep;
}

/// <summary>What the loop reports while it runs (each on the training thread), and how it is asked to stop.</summary>
/// <param name="StopRequested">
/// Polled once per step: true asks for a graceful stop — every member finishes the step in progress, the root
/// writes a checkpoint, and training returns not completed (it resumes from that checkpoint). In a group, one
/// member asking is enough: the request travels in the step's control all-reduce.
/// </param>
public sealed record TrainingCallbacks(Action<StepReport>? OnStep = null, Action<GenerationChange>? OnGeneration = null,
    Func<bool>? StopRequested = null);

/// <summary>Where a finished, stopped or departed run left its weights.</summary>
/// <param name="Left">This rank left the group before the end (scale-down); the others went on.</param>
public sealed record TrainingResult(string Task, int Steps, int MaxSteps, string? Checkpoint, bool Completed, bool Left,
    IReadOnlyList<(string Name, double Value)> LastTerms, IReadOnlyList<GenerationChange> Generations)
{
    public double LastLoss => LastTerms.Count > 0 ? LastTerms[0].Value : double.NaN;
}
