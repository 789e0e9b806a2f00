using EcsNet.Cluster;
using EcsNet.Control.Hosting;
using EcsNet.Control.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.DependencyInjection;
using V1Client = EcsNet.Control.V1.Control.ControlClient;

namespace EcsNet.Host.Tests.Control;

/// <summary>An in-process `ecsnet serve` host (every role, CPU workers, the control API on a free loopback port) and real gRPC clients of it.</summary>
internal sealed class ControlHost : IAsyncDisposable
{
    public const string Token = "test-token-0123456789abcdef";

    private readonly WebApplication app;
    private readonly List<GrpcChannel> channels = new();

    private ControlHost(WebApplication app)
    {
        this.app = app;
        Endpoints = app.Services.GetRequiredService<ControlEndpoints>();
    }

    public ControlEndpoints Endpoints { get; }

    public IServiceProvider Services => app.Services;

    public static async Task<ControlHost> StartAsync(string runsDir, string? registry = null, int workers = 1, Action<ControlOptions>? configure = null)
    {
        var app = NodeHost.Build(Array.Empty<string>(), new NodeHostSettings
        {
            Roles = ClusterRoles.All,
            Port = 0,
            LogLevel = LogLevel.Warning,
            ConfigureTraining = t => t.Devices = Enumerable.Repeat("cpu", workers).ToArray(),
            Control = c =>
            {
                c.Port = 0;
                c.Token = Token;
                c.RunsDir = runsDir;
                c.Registry = registry;
                configure?.Invoke(c);
            },
        });
        try
        {
            await app.StartAsync();
            return new ControlHost(app);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    public GrpcChannel Channel(HttpMessageHandler? handler = null)
    {
        var channel = GrpcChannel.ForAddress(Endpoints.ControlUrl, new GrpcChannelOptions { HttpHandler = handler });
        channels.Add(channel);
        return channel;
    }

    /// <summary>A client that sends <paramref name="token"/> (null: no authorization header).</summary>
    public V1Client Client(string? token = Token, HttpMessageHandler? handler = null)
    {
        var channel = Channel(handler);
        return token is null ? new V1Client(channel) : new V1Client(channel.Intercept(h =>
        {
            h.Add("authorization", $"Bearer {token}");
            return h;
        }));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var c in channels)
            c.Dispose();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await app.StopAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
        }
        await app.DisposeAsync();
    }

    /// <summary>A tiny synthetic experiment: the CAM stage only, small images, <paramref name="epochs"/> epochs of 2 steps.</summary>
    public static Experiment TinyExperiment(string name, int epochs = 1, int workers = 1, params string[] stages)
    {
        var e = new Experiment
        {
            Name = name, Workers = workers,
            Dataset = new Dataset { Synthetic = new SyntheticDataset { TrainImages = 8, ValImages = 2, Size = 64, Seed = 5 } },
            Hyperparameters = Struct.Parser.ParseJson($$"""
                { "camTraining": { "epochs": {{epochs}}, "batchSize": 4, "crop": 64, "checkpointEvery": 1 },
                  "camInference": { "scales": [1.0] }, "augment": { "longEdgeMin": 64, "longEdgeMax": 80 } }
                """),
        };
        e.Stages.AddRange(stages.Length > 0 ? stages : new[] { "cam" });
        return e;
    }

    /// <summary>Reads a run's events until it ends (or <paramref name="until"/> says stop), bounded in time.</summary>
    public static async Task<List<RunEvent>> WatchAsync(V1Client client, string run, Func<RunEvent, bool>? until = null, int seconds = 240)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        using var call = client.WatchRun(new RunRef { Run = run }, cancellationToken: limit.Token);
        var events = new List<RunEvent>();
        await foreach (var e in call.ResponseStream.ReadAllAsync(limit.Token))
        {
            events.Add(e);
            if (until?.Invoke(e) == true)
                break;
        }
        return events;
    }
}
