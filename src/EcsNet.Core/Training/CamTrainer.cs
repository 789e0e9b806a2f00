using EcsNet.Core.Ecs;
using EcsNet.Core.Nets;
using EcsNet.Core.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EcsNet.Core.Training;

/// <summary>Training images for the CAM network: augmented crops and image-level labels only.</summary>
public interface ICamTrainingData
{
    int Count { get; }

    string IdAt(int index);

    /// <summary>An augmented, normalised crop (CHW, 3·crop·crop floats) and its C labels (0/1).</summary>
    (float[] Image, float[] Labels) Sample(int index, int crop, Random rng);
}

/// <summary>Progress of one step.</summary>
public sealed record CamStepReport(int Step, int MaxSteps, int Epoch, double LearningRate, LossTerms Terms);

/// <summary>Where a finished (or stopped) run left its weights.</summary>
public sealed record CamTrainingResult(int Steps, int MaxSteps, string Checkpoint, bool Completed);

/// <summary>Training diverged (NaN/Inf loss): names the step and the last good checkpoint.</summary>
public sealed class TrainingDivergedException(int step, string? lastCheckpoint, LossTerms terms)
    : Exception($"loss became non-finite at step {step} (total {terms.Total}, cls {terms.Classification}, ce {terms.CrossEntropy}); " +
                (lastCheckpoint is null ? "no checkpoint was written yet" : $"last good checkpoint: {lastCheckpoint}"))
{
    public int Step { get; } = step;
    public string? LastCheckpoint { get; } = lastCheckpoint;
}

/// <summary>
/// Trainer of the CAM network (SPEC §1): SGD with four parameter groups (trunk weights ×1, trunk biases ×2
/// no decay, new weights ×10, new biases ×20 no decay), warm-up + poly schedule, checkpoints with exact
/// resume. Randomness is a pure function of (seed, step, position in the global batch), so resuming from a
/// checkpoint replays the same batches and augmentations as an uninterrupted run.
/// <para>
/// Data-parallel (SPEC §7, an <see cref="IGradientSync"/> given): rank r of N builds only positions
/// [r·B/N, (r+1)·B/N) of each global batch B — with the same per-position augmentation and dropout draws
/// as single-process training — back-propagates through the sync (gradients averaged over ranks) and
/// steps its own optimizer; all ranks resume from the same checkpoint and rank 0's weights are broadcast
/// at start. Only rank 0 writes checkpoints, the log and TensorBoard events; logged (and reported) loss
/// terms are the averages over ranks (the global batch's). B must be divisible by N: every loss term is a mean over
/// images (Eq 6's |Φ| is summed over ranks, see <see cref="Losses.ReliableCrossEntropy"/>), so the average
/// of equal shards' gradients is the global batch's gradient. With <see cref="BatchNormMode.Eval"/> the
/// result equals single-process training up to float rounding.
/// </para>
/// </summary>
public sealed class CamTrainer : IDisposable
{
    private readonly EcsNetModel model;
    private readonly CamTrainingOptions options;
    private readonly string runDir;
    private readonly SGD optimizer;
    private readonly List<(SGD.ParamGroup Group, double Multiplier)> groups = new();
    private readonly IGradientSync? sync;

    /// <param name="sync">Data-parallel gradient sync (null: single process). The trainer attaches it to the model.</param>
    public CamTrainer(EcsNetModel model, CamTrainingOptions options, string runDir, bool pretrained, IGradientSync? sync = null)
    {
        options.Validate();
        this.model = model;
        this.options = options;
        this.runDir = runDir;
        this.sync = sync;
        if (sync is not null && options.BatchSize % sync.WorldSize != 0)
            throw new EcsNet.Data.BadInputException("camTraining.batchSize",
                $"the global batch of {options.BatchSize} is not divisible by {sync.WorldSize} ranks (equal shards are needed for the averaged gradient to be the global batch's)");
        Directory.CreateDirectory(runDir);
        if (pretrained && options.FreezePretrained)
        {
            model.Trunk.FreezeStages();
            model.Trunk.FreezeBatchNorm();
        }
        groups.AddRange(SgdGroups.Build(model.TrunkParameters(), model.NewLayerParameters(), options.LearningRate, options.Momentum,
            options.WeightDecay, options.NewLayerLrMultiplier));
        optimizer = torch.optim.SGD(groups.Select(g => g.Group), options.LearningRate, options.Momentum, 0, options.WeightDecay, false, false);
        sync?.Attach(model);
    }

