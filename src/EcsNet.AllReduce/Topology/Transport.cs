namespace EcsNet.AllReduce.Topology;

/// <summary>The data plane of a job's collectives (docs/SCALING.md). Every rank of a job must use the same.</summary>
public enum Transport
{
    /// <summary>
    /// Shared memory among the ranks that share a host, gRPC between hosts: a node's ranks reduce into their
    /// leader, the leaders all-reduce on the gRPC ring, and each leader broadcasts back (a hierarchical
    /// all-reduce). With one host it is shared memory only; with one rank per host it is the gRPC ring.
    /// </summary>
    Auto,

    /// <summary>Shared memory only: every rank must be on the same host (a generation that spans hosts fails).</summary>
    Shm,

    /// <summary>The flat gRPC ring for every rank, co-located or not (as before topology awareness).</summary>
    Grpc,
}

/// <summary>The names of <see cref="Transport"/> as the CLI, the experiment file and the coordinator spell them.</summary>
public static class TransportNames
{
    public const string List = "auto, shm, grpc";

    public static string Name(Transport transport) => transport.ToString().ToLowerInvariant();

    public static bool IsKnown(string name) => TryParse(name, out _);

    public static bool TryParse(string? name, out Transport transport)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "auto":
                transport = Transport.Auto;
                return true;
            case "shm":
                transport = Transport.Shm;
                return true;
            case "grpc":
                transport = Transport.Grpc;
                return true;
            default:
                transport = Transport.Auto;
                return false;
        }
    }
}
