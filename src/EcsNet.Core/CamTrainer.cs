using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EcsNet.Core;

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
/// Single-process trainer of the CAM network (SPEC §1): SGD with four parameter groups (trunk weights ×1,
/// trunk biases ×2 no decay, new weights ×10, new biases ×20 no decay), warm-up + poly schedule,
/// checkpoints with exact resume. Randomness is a pure function of (seed, step), so resuming from a
/// checkpoint replays the same batches and augmentations as an uninterrupted run.
/// </summary>
public sealed class CamTrainer : IDisposable
{
    private readonly EcsNetModel model;
    private readonly CamTrainingOptions options;
    private readonly string runDir;
    private readonly SGD optimizer;
    private readonly List<(SGD.ParamGroup Group, double Multiplier)> groups = new();

    public CamTrainer(EcsNetModel model, CamTrainingOptions options, string runDir, bool pretrained)
    {
        this.model = model;
        this.options = options;
        this.runDir = runDir;
        Directory.CreateDirectory(runDir);
        if (pretrained && options.FreezePretrained)
        {
            model.Trunk.FreezeStages();
            model.Trunk.FreezeBatchNorm();
        }
        static bool IsBias(string name) => name.EndsWith(".bias", StringComparison.Ordinal);
        var trunk = model.TrunkParameters().Where(p => p.Param.requires_grad).ToList();
        var added = model.NewLayerParameters().Where(p => p.Param.requires_grad).ToList();
        void Add(IEnumerable<(string Name, Parameter Param)> ps, double mult, double wd)
        {
            var list = ps.Select(p => p.Param).ToList();
            if (list.Count == 0) return;
            var g = new SGD.ParamGroup(list, options.LearningRate * mult, options.Momentum, 0, wd, false, false);
            groups.Add((g, mult));
        }
        Add(trunk.Where(p => !IsBias(p.Name)), 1, options.WeightDecay);
        Add(trunk.Where(p => IsBias(p.Name)), 2, 0);
        Add(added.Where(p => !IsBias(p.Name)), options.NewLayerLrMultiplier, options.WeightDecay);
        Add(added.Where(p => IsBias(p.Name)), 2 * options.NewLayerLrMultiplier, 0);
        optimizer = torch.optim.SGD(groups.Select(g => g.Group), options.LearningRate, options.Momentum, 0, options.WeightDecay, false, false);
    }

    public static int StepsPerEpoch(int count, int batch) => Math.Max(1, count / batch);

    public CamTrainingResult Train(ICamTrainingData data, IProgress<CamStepReport>? progress = null, CancellationToken ct = default)
    {
        if (data.Count == 0)
            throw new ArgumentException("no training images");
        if (options.Threads > 0)
            torch.set_num_threads(options.Threads);
        int perEpoch = StepsPerEpoch(data.Count, options.BatchSize);
        int maxSteps = perEpoch * options.Epochs;
        var schedule = new PolySchedule(options.LearningRate, maxSteps, options.PolyPower, options.WarmupSteps, options.WarmupLearningRate);
        int step = Resume();
        string? lastCheckpoint = step > 0 ? LatestCheckpoint() : null;
        using var log = new StreamWriter(Path.Combine(runDir, "train-log.jsonl"), append: true);
        var tb = torch.utils.tensorboard.SummaryWriter(Path.Combine(runDir, "tensorboard"));
        int stepsThisRun = 0;
        model.train();
        if (options.FreezePretrained) model.Trunk.FreezeBatchNormIfFrozen();
        while (step < maxSteps)
        {
            ct.ThrowIfCancellationRequested();
            int epoch = step / perEpoch;
            var order = EpochOrder(data.Count, epoch);
            int offset = (step % perEpoch) * options.BatchSize;
            double lr = schedule.At(step);
            foreach (var (g, mult) in groups)
                g.LearningRate = lr * mult;

            LossTerms terms;
            using (var scope = torch.NewDisposeScope())
            {
                torch.manual_seed(Mix(options.Seed, step, -1));
                model.SeedDropout(Mix(options.Seed, step, -3));
                var (images, labels) = Batch(data, order, offset, step);
                optimizer.zero_grad();
                var (loss, t) = EcsObjective.Compute(model, images, labels, step);
                terms = t;
                if (!double.IsFinite(terms.Total))
                    throw new TrainingDivergedException(step, lastCheckpoint, terms);
                loss.backward();
                optimizer.step();
            }
            step++;
            stepsThisRun++;
            log.WriteLine(JsonSerializer.Serialize(new { step, epoch, lr, terms.Total, terms.Classification, terms.CrossEntropy, terms.ReliableFraction, terms.ErasedFraction }));
            tb.add_scalar("loss/total", (float)terms.Total, step);
            tb.add_scalar("loss/cls", (float)terms.Classification, step);
            tb.add_scalar("loss/ce", (float)terms.CrossEntropy, step);
            tb.add_scalar("reliable_fraction", (float)terms.ReliableFraction, step);
            tb.add_scalar("lr", (float)lr, step);
            progress?.Report(new CamStepReport(step, maxSteps, epoch, lr, terms));
            bool stopNow = options.StopAfterSteps > 0 && stepsThisRun >= options.StopAfterSteps;
            if (step % Math.Max(1, options.CheckpointEvery) == 0 || step == maxSteps || stopNow)
                lastCheckpoint = SaveCheckpoint(step);
            if (stopNow)
                break;
        }
        log.Flush();
        return new CamTrainingResult(step, maxSteps, lastCheckpoint ?? SaveCheckpoint(step), step >= maxSteps);
    }

    private (Tensor Images, Tensor Labels) Batch(ICamTrainingData data, int[] order, int offset, int step)
    {
        int n = options.BatchSize, crop = options.Crop;
        var images = new float[n * 3 * crop * crop];
        var labels = new float[n * model.Options.Classes];
        for (int i = 0; i < n; i++)
        {
            int index = order[(offset + i) % order.Length];
            var rng = new Random(Mix(options.Seed, step, i));
            var (img, lab) = data.Sample(index, crop, rng);
            if (img.Length != 3 * crop * crop || lab.Length != model.Options.Classes)
                throw new InvalidOperationException($"sample '{data.IdAt(index)}' has the wrong size");
            Array.Copy(img, 0, images, i * img.Length, img.Length);
            Array.Copy(lab, 0, labels, i * lab.Length, lab.Length);
        }
        return (tensor(images).view(n, 3, crop, crop), tensor(labels).view(n, model.Options.Classes));
    }

    private int[] EpochOrder(int count, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        new Random(Mix(options.Seed, epoch, -2)).Shuffle(order);
        return order;
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

    private string SaveCheckpoint(int step) => Checkpoints.Save(runDir, step, options.Seed, model, optimizer);

    private string? LatestCheckpoint() => Checkpoints.Latest(runDir);

    private int Resume() => Checkpoints.Resume(runDir, options.Seed, model, optimizer);

    /// <summary>Loads the weights of a checkpoint directory (or of a run's latest checkpoint) into a model.</summary>
    public static string LoadWeights(EcsNetModel model, string runOrCheckpoint) => Checkpoints.LoadWeights(model, runOrCheckpoint);

    public void Dispose() => optimizer.Dispose();
}
