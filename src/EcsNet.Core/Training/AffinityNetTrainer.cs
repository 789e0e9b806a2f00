using EcsNet.Core.Nets;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Labels.Propagation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace EcsNet.Core.Training;

/// <summary>
/// One SGD run of AffinityNet with PSA's four parameter groups and poly schedule. The caller feeds batches of
/// normalised image crops <c>[B, 3, S, S]</c> with the affinity label maps of their stride-8 grids.
/// </summary>
public sealed class AffinityNetTrainer : IDisposable
{
    private readonly AffinityNet net;
    private readonly SGD optimizer;
    private readonly double[] baseLr;

    public AffinityNetTrainer(AffinityNet net, long maxSteps, AffinityNetOptions? options = null)
    {
        if (maxSteps < 1)
            throw new BadInputException("affinity net training", $"max steps must be positive (got {maxSteps})");
        this.net = net;
        Options = options ?? net.Options;
        MaxSteps = maxSteps;
        net.Backbone.FreezeStages();
        if (Options.FreezeBatchNorm)
            net.Backbone.FreezeBatchNorm();

        var o = Options;
        var newParams = new HashSet<Parameter>(net.NewLayers.SelectMany(m => m.parameters()), ReferenceEqualityComparer.Instance);
        var trunkWeights = new List<Parameter>();
        var trunkBiases = new List<Parameter>();
        var newWeights = new List<Parameter>();
        var newBiases = new List<Parameter>();
        foreach (var (name, p) in net.named_parameters())
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
            groups.Add(new SGD.ParamGroup(ps, o.LearningRate * mult, o.Momentum, 0, wd, false, false));
            lrs.Add(o.LearningRate * mult);
        }
        Add(trunkWeights, 1, o.WeightDecay);
        Add(trunkBiases, o.TrunkBiasLrMultiplier, 0);
        Add(newWeights, o.NewWeightLrMultiplier, o.WeightDecay);
        Add(newBiases, o.NewBiasLrMultiplier, 0);
        optimizer = torch.optim.SGD(groups, o.LearningRate, o.Momentum);
        baseLr = lrs.ToArray();
        Groups = new[]
        {
            ("trunk weights", trunkWeights.Count, o.LearningRate, o.WeightDecay),
            ("trunk biases", trunkBiases.Count, o.LearningRate * o.TrunkBiasLrMultiplier, 0.0),
            ("new weights", newWeights.Count, o.LearningRate * o.NewWeightLrMultiplier, o.WeightDecay),
            ("new biases", newBiases.Count, o.LearningRate * o.NewBiasLrMultiplier, 0.0),
        };
    }

    /// <summary>PSA's four parameter groups: name, tensors in it, base learning rate, weight decay.</summary>
    public IReadOnlyList<(string Name, int Tensors, double LearningRate, double WeightDecay)> Groups { get; }

    public AffinityNetOptions Options { get; }
    public long MaxSteps { get; }
    public long Step { get; private set; }

    /// <summary>Learning rate of the trunk-weight group at the current step.</summary>
    public double LearningRate => Options.LearningRate * Options.PolyFactor(Step, MaxSteps);

    /// <summary>One step; returns (total, bg, fg, neg) loss values.</summary>
    public (float Total, float Background, float Foreground, float Negative) TrainStep(Tensor images, IReadOnlyList<LabelMask> labelMaps)
    {
        if (labelMaps.Count != images.shape[0])
            throw new BadInputException("affinity net batch", $"{images.shape[0]} images but {labelMaps.Count} label maps");
        using var scope = NewDisposeScope();
        net.train();
        if (Options.FreezeBatchNorm)
            net.Backbone.FreezeBatchNorm();
        var features = net.forward(images);
        int gh = (int)features.shape[2], gw = (int)features.shape[3];
        var pairs = net.PairsFor(gh, gw);
        var labels = new AffinityPairLabels[labelMaps.Count];
        for (int i = 0; i < labelMaps.Count; i++)
        {
            if (labelMaps[i].Height != gh || labelMaps[i].Width != gw)
                throw new BadInputException($"affinity label map {i}",
                    $"is {labelMaps[i].Height}x{labelMaps[i].Width}, the feature grid is {gh}x{gw}");
            labels[i] = pairs.Labels(labelMaps[i].Labels);
        }
        var (bg, fg, neg) = AffinityNet.LabelTensors(labels, pairs, features.device);
        var aff = AffinityNet.PairAffinities(features, pairs);
        var loss = AffinityNet.Loss(aff, bg, fg, neg, Options);

        double factor = Options.PolyFactor(Step, MaxSteps);
        int g = 0;
        foreach (var group in optimizer.ParamGroups)
            group.LearningRate = baseLr[g++] * factor;
        optimizer.zero_grad();
        loss.Total.backward();
        optimizer.step();
        Step++;
        return (loss.Total.item<float>(), loss.Background.item<float>(), loss.Foreground.item<float>(), loss.Negative.item<float>());
    }

    /// <summary>Saves net, optimizer and step (<see cref="Checkpoints"/>).</summary>
    public string SaveCheckpoint(string runDir, int seed) => Checkpoints.Save(runDir, (int)Step, seed, net, optimizer);

    /// <summary>Restores the latest checkpoint of the run, if any; the step continues from it.</summary>
    public void Resume(string runDir, int seed) => Step = Checkpoints.Resume(runDir, seed, net, optimizer);

    public void Dispose() => optimizer.Dispose();
}
