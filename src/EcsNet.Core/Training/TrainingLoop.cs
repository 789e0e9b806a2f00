using System.Diagnostics;
using System.Runtime.ExceptionServices;
using EcsNet.Core.Runtime;
using EcsNet.Core.Weights;
using EcsNet.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace EcsNet.Core.Training;

/// <summary>
/// The one training loop of the CAM network, AffinityNet and DeepLab: SGD steps over a <see cref="StepPlan"/>,
/// checkpoints with exact resume, a log line and TensorBoard scalars per step, a divergence check, and
/// data-parallel training over an <see cref="ITrainingGroup"/>.
/// <para>
/// Randomness is a pure function of (seed, step, position in the global batch): rank r of N builds only its
/// <see cref="BatchShard"/> of each global batch, with the same samples single-process training would make at
/// those positions, back-propagates through the group's gradient sync (gradients averaged over the ranks) and
/// steps its own optimizer. Only the root (rank 0) writes checkpoints, the log and TensorBoard events; logged
/// terms are the global batch's (averaged over the ranks).
/// </para>
/// <para>
/// Elastic training: each step ends with one small all-reduce of the loss terms and a "membership changes"
/// flag, so every member learns at the same step that the generation ends after it; a collective that fails
/// (a peer died) abandons the step in flight. Either way the members go to the next generation, agree on the
/// newest completed step, and copy the weights and optimizer state from a member that has it (the lowest rank
/// among them) — a joiner gets them the same way. Training thus continues from memory, not from the last
/// checkpoint, and at most the step in flight is redone.
/// </para>
/// </summary>
public static class TrainingLoop
{
    /// <summary>Single-process training.</summary>
    public static TrainingResult Run(ITrainingTask task, IBatchSource source, string runDir,
        TrainingCallbacks? callbacks = null, CancellationToken ct = default) =>
        Run(task, source, runDir, group: null, callbacks, ct);

    /// <summary>Data-parallel training in a fixed group: a failed collective ends training with its error.</summary>
    public static TrainingResult Run(ITrainingTask task, IBatchSource source, string runDir, IGradientSync sync,
        TrainingCallbacks? callbacks = null, CancellationToken ct = default) =>
        Run(task, source, runDir, new FixedTrainingGroup(sync), callbacks, ct);

    /// <summary>Training in <paramref name="group"/> (null: this process alone).</summary>
    public static TrainingResult Run(ITrainingTask task, IBatchSource source, string runDir, ITrainingGroup? group,
        TrainingCallbacks? callbacks = null, CancellationToken ct = default)
    {
        var run = new LoopRun(task, source, runDir, group, callbacks, ct);
        return run.Execute();
    }