    /// <summary>True in single-process training and on rank 0: the process that writes files.</summary>
    private bool IsRoot => sync?.IsRoot ?? true;

    public static int StepsPerEpoch(int count, int batch) => StepPlan.StepsPerEpoch(count, batch);

    public CamTrainingResult Train(ICamTrainingData data, IProgress<CamStepReport>? progress = null, CancellationToken ct = default)
    {
        var plan = new StepPlan(data.Count, options.BatchSize, options.Epochs, options.Seed);
        if (options.Threads > 0)
            torch.set_num_threads(options.Threads);
        int maxSteps = plan.MaxSteps;
        var schedule = new PolySchedule(options.LearningRate, maxSteps, options.PolyPower, options.WarmupSteps, options.WarmupLearningRate);
        int step = Resume();
        if (sync is not null)
        {
            AgreeOnResumeStep(step);
            sync.BroadcastParameters();
        }
        string? lastCheckpoint = step > 0 ? LatestCheckpoint() : null;
        using var recorder = new TrainingRecorder(runDir, writes: IsRoot);
        var (shardStart, shardCount) = sync is null ? (0, options.BatchSize) : Shard(options.BatchSize, sync.Rank, sync.WorldSize);
        int stepsThisRun = 0;
        SetTrainMode();
        while (step < maxSteps)
        {
            ct.ThrowIfCancellationRequested();
            int epoch = plan.Epoch(step);
            double lr = schedule.At(step);
            SgdGroups.SetLearningRate(groups, lr);

            LossTerms terms;
            using (var scope = torch.NewDisposeScope())
            {
                torch.manual_seed(Mix(options.Seed, step, -1));
                model.SeedDropout(Mix(options.Seed, step, -3), shardStart, options.BatchSize);
                var (images, labels) = Batch(data, plan, step, shardStart, shardCount);
                optimizer.zero_grad();
                var (loss, t) = EcsObjective.Compute(model, images, labels, step, sync);
                // data-parallel: the global batch's terms, so that every rank sees a divergence at once
                terms = sync is null ? t : AverageOverRanks(t);
                if (!double.IsFinite(terms.Total))
                    throw new TrainingDivergedException(step, lastCheckpoint, terms);
                if (sync is null)
                    loss.backward();
                else
                    sync.Backward(loss);
                optimizer.step();
            }
            step++;
            stepsThisRun++;
            recorder.Record(step, new { step, epoch, lr, terms.Total, terms.Classification, terms.CrossEntropy, terms.ReliableFraction, terms.ErasedFraction },
                ("loss/total", terms.Total), ("loss/cls", terms.Classification), ("loss/ce", terms.CrossEntropy),
                ("reliable_fraction", terms.ReliableFraction), ("lr", lr));
            progress?.Report(new CamStepReport(step, maxSteps, epoch, lr, terms));   // every rank; the caller decides what to show
            bool stopNow = options.StopAfterSteps > 0 && stepsThisRun >= options.StopAfterSteps;
            if (TrainingRecorder.CheckpointDue(step, maxSteps, options.CheckpointEvery, stopNow))
                lastCheckpoint = SaveCheckpoint(step);
            if (stopNow)
                break;
        }
        lastCheckpoint ??= SaveCheckpoint(step);
        // every rank returns once rank 0's last checkpoint is complete on disk
        sync?.SumAcrossRanks(new double[1]);
        return new CamTrainingResult(step, maxSteps, lastCheckpoint, step >= maxSteps);
    }

