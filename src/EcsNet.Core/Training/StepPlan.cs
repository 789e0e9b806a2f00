using EcsNet.Data;

namespace EcsNet.Core.Training;

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
        new Random(Seeds.Mix(seed, epoch, salt)).Shuffle(shuffled);
        return shuffled;
    }
}
