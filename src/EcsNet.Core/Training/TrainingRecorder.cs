using System.Text.Json;
using TorchSharp;

namespace EcsNet.Core.Training;

/// <summary>
/// What a training run records per step: one JSON line in <c>train-log.jsonl</c> (flushed per line, so a
/// crash or a kill keeps the log of every finished step) and TensorBoard scalars under <c>tensorboard/</c>.
/// In data-parallel training only the root process writes; the others get a recorder that writes nothing.
/// </summary>
public sealed class TrainingRecorder : IDisposable
{
    /// <summary>The run folder's TensorBoard log folder.</summary>
    public const string TensorBoardFolder = "tensorboard";

    private readonly StreamWriter? log;
    private readonly Action<string, float, int>? addScalar;

    public TrainingRecorder(string runDir, bool writes = true)
    {
        Writes = writes;
        if (!writes)
            return;
        log = new StreamWriter(Path.Combine(runDir, "train-log.jsonl"), append: true) { AutoFlush = true };
        var events = torch.utils.tensorboard.SummaryWriter(Path.Combine(runDir, TensorBoardFolder));
        addScalar = (tag, value, step) => events.add_scalar(tag, value, step);
    }

    /// <summary>False on the ranks that leave the files to the root.</summary>
    public bool Writes { get; }

    /// <summary>Appends <paramref name="line"/> (serialised as JSON) to the log and each scalar to TensorBoard at <paramref name="step"/>.</summary>
    public void Record(int step, object line, params (string Tag, double Value)[] scalars)
    {
        if (log is null || addScalar is null)
            return;
        log.WriteLine(JsonSerializer.Serialize(line));
        foreach (var (tag, value) in scalars)
            addScalar(tag, (float)value, step);
    }

    /// <summary>A checkpoint is written every <paramref name="every"/> steps, at the last step, and when the run stops early.</summary>
    public static bool CheckpointDue(int step, int maxSteps, int every, bool stoppingNow) =>
        step % Math.Max(1, every) == 0 || step == maxSteps || stoppingNow;

    public void Dispose() => log?.Dispose();
}