    /// <summary>The contiguous slice [start, start + count) of a global batch that <paramref name="rank"/> of <paramref name="world"/> takes.</summary>
    public static (int Start, int Count) Shard(int globalBatch, int rank, int world)
    {
        if (world < 1 || rank < 0 || rank >= world)
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"rank must be in [0, {world})");
        int baseCount = globalBatch / world, extra = globalBatch % world;
        return (rank * baseCount + Math.Min(rank, extra), baseCount + (rank < extra ? 1 : 0));
    }

    /// <summary>model.train(), then BatchNorms that are frozen, or that <see cref="BatchNormMode.Eval"/> fixes, back in eval mode.</summary>
    private void SetTrainMode()
    {
        model.train();
        if (options.FreezePretrained) model.Trunk.FreezeBatchNormIfFrozen();
        if (options.BatchNormMode == BatchNormMode.Eval)
            foreach (var m in model.modules())
                if (m is BatchNorm2d bn)
                    bn.eval();
    }

    /// <summary>Positions [start, start + count) of the step's global batch.</summary>
    private (Tensor Images, Tensor Labels) Batch(ICamTrainingData data, StepPlan plan, int step, int start, int count)
    {
        int crop = options.Crop;
        var images = new float[count * 3 * crop * crop];
        var labels = new float[count * model.Options.Classes];
        for (int k = 0; k < count; k++)
        {
            int i = start + k;   // position in the global batch: decides the image and its augmentation
            int index = plan.SampleAt(step, i);
            var rng = new Random(Mix(options.Seed, step, i));
            var (img, lab) = data.Sample(index, crop, rng);
            if (img.Length != 3 * crop * crop || lab.Length != model.Options.Classes)
                throw new InvalidOperationException($"sample '{data.IdAt(index)}' has the wrong size");
            Array.Copy(img, 0, images, k * img.Length, img.Length);
            Array.Copy(lab, 0, labels, k * lab.Length, lab.Length);
        }
        return (tensor(images).view(count, 3, crop, crop), tensor(labels).view(count, model.Options.Classes));
    }

    /// <summary>Each term averaged over the ranks: with equal shards, the global batch's value.</summary>
    private LossTerms AverageOverRanks(LossTerms t)
    {
        var v = new[] { t.Total, t.Classification, t.CrossEntropy, t.ReliableFraction, t.ErasedFraction };
        sync!.SumAcrossRanks(v);
        double n = sync.WorldSize;
        return new LossTerms(v[0] / n, v[1] / n, v[2] / n, v[3] / n, v[4] / n);
    }

    /// <summary>
    /// Every rank must continue from the same step (they read the same run folder). Each rank's step is
    /// gathered (a sum of one-hot rows), so a rank that found another checkpoint is named on every rank.
    /// </summary>
    private void AgreeOnResumeStep(int step)
    {
        var steps = new double[sync!.WorldSize];
        steps[sync.Rank] = step;
        sync.SumAcrossRanks(steps);
        var odd = Enumerable.Range(0, steps.Length).Where(r => steps[r] != steps[0]).ToArray();
        if (odd.Length > 0)
            throw new EcsNet.Data.BadInputException(runDir,
                $"ranks resumed from different checkpoints (rank 0 at step {steps[0]}, " +
                string.Join(", ", odd.Select(r => $"rank {r} at step {steps[r]}")) +
                "): every rank must see the same run folder (shared storage)");
    }

    /// <summary>Deterministic seed from (seed, a, b).</summary>
    public static int Mix(int seed, int a, int b)
    {
        unchecked
        {
            ulong h = 1469598103934665603UL;
            foreach (var v in new[] { seed, a, b })
            {
                h ^= (uint)v;
                h *= 1099511628211UL;
                h ^= h >> 29;
            }
            return (int)(h & 0x7fffffff);
        }
    }

    /// <summary>Rank 0 writes the checkpoint; other ranks return where it is written.</summary>
    private string SaveCheckpoint(int step) =>
        IsRoot ? Checkpoints.Save(runDir, step, options.Seed, model, optimizer) : Checkpoints.PathOf(runDir, step);

    private string? LatestCheckpoint() => Checkpoints.Latest(runDir);

    private int Resume() => Checkpoints.Resume(runDir, options.Seed, model, optimizer);

    /// <summary>Loads the weights of a checkpoint directory (or of a run's latest checkpoint) into a model.</summary>
    public static string LoadWeights(EcsNetModel model, string runOrCheckpoint) => Checkpoints.LoadWeights(model, runOrCheckpoint);

    public void Dispose() => optimizer.Dispose();
}
