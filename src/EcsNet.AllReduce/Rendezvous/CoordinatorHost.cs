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

    /// <summary>Raised for each rank the coordinator drops (worker died, lease expired, reported by a peer).</summary>
    public event Action<LostRank>? RankLost
    {
        add => state.RankLost += value;
        remove => state.RankLost -= value;
    }

    /// <summary>The current generation and every lost rank so far.</summary>
    public StatusReply Status() => state.Status();

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
