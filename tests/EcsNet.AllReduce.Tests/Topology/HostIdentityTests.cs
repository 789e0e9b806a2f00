using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.SharedMemory;
using EcsNet.AllReduce.Topology;

namespace EcsNet.AllReduce.Tests.Topology;

public sealed class HostIdentityTests
{
    [Fact]
    public void The_host_id_names_the_machine_and_is_stable_within_a_process()
    {
        Assert.StartsWith(Environment.MachineName, HostIdentity.Current);
        Assert.Equal(HostIdentity.Current, HostIdentity.Current);
        if (OperatingSystem.IsLinux())
            Assert.Matches(@"/[0-9a-f]{12}$", HostIdentity.Current); // boot id and /dev/shm mount, hashed
    }

    [Theory]
    [InlineData("auto", Transport.Auto)]
    [InlineData(" SHM ", Transport.Shm)]
    [InlineData("grpc", Transport.Grpc)]
    public void Transport_names_parse_in_any_case(string name, Transport expected)
    {
        Assert.True(TransportNames.TryParse(name, out var parsed));
        Assert.Equal(expected, parsed);
        Assert.Equal(name.Trim().ToLowerInvariant(), TransportNames.Name(parsed));
    }

    [Fact]
    public void Unknown_transports_and_bad_slot_sizes_are_refused()
    {
        Assert.False(TransportNames.TryParse("tcp", out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RingOptions { ShmSlotBytes = 1000 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new RingOptions { Transport = (Transport)7 }.Validate());
    }
}
