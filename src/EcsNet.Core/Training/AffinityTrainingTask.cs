using EcsNet.Core.Nets;
using EcsNet.Data;
using EcsNet.Labels.Propagation;
using EcsNet.Labels.Samples;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EcsNet.Core.Training;

/// <summary>
/// Training of AffinityNet (docs/METHOD.md §4; PSA train_aff.py) for <see cref="TrainingLoop"/>: PSA's four
/// parameter groups (weights with decay, biases and norm scales without; the new layers at 10×/20×), its poly
/// schedule, and the affinity loss balanced over background-positive, foreground-positive and negative pairs of
/// each crop's stride-8 grid. The trunk's first stages are always frozen, its BatchNorms when
/// <see cref="AffinityNetOptions.FreezeBatchNorm"/> (PSA).
/// </summary>
public sealed class AffinityTrainingTask : ITrainingTask
{
    private static readonly LossTerm[] TermList =
    {
        new("Total", "aff/loss"), new("Background", "aff/loss_bg"), new("Foreground", "aff/loss_fg"), new("Negative", "aff/loss_neg"),
    };

    private readonly AffinityNet net;
    private readonly AffinityNetOptions options;
    private readonly SGD optimizer;
    private readonly double[] baseLr;

    /// <param name="device">Where to train (null: the CPU).</param>
    public AffinityTrainingTask(AffinityNet net, AffinityNetOptions options, int seed, Device? device = null)
    {
        options.Validate();
        this.net = net;
        this.options = options;
        Device = device ?? CPU;
        if (Device.type != DeviceType.CPU)
            net.to(Device);
        net.Backbone.FreezeStages();
        if (options.FreezeBatchNorm)
            net.Backbone.FreezeBatchNorm();

        var newParams = new HashSet<Parameter>(net.NewLayers.SelectMany(m => m.parameters()), ReferenceEqualityComparer.Instance);
        var trunkWeights = new List<Parameter>();
        var trunkBiases = new List<Parameter>();
        var newWeights = new List<Parameter>();
        var newBiases = new List<Parameter>();
        foreach (var (_, p) in net.named_parameters())
        {
            if (!p.requires_grad)
                continue;
            bool isNew = newParams.Contains(p);
            // Conv/linear kernels take weight decay; biases and norm scales do not (PSA groups 1/3 have wd 0).
            bool isWeight = p.dim() > 1;
            (isNew ? (isWeight ? newWeights : newBiases) : (isWeight ? trunkWeights : trunkBiases)).Add(p);
        }
        var groups = new List<SGD.ParamGroup>();
        var lrs = new List<double>();
        void Add(List<Parameter> ps, double mult, double wd)
        {
            if (ps.Count == 0)
                return;
            groups.Add(new SGD.ParamGroup(ps, options.LearningRate * mult, options.Momentum, 0, wd, false, false));
            lrs.Add(options.LearningRate * mult);
        }
        Add(trunkWeights, 1, options.WeightDecay);
        Add(trunkBiases, options.TrunkBiasLrMultiplier, 0);
        Add(newWeights, options.NewWeightLrMultiplier, options.WeightDecay);
        Add(newBiases, options.NewBiasLrMultiplier, 0);
        optimizer = torch.optim.SGD(groups, options.LearningRate, options.Momentum);
        baseLr = lrs.ToArray();
        Groups = new[]
        {
            ("trunk weights", trunkWeights.Count, options.LearningRate, options.WeightDecay),
            ("trunk biases", trunkBiases.Count, options.LearningRate * options.TrunkBiasLrMultiplier, 0.0),
            ("new weights", newWeights.Count, options.LearningRate * options.NewWeightLrMultiplier, options.WeightDecay),
            ("new biases", newBiases.Count, options.LearningRate * options.NewBiasLrMultiplier, 0.0),
        };
        // Sample seeds at positions 1000+ keep AffinityNet's crops apart from the CAM network's at the same seed.
        Loop = new TrainingLoopOptions(options.BatchSize, options.Epochs, seed, PlanSalt: -12, SampleSalt: 1000,
            options.CheckpointEvery, options.StopAfterSteps, options.Threads);
    }

    /// <summary>PSA's four parameter groups: name, tensors in it, base learning rate, weight decay.</summary>
    public IReadOnlyList<(string Name, int Tensors, double LearningRate, double WeightDecay)> Groups { get; }

    public string Name => "aff";
    public nn.Module Model => net;
    public Device Device { get; }
    public optim.Optimizer Optimizer => optimizer;
    public TrainingLoopOptions Loop { get; }
    public IReadOnlyList<LossTerm> Terms => TermList;
    public string LearningRateTag => "aff/lr";

    public double SetLearningRate(int step, int maxSteps)
    {
        double factor = options.PolyFactor(step, maxSteps);
        int g = 0;
        foreach (var group in optimizer.ParamGroups)
            group.LearningRate = baseLr[g++] * factor;
        return options.LearningRate * factor;
    }

    public void TrainMode()
    {
        net.train();
        if (options.FreezeBatchNorm)
            net.Backbone.FreezeBatchNorm();
    }

    public (Tensor Loss, double[] Terms) Loss(int step, IReadOnlyList<TrainingSample> samples, BatchShard shard, IGradientSync? sync)
    {
        int n = samples.Count, crop = options.CropSize;
        var images = new float[n * 3 * crop * crop];
        for (int i = 0; i < n; i++)
        {
            if (samples[i].Image.Length != 3 * crop * crop)
                throw new BadInputException($"affinity training sample {i} of step {step}",
                    $"has {samples[i].Image.Length} image values; a {crop}x{crop} crop needs {3 * crop * crop}");
            Array.Copy(samples[i].Image, 0, images, i * 3 * crop * crop, 3 * crop * crop);
        }
        var features = net.forward(tensor(images).view(n, 3, crop, crop).to(Device));
        int gh = (int)features.shape[2], gw = (int)features.shape[3];
        var pairs = net.PairsFor(gh, gw);
        var labels = new AffinityPairLabels[n];
        for (int i = 0; i < n; i++)
        {
            if (samples[i].Target.Length != gh * gw)
                throw new BadInputException($"affinity label map {i} of step {step}",
                    $"has {samples[i].Target.Length} cells, the feature grid is {gh}x{gw}");
            labels[i] = pairs.Labels(samples[i].Target);
        }
        var (bg, fg, neg) = AffinityNet.LabelTensors(labels, pairs, features.device);
        var aff = AffinityNet.PairAffinities(features, pairs);
        Func<double[], int>? sum = sync is null ? null : counts => { sync.SumAcrossRanks(counts); return sync.WorldSize; };
        var loss = AffinityNet.Loss(aff, bg, fg, neg, options, sum);
        return (loss.Total, new double[] { loss.Total.item<float>(), loss.Background.item<float>(), loss.Foreground.item<float>(), loss.Negative.item<float>() });
    }

    public void Dispose() => optimizer.Dispose();
}
