using System.Net;
using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.SharedMemory;

namespace EcsNet.AllReduce.Rendezvous;

/// <summary>How a rank joins a job (<see cref="RankSession"/>). Every figure can be set from the CLI.</summary>
public sealed record WorkerOptions
{
    /// <summary>The coordinator's URL, e.g. http://127.0.0.1:29500.</summary>
    public required string Coordinator { get; init; }

    /// <summary>"cpu" or "cuda:N", reported to the coordinator (training places the replica there).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>A fixed rank to claim (−1: any). A rank already held is refused.</summary>
    public int RequestedRank { get; init; } = -1;

    /// <summary>Where this worker's peer server listens; peers must be able to reach it.</summary>
    public IPAddress Bind { get; init; } = IPAddress.Loopback;

    /// <summary>Peer server port (0: any free port).</summary>
    public int Port { get; init; }

    /// <summary>
    /// Which machine this rank is on, as far as sharing memory goes: ranks with the same id exchange through
    /// shared memory (<see cref="RingOptions.Transport"/>). The default tells machines and /dev/shm mounts apart
    /// by itself; set it only to group ranks that share /dev/shm across containers.
    /// </summary>
    public string Host { get; init; } = HostIdentity.Current;

    public RingOptions Ring { get; init; } = new();
}
