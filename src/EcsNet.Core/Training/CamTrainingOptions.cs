namespace EcsNet.Core.Training;

/// <summary>How the trunk's BatchNorm layers normalise during CAM training.</summary>
public enum BatchNormMode
{
    /// <summary>
    /// Statistics of the batch being trained (PyTorch's train mode). Data-parallel, each rank normalises
    /// with its own shard's statistics (DDP without SyncBatchNorm), so N ranks do not train exactly like one
    /// process on the global batch, and each rank's running statistics drift apart (rank 0's are saved).
    /// </summary>
    Batch,

    /// <summary>
    /// The running statistics, fixed (eval-mode BatchNorm); scale and shift still learn. Each sample is then
    /// normalised independently of the others, so data-parallel training on shards equals single-process
    /// training on the global batch (the equivalence check of docs/BENCHMARKS-allreduce.md uses it).
    /// </summary>
    Eval,
}

/// <summary>
/// Schedule of the CAM network (docs/METHOD.md §1, paper §4.2, SEAM's recipe): batch 8, 8 epochs, warm-up lr 0.01 for
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

    /// <summary>
    /// Freeze the trunk's first stages (ResNet-38's conv1a/b2*, ResNet-18's conv1/layer1) and every BatchNorm when it
    /// starts from ImageNet weights (SEAM/PSA). Null (the default) is "auto": frozen exactly when ImageNet weights are
    /// loaded, which for the CAM network is the same as true; false trains every layer and BatchNorm even then.
    /// A trunk from scratch is never frozen.
    /// </summary>
    public bool? FreezePretrained { get; init; }

    /// <summary>Whether a trunk that did (<paramref name="pretrained"/>) or did not load ImageNet weights is frozen.</summary>
    public bool FreezesTrunk(bool pretrained) => pretrained && (FreezePretrained ?? true);

    /// <summary>
    /// BatchNorm behaviour of layers that <see cref="FreezePretrained"/> leaves trainable: batch statistics
    /// (PyTorch's default) or fixed running statistics (exact data-parallel equivalence).
    /// </summary>
    public BatchNormMode BatchNormMode { get; init; } = BatchNormMode.Batch;

    public int Seed { get; init; } = 0;

    /// <summary>Save a checkpoint every this many steps (and at the end).</summary>
    public int CheckpointEvery { get; init; } = 100;

    /// <summary>Intra-op threads for LibTorch (0: leave the default).</summary>
    public int Threads { get; init; } = 0;

    /// <summary>Stop after this many steps in this invocation (for tests and resume checks; 0 = run to the end).</summary>
    public int StopAfterSteps { get; init; } = 0;

    /// <summary>Rejects values no run can use, naming the option.</summary>
    public void Validate()
    {
        static void Need(bool ok, string key, string what)
        {
            if (!ok) throw new EcsNet.Data.BadInputException($"camTraining.{key}", what);
        }
        Need(Epochs >= 1, "epochs", $"must be at least 1, got {Epochs}");
        Need(BatchSize >= 1, "batchSize", $"must be at least 1, got {BatchSize}");
        Need(Crop >= 16, "crop", $"must be at least 16 pixels, got {Crop}");
        Need(LearningRate > 0 && double.IsFinite(LearningRate), "learningRate", $"must be positive, got {LearningRate}");
        Need(WarmupSteps >= 0, "warmupSteps", $"must not be negative, got {WarmupSteps}");
        Need(WeightDecay >= 0, "weightDecay", $"must not be negative, got {WeightDecay}");
        Need(Momentum is >= 0 and < 1, "momentum", $"must lie in [0, 1), got {Momentum}");
        Need(CheckpointEvery >= 1, "checkpointEvery", $"must be at least 1, got {CheckpointEvery}");
    }
}
