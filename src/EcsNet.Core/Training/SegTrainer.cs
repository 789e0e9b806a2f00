using EcsNet.Core.Ecs;
using EcsNet.Core.Nets;
using EcsNet.Core.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EcsNet.Core.Training;

/// <summary>Progress of one segmentation training step.</summary>
public sealed record SegStepReport(int Step, int MaxSteps, int Epoch, double LearningRate, double Loss);

/// <summary>Where a finished (or stopped) segmentation run left its weights.</summary>
public sealed record SegTrainingResult(int Steps, int MaxSteps, string Checkpoint, bool Completed, double LastLoss);

/// <summary>
/// Single-process trainer of the segmentation network (SPEC §5): SGD with momentum and DeepLab's four
/// parameter groups (trunk weights ×1, trunk biases ×2 without decay, head weights ×10, head biases ×20
/// without decay), poly schedule, pixel cross-entropy ignoring 255. Randomness is a pure function of
/// (seed, step) — batch order per epoch, each sample's augmentation, dropout — so resuming from a checkpoint
/// (<see cref="Checkpoints"/>) replays exactly what an uninterrupted run does.
/// Writes RUN/train-log.jsonl and TensorBoard scalars under RUN/tensorboard.
/// </summary>
public sealed class SegTrainer : IDisposable
{
    private readonly DeepLab model;
    private readonly SegOptions options;
    private readonly string runDir;
    private readonly SGD optimizer;
    private readonly List<(SGD.ParamGroup Group, double Multiplier)> groups = new();

    /// <param name="pretrained">The trunk holds ImageNet weights (then <see cref="SegOptions.FreezePretrained"/> applies).</param>
    public SegTrainer(DeepLab model, SegOptions options, string runDir, bool pretrained)
    {
        options.Validate();
        this.model = model;
        this.options = options;
        this.runDir = runDir;
        Directory.CreateDirectory(runDir);
        if (pretrained && options.FreezePretrained)
        {
            model.Trunk.FreezeStages();
            model.Trunk.FreezeBatchNorm();
        }
        groups.AddRange(SgdGroups.Build(model.TrunkParameters(), model.HeadParameters(), options.LearningRate, options.Momentum,
            options.WeightDecay, options.HeadLrMultiplier));
        optimizer = torch.optim.SGD(groups.Select(g => g.Group), options.LearningRate, options.Momentum, 0, options.WeightDecay, false, false);
    }

    public static int StepsPerEpoch(int count, int batch) => StepPlan.StepsPerEpoch(count, batch);

    public SegTrainingResult Train(ISegTrainingData data, IProgress<SegStepReport>? progress = null, CancellationToken ct = default)
    {
        var plan = new StepPlan(data.Count, options.BatchSize, options.Epochs, options.Seed);
        if (options.Threads > 0)
            torch.set_num_threads(options.Threads);
        int maxSteps = plan.MaxSteps;
        var schedule = new PolySchedule(options.LearningRate, maxSteps, options.PolyPower);
        int step = Checkpoints.Resume(runDir, options.Seed, model, optimizer);
        string? lastCheckpoint = step > 0 ? Checkpoints.Latest(runDir) : null;
        using var recorder = new TrainingRecorder(runDir);
        int stepsThisRun = 0;
        double lastLoss = double.NaN;
        model.train();
        if (options.FreezePretrained) model.Trunk.FreezeBatchNormIfFrozen();
        while (step < maxSteps)
        {
            ct.ThrowIfCancellationRequested();
            int epoch = plan.Epoch(step);
            double lr = schedule.At(step);
            SgdGroups.SetLearningRate(groups, lr);

            double loss;
            using (var scope = torch.NewDisposeScope())
            {
                // Trunk dropout (ResNet-38's b6/b7) draws from the global generator; the head from its own.
                torch.manual_seed(CamTrainer.Mix(options.Seed, step, -1));
                model.SeedDropout(CamTrainer.Mix(options.Seed, step, -3));
                var (images, labels) = Batch(data, plan, step);
                optimizer.zero_grad();
                var value = SegLoss.CrossEntropy(model.forward(images), labels, options.LossGrid);
                loss = value.item<float>();
                if (!double.IsFinite(loss))
                    throw new TrainingDivergedException(step, lastCheckpoint, new LossTerms(loss, 0, loss, 0, 0));
                value.backward();
                optimizer.step();
            }
            lastLoss = loss;
            step++;
            stepsThisRun++;
            recorder.Record(step, new { step, epoch, lr, loss }, ("seg/loss", loss), ("seg/lr", lr));
            progress?.Report(new SegStepReport(step, maxSteps, epoch, lr, loss));
            bool stopNow = options.StopAfterSteps > 0 && stepsThisRun >= options.StopAfterSteps;
            if (TrainingRecorder.CheckpointDue(step, maxSteps, options.CheckpointEvery, stopNow))
                lastCheckpoint = Checkpoints.Save(runDir, step, options.Seed, model, optimizer);
            if (stopNow)
                break;
        }
        return new SegTrainingResult(step, maxSteps, lastCheckpoint ?? Checkpoints.Save(runDir, step, options.Seed, model, optimizer),
            step >= maxSteps, lastLoss);
    }

    private (Tensor Images, Tensor Labels) Batch(ISegTrainingData data, StepPlan plan, int step)
    {
        int n = options.BatchSize, crop = options.Crop, plane = crop * crop;
        var images = new float[n * 3 * plane];
        var labels = new long[n * plane];
        for (int i = 0; i < n; i++)
        {
            int index = plan.SampleAt(step, i);
            var rng = new Random(CamTrainer.Mix(options.Seed, step, i));
            var (img, lab) = data.Sample(index, crop, rng);
            if (img.Length != 3 * plane || lab.Length != plane)
                throw new InvalidOperationException($"sample '{data.IdAt(index)}' has the wrong size");
            Array.Copy(img, 0, images, i * img.Length, img.Length);
            for (int p = 0; p < plane; p++)
                labels[i * plane + p] = lab[p];
        }
        return (tensor(images).view(n, 3, crop, crop), tensor(labels).view(n, crop, crop));
    }

    public void Dispose() => optimizer.Dispose();
}
