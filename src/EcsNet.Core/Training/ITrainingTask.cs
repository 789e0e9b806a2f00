using EcsNet.Labels.Samples;
using static TorchSharp.torch;

namespace EcsNet.Core.Training;

/// <summary>A logged loss term: its field in train-log.jsonl and its TensorBoard tag.</summary>
public sealed record LossTerm(string Name, string Tag);

/// <summary>The positions [Start, Start + Count) of a global batch of <see cref="GlobalBatch"/> that one rank trains on.</summary>
public readonly record struct BatchShard(int Start, int Count, int GlobalBatch)
{
    /// <summary>
    /// The factor that makes a shard's per-image mean count as its share of the global batch's mean: the ranks'
    /// averaged gradient is then the global batch's even when the shards are unequal (after a generation change
    /// the global batch is re-split over the members left). Exactly 1 for equal shards.
    /// </summary>
    public double Weight(int worldSize) => (double)Count * worldSize / GlobalBatch;

    /// <summary>The slice of a global batch that <paramref name="rank"/> of <paramref name="world"/> takes (the first ranks take one more when it does not divide).</summary>
    public static BatchShard Of(int globalBatch, int rank, int world)
    {
        if (world < 1 || rank < 0 || rank >= world)
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"rank must be in [0, {world})");
        if (world > globalBatch)
            throw new ArgumentOutOfRangeException(nameof(world), world, $"{world} ranks cannot share a global batch of {globalBatch}");
        int baseCount = globalBatch / world, extra = globalBatch % world;
        return new BatchShard(rank * baseCount + Math.Min(rank, extra), baseCount + (rank < extra ? 1 : 0), globalBatch);
    }
}

/// <summary>How the loop walks a task's data: batch, epochs, seeds, checkpoints.</summary>
/// <param name="PlanSalt">Separates the epoch shuffles of stages that share a seed (<see cref="StepPlan"/>).</param>
/// <param name="SampleSalt">Added to a sample's batch position when seeding its augmentation.</param>
/// <param name="StopAfterSteps">Stop after this many steps in this invocation (0: run to the end).</param>
/// <param name="Threads">LibTorch intra-op threads (0: leave the default).</param>
public sealed record TrainingLoopOptions(int BatchSize, int Epochs, int Seed, int PlanSalt, int SampleSalt,
    int CheckpointEvery, int StopAfterSteps = 0, int Threads = 0);

/// <summary>
/// What one stage plugs into <see cref="TrainingLoop"/>: its network (placed on its device), its optimizer
/// with the stage's parameter groups, its schedule and its loss. The loop does the rest the same way for the
/// CAM network, AffinityNet and DeepLab: step plan, batches, data-parallel sync, divergence checks, logs,
/// TensorBoard, checkpoints and resume.
/// </summary>
public interface ITrainingTask : IDisposable
{
    /// <summary>The stage ("cam", "aff", "seg"), for messages.</summary>
    string Name { get; }

    nn.Module Model { get; }

    /// <summary>Where the model, its batches and its optimizer state live.</summary>
    Device Device { get; }

    optim.Optimizer Optimizer { get; }

    TrainingLoopOptions Loop { get; }

    /// <summary>The terms <see cref="Loss"/> returns, in order; the first is the total the loop checks for divergence.</summary>
    IReadOnlyList<LossTerm> Terms { get; }

    /// <summary>TensorBoard tag of the learning rate.</summary>
    string LearningRateTag { get; }

    /// <summary>Sets each parameter group's rate for <paramref name="step"/>; returns the base rate (what is logged).</summary>
    double SetLearningRate(int step, int maxSteps);

    /// <summary>Training mode, with whatever the task keeps frozen back in eval mode.</summary>
    void TrainMode();

    /// <summary>
    /// The loss of <paramref name="samples"/> (positions of <paramref name="shard"/> in step <paramref name="step"/>'s
    /// global batch) and its terms. Data-parallel (<paramref name="sync"/> given), each term must be this rank's
    /// share so that the average over ranks is the global batch's value (see <see cref="BatchShard.Weight"/>).
    /// </summary>
    (Tensor Loss, double[] Terms) Loss(int step, IReadOnlyList<TrainingSample> samples, BatchShard shard, IGradientSync? sync);
}
