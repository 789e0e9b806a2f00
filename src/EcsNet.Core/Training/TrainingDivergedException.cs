using System.Globalization;

namespace EcsNet.Core.Training;

/// <summary>Training diverged (a non-finite loss): names the stage, the step, the terms and the last good checkpoint.</summary>
public sealed class TrainingDivergedException(string task, int step, string? lastCheckpoint, IReadOnlyList<(string Name, double Value)> terms)
    : Exception($"{task}: loss became non-finite at step {step} (" +
                string.Join(", ", terms.Select(t => $"{t.Name} {t.Value.ToString(CultureInfo.InvariantCulture)}")) + "); " +
                (lastCheckpoint is null ? "no checkpoint was written yet" : $"last good checkpoint: {lastCheckpoint}"))
{
    public string Task { get; } = task;
    public int Step { get; } = step;
    public string? LastCheckpoint { get; } = lastCheckpoint;
}
