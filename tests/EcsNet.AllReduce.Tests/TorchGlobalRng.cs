namespace EcsNet.AllReduce.Tests;

/// <summary>
/// Test classes that seed or draw from torch's process-wide generator (the CAM trainer re-seeds it every
/// step) run one at a time: in parallel they would change each other's initial weights and batches.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchGlobalRng
{
    public const string Name = "torch global generator";
}
