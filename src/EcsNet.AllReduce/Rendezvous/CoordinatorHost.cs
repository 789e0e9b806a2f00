using System.Net;
using EcsNet.AllReduce.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace EcsNet.AllReduce.Rendezvous;

/// <summary>A running coordinator: the gRPC service on Kestrel plus the lease timer.</summary>
public sealed class CoordinatorHost : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly CoordinatorState state;
    private readonly CancellationTokenSource stop = new();
    private readonly Task leases;

    private CoordinatorHost(WebApplication app, CoordinatorState state, string address)
    {
        this.app = app;
        this.state = state;
        Address = address;
        leases = Task.Run(ExpireLoopAsync);
    }

    /// <summary>What workers dial: http://host:port.</summary>
    public string Address { get; }

    /// <summary>
    /// Raised for each rank the coordinator loses (worker died, lease expired, reported by a peer, dropped with
    /// <see cref="DropWorkers"/>); not for a worker that leaves. Handlers run on the thread that caused the
    /// change, one at a time and in order, after the coordinator's lock is released: keep them short and never
    /// wait in them for another thread (post a message instead, e.g. an actor's Tell).
    /// </summary>
    public event Action<LostRank>? RankLost
    {
        add => state.RankLost += value;
        remove => state.RankLost -= value;
    }

    /// <summary>
    /// Raised for each generation that forms (joiners, losses, departures; world size 0: too few workers are left
    /// and the job waits for joiners). <see cref="Generation.Lost"/> lists the ranks lost since the previous one.
    /// Same threading as <see cref="RankLost"/>, and ordered with it.
    /// </summary>
    public event Action<Generation>? GenerationFormed
    {
        add => state.GenerationFormed += value;
        remove => state.GenerationFormed -= value;
    }

    /// <summary>The current generation and every lost rank so far.</summary>
    public StatusReply Status() => state.Status();

    /// <summary>
    /// Drops one worker from the job from inside this process, e.g. when the cluster's failure detector finds its
    /// node unreachable; <paramref name="reason"/> is logged with the lost rank and reaches the surviving ranks,
    /// which abort the collective they are in and move to the new generation. False if no such worker is
    /// registered (it left or was dropped already).
    /// </summary>
    public bool DropWorker(string workerId, string reason) => state.DropWorkers(new[] { workerId }, reason) > 0;

    /// <summary>
    /// Drops several workers at once (e.g. every rank of a node that went away) with one new generation for all
    /// of them, rather than one generation per rank. Unknown ids are skipped; returns how many were dropped.
    /// </summary>
    public int DropWorkers(IEnumerable<string> workerIds, string reason) => state.DropWorkers(workerIds, reason);

    /// <summary>Listens on <paramref name="bind"/>:<paramref name="port"/> (port 0: any free port).</summary>
    public static async Task<CoordinatorHost> StartAsync(CoordinatorOptions options, IPAddress? bind = null, int port = 0, CancellationToken cancellationToken = default)
    {
        bind ??= IPAddress.Loopback;
        var state = new CoordinatorState(options);
        var builder = GrpcTuning.Host(bind, port);
        builder.Services.AddSingleton(state);
        var app = builder.Build();
        app.MapGrpcService<CoordinatorService>();
        await app.StartAsync(cancellationToken);
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new CoordinatorHost(app, state, GrpcTuning.ClientAddress(bind, new Uri(bound).Port));
    }

    /// <summary>Parses "host:port", "http://host:port" or ":port" into a bind address and port.</summary>
    public static (IPAddress Address, int Port) ParseListen(string listen)
    {
        var text = listen.Contains("://", StringComparison.Ordinal) ? listen : "http://" + (listen.StartsWith(':') ? "0.0.0.0" + listen : listen);
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
            throw new FormatException($"listen address '{listen}' is not host:port");
        var host = uri.Host is "localhost" ? "127.0.0.1" : uri.Host.Trim('[', ']');
        if (!IPAddress.TryParse(host, out var ip))
            throw new FormatException($"listen address '{listen}': '{uri.Host}' is not an IP address");
        return (ip, uri.IsDefaultPort && !listen.Contains(":80", StringComparison.Ordinal) ? 0 : uri.Port);
    }

    private async Task ExpireLoopAsync()
    {
        var period = state.Options.HeartbeatInterval / 2;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(period, stop.Token);
                state.ExpireLeases();
            }
        }
        catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        await leases;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try { await app.StopAsync(timeout.Token); } catch (OperationCanceledException) { }
        await app.DisposeAsync();
        stop.Dispose();
    }
}
