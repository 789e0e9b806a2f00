namespace EcsNet.Core;

/// <summary>
/// Schedule of the CAM network (SPEC §1, paper §4.2, SEAM's recipe): batch 8, 8 epochs, warm-up lr 0.01 for
/// 100 steps then 0.05 poly (γ 0.9), SGD with weight decay 5e-4, 10× lr on new layers.
/// </summary>
public sealed record CamTrainingOptions
{
    public int Epochs { get; init; } = 8;
    public int BatchSize { get; init; } = 8;
    public int Crop { get; init; } = 448;
    public double LearningRate { get; init; } = 0.05;
    public int WarmupSteps { get; init; } = 100;
    public double WarmupLearningRate { get; init; } = 0.01;
    public double PolyPower { get; init; } = 0.9;
    public double WeightDecay { get; init; } = 5e-4;

    /// <summary>
    /// SGD momentum. 0 is the reference preset: SEAM/PSA's PolyOptimizer passes weight decay as SGD's third
    /// positional argument, which is momentum, so the published numbers ran with momentum ≈ 5e-4 (none).
    /// Use 0.9 for plain SGD with momentum.
    /// </summary>
    public double Momentum { get; init; } = 0.0;

    /// <summary>Learning-rate multiplier of the layers added on top of the trunk (paper: 10×).</summary>
    public double NewLayerLrMultiplier { get; init; } = 10.0;

    /// <summary>Freeze conv1a/b2* and every BatchNorm (SEAM/PSA; meaningful with pretrained weights).</summary>
    public bool FreezePretrained { get; init; } = true;

    public int Seed { get; init; } = 0;

    /// <summary>Save a checkpoint every this many steps (and at the end).</summary>
    public int CheckpointEvery { get; init; } = 100;

    /// <summary>Intra-op threads for LibTorch (0: leave the default).</summary>
    public int Threads { get; init; } = 0;

    /// <summary>Stop after this many steps in this invocation (for tests and resume checks; 0 = run to the end).</summary>
    public int StopAfterSteps { get; init; } = 0;
}
