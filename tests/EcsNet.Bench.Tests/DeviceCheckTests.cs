namespace EcsNet.Bench.Tests;

public sealed class DeviceCheckTests
{
    /// <summary>The CPU against itself: the same start and samples give bit-identical weights, and training moved them.</summary>
    [Fact]
    public void The_cpu_against_itself_ends_with_identical_weights()
    {
        var r = DeviceCheck.Run("cpu", steps: 3, crop: 32, batch: 2);
        Assert.Equal(3, r.Cpu.Steps);
        Assert.Equal(3, r.Other.Steps);
        Assert.Equal(0.0, r.MaxAbsWeightDifference);
        Assert.True(r.MaxAbsWeight > 0);
        Assert.Equal(r.Cpu.Weights.Length, r.Other.Weights.Length);
    }
}