    /// <summary>The state of one call of <see cref="TrainingLoop.Run(ITrainingTask, IBatchSource, string, ITrainingGroup?, TrainingCallbacks?, CancellationToken)"/>.</summary>
    private sealed class LoopRun(ITrainingTask task, IBatchSource source, string runDir, ITrainingGroup? group,
        TrainingCallbacks? callbacks, CancellationToken ct)
    {
        private readonly TrainingLoopOptions o = task.Loop;
        private readonly List<GenerationChange> generations = new();
        private IGradientSync? sync;
        private TrainingRecorder? recorder;
        private int step;
        private string? lastCheckpoint;

        private bool IsRoot => sync?.IsRoot ?? true;

        public TrainingResult Execute()
        {
            if (o.Threads > 0)
                torch.set_num_threads(o.Threads);
            var plan = new StepPlan(source.Count, o.BatchSize, o.Epochs, o.Seed, o.PlanSalt);
            var lookahead = new StepPlan(source.Count, o.BatchSize, o.Epochs, o.Seed, o.PlanSalt);
            int maxSteps = plan.MaxSteps;
            Directory.CreateDirectory(runDir);
            step = Checkpoints.Resume(runDir, o.Seed, task.Model, task.Optimizer);
            lastCheckpoint = step > 0 ? Checkpoints.Latest(runDir) : null;
            if (group is not null)
                Join(group.Current, abandoned: null, "start", firstFailure: null);
            IReadOnlyList<(string, double)> lastTerms = Array.Empty<(string, double)>();
            int stepsThisRun = 0;
            bool stopped = false, left = false;
            try
            {
                while (true)
                {
                    ct.ThrowIfCancellationRequested();
                    try
                    {
                        if (step >= maxSteps || stopped)
                        {
                            Finish();
                            break;
                        }
                        var clock = Stopwatch.StartNew();
                        var (terms, lr, changeAfterStep, stopAsked) = Step(plan, lookahead, maxSteps);
                        double seconds = clock.Elapsed.TotalSeconds;
                        step++;
                        stepsThisRun++;
                        lastTerms = Named(terms);
                        Record(plan.Epoch(step - 1), lr, terms);
                        // the root alone counts the step (docs/METRICS.md): several ranks in one process count it once
                        if (IsRoot)
                            EcsNetMetrics.RecordStep(task.Name, seconds, o.BatchSize);
                        callbacks?.OnStep?.Invoke(new StepReport(task.Name, step, maxSteps, plan.Epoch(step - 1), lr, lastTerms,
                            group?.Generation ?? 0, sync?.Rank ?? 0, sync?.WorldSize ?? 1, seconds));
                        bool stopNow = (o.StopAfterSteps > 0 && stepsThisRun >= o.StopAfterSteps) || stopAsked;
                        if (TrainingRecorder.CheckpointDue(step, maxSteps, o.CheckpointEvery, stopNow))
                            lastCheckpoint = IsRoot ? Checkpoints.Save(runDir, step, o.Seed, task.Model, task.Optimizer) : Checkpoints.PathOf(runDir, step);
                        stopped = stopNow;
                        if (changeAfterStep && !stopped && step < maxSteps)
                        {
                            if (group!.LeaveRequested)
                            {
                                // a root that leaves (scale-down, a node shutting down) leaves a checkpoint behind
                                if (IsRoot && lastCheckpoint != Checkpoints.PathOf(runDir, step))
                                    lastCheckpoint = Checkpoints.Save(runDir, step, o.Seed, task.Model, task.Optimizer);
                                group.Leave();
                                left = true;
                                break;
                            }
                            NextGeneration(failure: null, abandoned: null, "membership changed");
                        }
                    }
                    catch (CollectiveFailedException e) when (group is not null && !ct.IsCancellationRequested)
                    {
                        NextGeneration(e, abandoned: step, $"collective failed at step {step}: {e.Message}");
                    }
                }
            }
            finally
            {
                recorder?.Dispose();
            }
            return new TrainingResult(task.Name, step, maxSteps, lastCheckpoint, step >= maxSteps, left, lastTerms, generations);
        }

        /// <summary>One step; returns the global batch's terms, the logged rate, whether the generation ends after it and whether training stops after it.</summary>
        private (double[] Terms, double Lr, bool Change, bool Stop) Step(StepPlan plan, StepPlan lookahead, int maxSteps)
        {
            var shard = sync is null ? new BatchShard(0, o.BatchSize, o.BatchSize) : BatchShard.Of(o.BatchSize, sync.Rank, sync.WorldSize);
            double lr = task.SetLearningRate(step, maxSteps);
            task.TrainMode();
            var now = Requests(plan, step, shard);
            var next = step + 1 < maxSteps ? Requests(lookahead, step + 1, shard) : null;
            var samples = source.Take(now, next, ct);
            using var scope = NewDisposeScope();
            task.Optimizer.zero_grad();
            var (loss, terms) = task.Loss(step, samples, shard, sync);
            if (terms.Length != task.Terms.Count)
                throw new InvalidOperationException($"{task.Name}: the loss returned {terms.Length} terms, the task names {task.Terms.Count}");
            bool change = false, stop = callbacks?.StopRequested?.Invoke() ?? false;
            if (sync is not null)
            {
                // one small all-reduce: the global batch's terms (so every rank sees a divergence at once), whether
                // any member knows the generation must end after this step, and whether any member was asked to stop
                var control = new double[terms.Length + 2];
                terms.CopyTo(control, 0);
                control[^2] = group!.ChangePending ? 1 : 0;
                control[^1] = stop ? 1 : 0;
                sync.SumAcrossRanks(control);
                for (int i = 0; i < terms.Length; i++)
                    terms[i] = control[i] / sync.WorldSize;
                change = control[^2] > 0;
                stop = control[^1] > 0;
            }
            if (!double.IsFinite(terms[0]))
                throw new TrainingDivergedException(task.Name, step, lastCheckpoint, Named(terms));
            if (sync is null)
                loss.backward();
            else
                sync.Backward(loss);
            task.Optimizer.step();
            return (terms, lr, change, stop);
        }

        private SampleRequest[] Requests(StepPlan plan, int s, BatchShard shard)
        {
            var requests = new SampleRequest[shard.Count];
            for (int k = 0; k < shard.Count; k++)
            {
                int position = shard.Start + k;   // the position in the global batch decides the image and its augmentation
                requests[k] = new SampleRequest(plan.SampleAt(s, position), Seeds.Mix(o.Seed, s, o.SampleSalt + position));
            }
            return requests;
        }

        /// <summary>The last checkpoint on disk (the root writes it if the last step did not), then every rank waits for it.</summary>
        private void Finish()
        {
            if (IsRoot)
            {
                if (lastCheckpoint is null || !Directory.Exists(lastCheckpoint))
                    lastCheckpoint = Checkpoints.Save(runDir, step, o.Seed, task.Model, task.Optimizer);
            }
            else
            {
                lastCheckpoint ??= Checkpoints.PathOf(runDir, step);
            }
            sync?.SumAcrossRanks(new double[1]);
        }

        private void NextGeneration(Exception? failure, int? abandoned, string reason)
        {
            var next = group!.NextGeneration(failure, ct);
            Join(next, abandoned, reason, failure);
        }

        /// <summary>
        /// Attaches the model to a generation's sync, agrees on the newest completed step and copies the state of
        /// the lowest rank that has it to every member. A member that dies meanwhile moves everybody on again.
        /// </summary>
        private void Join(IGradientSync next, int? abandoned, string reason, Exception? firstFailure)
        {
            while (true)
            {
                try
                {
                    sync = next;
                    sync.Attach(task.Model);
                    var steps = new double[sync.WorldSize];
                    steps[sync.Rank] = step;
                    sync.SumAcrossRanks(steps);
                    int resumed = (int)steps.Max();
                    int root = Array.IndexOf(steps, (double)resumed);
                    sync.BroadcastParameters(root);
                    BroadcastOptimizerState(task.Optimizer, sync, root);
                    step = resumed;
                    if (recorder is null || recorder.Writes != IsRoot)
                    {
                        recorder?.Dispose();
                        recorder = new TrainingRecorder(runDir, writes: IsRoot);
                    }
                    var change = new GenerationChange(group!.Generation, sync.Rank, sync.WorldSize, resumed, root, abandoned, reason);
                    generations.Add(change);
                    callbacks?.OnGeneration?.Invoke(change);
                    return;
                }
                catch (CollectiveFailedException e) when (!ct.IsCancellationRequested && group is not FixedTrainingGroup)
                {
                    next = group!.NextGeneration(e, ct);
                    reason = $"a member was lost while generation {group.Generation - 1} formed: {e.Message}";
                }
            }
        }

        private void Record(int epoch, double lr, double[] terms)
        {
            recorder ??= new TrainingRecorder(runDir, writes: IsRoot);
            if (!recorder.Writes)
                return;
            var line = new Dictionary<string, object> { ["step"] = step, ["epoch"] = epoch, ["lr"] = lr };
            if (sync is not null)
                line["world"] = sync.WorldSize;
            var scalars = new (string Tag, double Value)[terms.Length + 1];
            for (int i = 0; i < terms.Length; i++)
            {
                line[task.Terms[i].Name] = terms[i];
                scalars[i] = (task.Terms[i].Tag, terms[i]);
            }
            scalars[^1] = (task.LearningRateTag, lr);
            recorder.Record(step, line, scalars);
        }

        private (string, double)[] Named(double[] terms) => terms.Select((v, i) => (task.Terms[i].Name, v)).ToArray();
    }

