using System.Text.Json;
using TorchSharp;

namespace EcsNet.Core;

/// <summary>
/// Which samples a step trains on, shared by the CAM, AffinityNet and DeepLab step loops: steps per epoch,
/// the run's step count, and for a step its epoch and the sample at each position of its batch. The epoch's
/// order is a pure function of (seed, epoch, salt), so resuming at any step replays the same batches.
/// </summary>
public sealed class StepPlan
{
    private readonly int count;
    private readonly int batchSize;
    private readonly int seed;
    private readonly int salt;
    private int orderEpoch = -1;
    private int[] order = [];

    /// <param name="salt">Separates the shuffles of stages that share a seed (CAM and DeepLab use −2, AffinityNet −12).</param>
    public StepPlan(int count, int batchSize, int epochs, int seed, int salt = -2)
    {
        if (count < 1)
            throw new ArgumentException("no training images");
        if (batchSize < 1 || epochs < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), $"batch {batchSize} and epochs {epochs} must be positive");
        this.count = count;
        this.batchSize = batchSize;
        this.seed = seed;
        this.salt = salt;
        PerEpoch = StepsPerEpoch(count, batchSize);
        MaxSteps = PerEpoch * epochs;
    }

    /// <summary>Full batches per epoch (at least one; a partial last batch is dropped).</summary>
    public static int StepsPerEpoch(int count, int batch) => Math.Max(1, count / batch);

    public int PerEpoch { get; }

    public int MaxSteps { get; }

    public int Epoch(int step) => step / PerEpoch;

    /// <summary>The sample index at <paramref name="position"/> of step <paramref name="step"/>'s (global) batch.</summary>
    public int SampleAt(int step, int position)
    {
        var epoch = Epoch(step);
        if (epoch != orderEpoch)
        {
            order = EpochOrder(count, seed, epoch, salt);
            orderEpoch = epoch;
        }
        return order[((step % PerEpoch) * batchSize + position) % order.Length];
    }

    /// <summary>The shuffled sample order of an epoch, a pure function of (seed, epoch, salt).</summary>
    public static int[] EpochOrder(int count, int seed, int epoch, int salt = -2)
    {
        var shuffled = Enumerable.Range(0, count).ToArray();
        new Random(CamTrainer.Mix(seed, epoch, salt)).Shuffle(shuffled);
        return shuffled;
    }
}

/// <summary>
/// What a training run records per step: one JSON line in <c>train-log.jsonl</c> (flushed per line, so a
/// crash or a kill keeps the log of every finished step) and TensorBoard scalars under <c>tensorboard/</c>.
/// In data-parallel training only the root process writes; the others get a recorder that writes nothing.
/// </summary>
public sealed class TrainingRecorder : IDisposable
{
    private readonly StreamWriter? log;
    private readonly Action<string, float, int>? addScalar;

    public TrainingRecorder(string runDir, bool writes = true)
    {
        if (!writes)
            return;
        log = new StreamWriter(Path.Combine(runDir, "train-log.jsonl"), append: true) { AutoFlush = true };
        var events = torch.utils.tensorboard.SummaryWriter(Path.Combine(runDir, "tensorboard"));
        addScalar = (tag, value, step) => events.add_scalar(tag, value, step);
    }

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
