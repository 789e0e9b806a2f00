using EcsNet.AllReduce.Ring;

namespace EcsNet.AllReduce.Tests.Ring;

/// <summary>N in-process peers on 127.0.0.1, each with its own peer server and ring.</summary>
internal sealed class LocalRing : IAsyncDisposable
{
    private LocalRing(PeerServer[] servers, RingAllReduce[] rings)
    {
        Servers = servers;
        Rings = rings;
    }

    public PeerServer[] Servers { get; }

    public RingAllReduce[] Rings { get; }

    public static readonly RingOptions Fast = new() { PeerTimeout = TimeSpan.FromSeconds(20), ConnectTimeout = TimeSpan.FromSeconds(10) };

    public static Task<LocalRing> StartAsync(int world, RingOptions? options = null, long generation = 1) =>
        StartAsync(world, _ => options ?? Fast, generation);

    public static async Task<LocalRing> StartAsync(int world, Func<int, RingOptions> optionsOf, long generation = 1)
    {
        var servers = new PeerServer[world];
        for (var r = 0; r < world; r++)
            servers[r] = await PeerServer.StartAsync();
        var members = servers.Select((s, r) => new RingMember(r, s.Address)).ToArray();
        var rings = servers.Select((s, r) => RingAllReduce.Join(s, generation, r, members, optionsOf(r))).ToArray();
        return new LocalRing(servers, rings);
    }

    /// <summary>Runs one call per rank concurrently and waits for all (bounded by the test's own timeout).</summary>
    public Task AllAsync(Func<RingAllReduce, int, Task> perRank) =>
        Task.WhenAll(Rings.Select((ring, r) => Task.Run(() => perRank(ring, r))));

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Rings.Select(ring => ring.DisposeAsync().AsTask()));
        await Task.WhenAll(Servers.Select(server => server.DisposeAsync().AsTask()));
    }
}