    /// <summary>
    /// Copies the root's optimizer state (momentum buffers, step counts) to every rank, exactly: the serialised
    /// state travels as 24-bit integers held in floats, which an all-reduce-based broadcast carries unchanged.
    /// </summary>
    internal static void BroadcastOptimizerState(optim.Optimizer optimizer, IGradientSync sync, int root)
    {
        var helper = (TorchSharp.Modules.OptimizerHelper)optimizer;
        byte[] bytes = Array.Empty<byte>();
        if (sync.Rank == root)
        {
            using var stream = new MemoryStream();
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
                helper.save_state_dict(writer);
            bytes = stream.ToArray();
        }
        var length = new double[] { sync.Rank == root ? bytes.Length : 0 };
        sync.SumAcrossRanks(length);
        int n = (int)length[0];
        var carrier = new float[(n + 2) / 3];
        if (sync.Rank == root)
            for (int i = 0; i < carrier.Length; i++)
            {
                int b0 = bytes[3 * i], b1 = 3 * i + 1 < n ? bytes[3 * i + 1] : 0, b2 = 3 * i + 2 < n ? bytes[3 * i + 2] : 0;
                carrier[i] = b0 | (b1 << 8) | (b2 << 16);
            }
        sync.Broadcast(carrier, root);
        if (sync.Rank == root)
            return;
        bytes = new byte[n];
        for (int i = 0; i < carrier.Length; i++)
        {
            int v = (int)carrier[i];
            bytes[3 * i] = (byte)v;
            if (3 * i + 1 < n) bytes[3 * i + 1] = (byte)(v >> 8);
            if (3 * i + 2 < n) bytes[3 * i + 2] = (byte)(v >> 16);
        }
        using var input = new BinaryReader(new MemoryStream(bytes));
        helper.load_state_dict(input);
    }
}

/// <summary>A group whose membership never changes: its only generation is the sync it was given.</summary>
public sealed class FixedTrainingGroup(IGradientSync sync) : ITrainingGroup
{
    public IGradientSync Current => sync;

    public long Generation => 1;

    public bool ChangePending => false;

    public bool LeaveRequested => false;

    /// <summary>There is no next generation: the failure that ended this one is rethrown.</summary>
    public IGradientSync NextGeneration(Exception? failure, CancellationToken cancellationToken)
    {
        if (failure is not null)
            ExceptionDispatchInfo.Throw(failure);
        throw new GroupMembershipException("a fixed data-parallel group has no next generation");
    }

    public void Leave() { }
}
