using EcsNet.AllReduce.DataParallel;
using EcsNet.AllReduce.Tests.Rendezvous;
using EcsNet.Core.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.AllReduce.Tests.DataParallel;

/// <summary>
/// The elastic training loop Core runs over an <see cref="ITrainingGroup"/>, on a small regression model: one
/// control all-reduce per step carries the loss and the change flag; after a flagged step every member switches
/// (or the one asked to leave, leaves); a failed collective switches at once and redoes the step. After each
/// switch the members agree on the newest step and copy the weights from a member that has it.
/// </summary>
internal sealed class ElasticLoop
{
    /// <summary>Divisible by 2 and 3: every world size here gives equal shards, so each step is one full-batch SGD step.</summary>
    public const int GlobalBatch = 12;

    public const double LearningRate = 0.1;

    private readonly Action<ElasticLoop>? beforeStep;
    private readonly int total;
    private bool hasState;

    private ElasticLoop(ElasticTrainingGroup group, int total, bool hasState, Action<ElasticLoop>? beforeStep)
    {
        Group = group;
        this.total = total;
        this.hasState = hasState;
        this.beforeStep = beforeStep;
        // a joiner starts from other weights: what it trains with must come from the members
        Model = NewModel(hasState ? 1f : -3f);
    }

    /// <summary>One completed step as this member saw it; <paramref name="Switching"/>: the control sum asked for a change.</summary>
    public sealed record StepRecord(long Step, long Generation, int Rank, int WorldSize, bool Switching);

    public ElasticTrainingGroup Group { get; }

    public Module<Tensor, Tensor> Model { get; }

    /// <summary>Steps completed (agreed with the others after each switch).</summary>
    public long Step { get; private set; }

    public List<StepRecord> Steps { get; } = new();

    public List<PeerFailedException> Failures { get; } = new();

    public bool Left { get; private set; }

    /// <summary>Runs the loop on a thread of its own until <paramref name="total"/> steps, or until this member leaves.</summary>
    public static Task<ElasticLoop> Start(ElasticTrainingGroup group, int total, bool hasState, Action<ElasticLoop>? beforeStep = null) =>
        LocalJob.OnThread(() =>
        {
            var loop = new ElasticLoop(group, total, hasState, beforeStep);
            loop.Run();
            return loop;
        });

    public static Module<Tensor, Tensor> NewModel(float scale)
    {
        var fc = Linear(4, 2);
        using (no_grad())
        {
            fc.weight!.copy_(arange(8, dtype: ScalarType.Float32).reshape(2, 4) * (0.05f * scale));
            fc.bias!.copy_(tensor(new[] { 0.1f * scale, -0.2f * scale }));
        }
        return Sequential(("fc", fc));
    }

    public static (Tensor X, Tensor Y) Batch() =>
        (arange(GlobalBatch * 4, dtype: ScalarType.Float32).reshape(GlobalBatch, 4) / 48f,
         sin(arange(GlobalBatch * 2, dtype: ScalarType.Float32)).reshape(GlobalBatch, 2));

    /// <summary>The same steps in one process on the whole batch.</summary>
    public static float[][] Reference(int steps)
    {
        var model = NewModel(1f);
        var (x, y) = Batch();
        var sgd = optim.SGD(model.parameters(), LearningRate);
        for (var i = 0; i < steps; i++)
        {
            sgd.zero_grad();
            using var scope = NewDisposeScope();
            functional.mse_loss(model.call(x), y).backward();
            sgd.step();
        }
        return Weights(model);
    }

    public static float[][] Weights(Module module) =>
        module.parameters().Select(p => p.detach().data<float>().ToArray()).ToArray();

    private void Run()
    {
        var (x, y) = Batch();
        var sgd = optim.SGD(Model.parameters(), LearningRate);
        IGradientSync sync = Group.Current;
        var joined = false;
        while (true)
        {
            try
            {
                if (!joined)
                {
                    Join(sync);
                    joined = true;
                }
                if (Step >= total)
                    return;
                beforeStep?.Invoke(this);
                sgd.zero_grad();
                bool change;
                using (NewDisposeScope())
                {
                    var (start, count) = DistributedDataParallel.Shard(GlobalBatch, sync.Rank, sync.WorldSize);
                    var loss = functional.mse_loss(Model.call(x.narrow(0, start, count)), y.narrow(0, start, count));
                    var control = new[] { (double)loss.item<float>(), Group.ChangePending ? 1 : 0 };
                    sync.SumAcrossRanks(control);
                    sync.Backward(loss);
                    sgd.step();
                    change = control[1] > 0;
                }
                Step++;
                Steps.Add(new StepRecord(Step, Group.Generation, sync.Rank, sync.WorldSize, change));
                if (change)
                {
                    if (Group.LeaveRequested)
                    {
                        Group.Leave();
                        Left = true;
                        return;
                    }
                    sync = Group.NextGeneration(null, CancellationToken.None);
                    joined = false;
                }
            }
            catch (PeerFailedException e)
            {
                Failures.Add(e);
                sync = Group.NextGeneration(e, CancellationToken.None);
                joined = false;
            }
        }
    }

    /// <summary>Attaches the model, agrees on the newest step and copies the weights from the lowest rank that has it.</summary>
    private void Join(IGradientSync sync)
    {
        sync.Attach(Model);
        var steps = new double[sync.WorldSize];
        steps[sync.Rank] = hasState ? Step + 1 : 0;
        sync.SumAcrossRanks(steps);
        var root = Array.IndexOf(steps, steps.Max());
        Step = (long)steps[root] - 1;
        sync.BroadcastParameters(root);
        hasState = true;
    }
}
