using EcsNet.Core.Runtime;
using EcsNet.Data;
using TorchSharp;

namespace EcsNet.Core.Tests.Runtime;

public sealed class DevicesTests
{
    [Theory]
    [InlineData("cpu", "cpu")]
    [InlineData(" CPU ", "cpu")]
    [InlineData("cuda", "cuda:0")]
    [InlineData("cuda:3", "cuda:3")]
    public void Device_names_are_normalised(string text, string expected) => Assert.Equal(expected, Devices.Normalize(text));

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:x")]
    public void A_malformed_device_names_the_option_and_the_text(string text)
    {
        var e = Assert.Throws<BadInputException>(() => Devices.Normalize(text, "workers.device"));
        Assert.Equal("workers.device", e.Subject);
        Assert.Contains($"'{text}'", e.Message);
    }

    [Fact]
    public void The_cpu_resolves_to_the_cpu() => Assert.Equal(DeviceType.CPU, Devices.Resolve("cpu").type);

    [Fact]
    public void A_gpu_this_build_cannot_use_is_refused_with_the_way_out()
    {
        if (torch.cuda.is_available())
            return;   // a CUDA machine with the CUDA build: nothing to refuse
        var e = Assert.Throws<BadInputException>(() => Devices.Resolve("cuda:0"));
        Assert.Contains("EcsNetCuda=true", e.Message);
    }
}
