namespace EcsNet.Bench;

/// <summary>
/// The training-step benchmark's workload. Every default is the peer's (torch_cpu_step.py, its documented
/// workload and argument defaults; docs/BENCHMARKS.md, "Peers"), so `ecsnet bench step` and the peer run the
/// same thing with no flags.
/// </summary>
public sealed record StepBenchmarkOptions
{
    /// <summary>Intra-op threads (torch.set_num_threads). Peer default 2; 0 leaves LibTorch's default.</summary>
    public int Threads { get; init; } = 2;

    /// <summary>Images per step (peer: 4).</summary>
    public int Batch { get; init; } = 4;

    /// <summary>Square input side in pixels (peer: 224, giving a 7×7 feature map at stride 32).</summary>
    public int Size { get; init; } = 224;

    /// <summary>Timed steps; the median is reported (peer: 10).</summary>
    public int Steps { get; init; } = 10;

    /// <summary>Untimed steps before timing (peer: 3).</summary>
    public int Warmup { get; init; } = 3;

    /// <summary>Untimed eval forwards before the eval timing (peer: 2, fixed).</summary>
    public int EvalWarmup { get; init; } = 2;

    /// <summary>Class maps of the 3×3 classifier (peer: 20, the VOC foreground classes).</summary>
    public int Classes { get; init; } = 20;

    /// <summary>Chance that a class is present in the random multi-hot labels (peer: rand &lt; 0.15).</summary>
    public double LabelDensity { get; init; } = 0.15;

    /// <summary>SGD learning rate (peer: 0.01).</summary>
    public double LearningRate { get; init; } = 0.01;

    /// <summary>SGD momentum (peer: 0.9).</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>SGD weight decay (peer: 1e-4).</summary>
    public double WeightDecay { get; init; } = 1e-4;

    /// <summary>torch.manual_seed before building the net and the batch (peer: 0).</summary>
    public int Seed { get; init; } = 0;
}
