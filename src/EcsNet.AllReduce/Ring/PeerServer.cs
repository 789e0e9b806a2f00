using System.Collections.Concurrent;
using System.Net;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace EcsNet.AllReduce.Ring;

/// <summary>
/// The small Kestrel gRPC server each worker hosts: its ring successor pulls the chunks it sends from here.
/// One server serves every generation of that worker; each ring attaches its sending end here.
/// </summary>
public sealed class PeerServer : IAsyncDisposable
{
    private readonly ConcurrentDictionary<long, OutboundLink> links = new();
    private readonly ConcurrentDictionary<long, TaskCompletionSource<OutboundLink>> waiting = new();
    private readonly object gate = new();
    private WebApplication? app;
    private long newestGeneration;

    private PeerServer() { }

    /// <summary>What peers dial: http://host:port.</summary>
    public string Address { get; private set; } = "";

    /// <summary>How long a stream for a generation this worker has not reached yet may wait for it.</summary>
    public TimeSpan AttachTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Starts listening on <paramref name="bind"/> (default 127.0.0.1), port 0 = any free port.</summary>
    public static async Task<PeerServer> StartAsync(IPAddress? bind = null, int port = 0, CancellationToken cancellationToken = default)
    {
        bind ??= IPAddress.Loopback;
        var server = new PeerServer();
        var builder = GrpcTuning.Host(bind, port);
        builder.Services.AddSingleton(server);
        var app = builder.Build();
        app.MapGrpcService<RingPeerService>();
        await app.StartAsync(cancellationToken);
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.app = app;
        server.Address = GrpcTuning.ClientAddress(bind, new Uri(bound).Port);
        return server;
    }

    internal void Attach(OutboundLink link)
    {
        lock (gate)
        {
            if (!links.TryAdd(link.Generation, link))
                throw new InvalidOperationException($"generation {link.Generation} already has a ring on this worker");
            newestGeneration = Math.Max(newestGeneration, link.Generation);
        }
        if (waiting.TryRemove(link.Generation, out var pending))
            pending.TrySetResult(link);
        // A peer waiting for an older generation waits for a ring this worker will never build (it skipped that
        // generation, e.g. two formed while it finished a step): tell it now rather than after AttachTimeout.
        foreach (var older in waiting.Keys.Where(g => g < link.Generation))
            if (waiting.TryRemove(older, out var stale))
                stale.TrySetException(new RpcException(new Status(StatusCode.FailedPrecondition,
                    $"stale generation {older}: this worker ({Address}) is in generation {link.Generation}")));
    }

    internal void Detach(OutboundLink link) => links.TryRemove(new KeyValuePair<long, OutboundLink>(link.Generation, link));

    /// <summary>The link that serves a stream of <paramref name="generation"/>; waits briefly if the ring is still forming.</summary>
    internal async Task<OutboundLink> LinkForAsync(long generation, CancellationToken cancellationToken)
    {
        Task<OutboundLink> pending;
        lock (gate)
        {
            if (links.TryGetValue(generation, out var link))
                return link;
            if (generation <= newestGeneration)
                throw new RpcException(new Status(StatusCode.FailedPrecondition,
                    $"stale generation {generation}: this worker ({Address}) is in generation {newestGeneration}"));
            pending = waiting.GetOrAdd(generation, _ => new TaskCompletionSource<OutboundLink>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
        try
        {
            return await pending.WaitAsync(AttachTimeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new RpcException(new Status(StatusCode.Unavailable,
                $"no ring for generation {generation} on this worker ({Address}) after {AttachTimeout.TotalSeconds:0.#} s"));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (app is not null)
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try { await app.StopAsync(stop.Token); } catch (OperationCanceledException) { }
            await app.DisposeAsync();
        }
    }
}
