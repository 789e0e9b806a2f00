using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.SharedMemory;
using EcsNet.AllReduce.Topology;

namespace EcsNet.AllReduce.Tests.Topology;

/// <summary>
/// In-process ranks placed on made-up hosts: ranks with the same host name share memory (as ranks on one machine
/// do), ranks on different ones talk over their peer servers on 127.0.0.1.
/// </summary>
internal sealed class LocalTopology : IAsyncDisposable
{
    private static int nextJob;

    private LocalTopology(PeerServer[] servers, IGroupCollective[] groups)
    {
        Servers = servers;
        Groups = groups;
    }

    public PeerServer[] Servers { get; }

    public IGroupCollective[] Groups { get; }

    public static readonly RingOptions Fast = new() { PeerTimeout = TimeSpan.FromSeconds(20), ConnectTimeout = TimeSpan.FromSeconds(10), ShmSlotBytes = 4096 };

    /// <summary><paramref name="hosts"/>[r] is rank r's host, e.g. "a", "a", "b".</summary>
    public static async Task<LocalTopology> StartAsync(string[] hosts, RingOptions? options = null, long generation = 1)
    {
        // a host id of its own per test run, so that tests running at the same time never share a segment name
        var job = $"test-{Environment.ProcessId}-{Interlocked.Increment(ref nextJob)}";
        var servers = new PeerServer[hosts.Length];
        for (var r = 0; r < hosts.Length; r++)
            servers[r] = await PeerServer.StartAsync();
        var members = servers.Select((s, r) => new RingMember(r, s.Address, "cpu", $"{job}/{hosts[r]}")).ToArray();
        var groups = servers.Select((s, r) => GroupCollectives.Join(s, generation, r, members, options ?? Fast)).ToArray();
        return new LocalTopology(servers, groups);
    }

    /// <summary>Runs one call per rank concurrently and waits for all.</summary>
    public Task AllAsync(Func<IGroupCollective, int, Task> perRank) =>
        Task.WhenAll(Groups.Select((group, r) => Task.Run(() => perRank(group, r))));

    /// <summary>Segments of this process's tests still named in the shared-memory folder.</summary>
    public static string[] Segments() => Directory.GetFiles(SharedMemorySegment.Folder, SharedMemorySegment.Prefix + "*" + SharedMemorySegment.Suffix);

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Groups.Select(g => g.DisposeAsync().AsTask()));
        await Task.WhenAll(Servers.Select(s => s.DisposeAsync().AsTask()));
    }
}
