using EcsNet.Control.V1;
using EcsNet.Host.Tests.Control;
using EcsNet.Testing;

namespace EcsNet.Host.Tests.Metrics;

/// <summary>
/// An `ecsnet serve` host with two CPU workers that has run one tiny CAM training on both, with its <c>/metrics</c>
/// scraped before and after. The counters are process-wide, so the tests compare the two scrapes, and the collection
/// runs alone (no other host trains meanwhile).
/// </summary>
public sealed class TrainedNode : IAsyncLifetime
{
    private readonly TempDir dir = new();
    private ControlHost? host;

    internal PrometheusText Before { get; private set; } = null!;

    internal PrometheusText After { get; private set; } = null!;

    /// <summary>The run's events, from its submission to its end.</summary>
    internal IReadOnlyList<RunEvent> Events { get; private set; } = Array.Empty<RunEvent>();

    internal string HttpUrl => host!.Endpoints.HttpUrl;

    public async Task InitializeAsync()
    {
        host = await ControlHost.StartAsync(dir.File("runs"), workers: 2);
        Before = await PrometheusText.ScrapeAsync(HttpUrl);
        var client = host.Client();
        var run = await client.SubmitExperimentAsync(new SubmitExperimentRequest
        {
            Experiment = ControlHost.TinyExperiment("metrics", epochs: 2, workers: 2),
        });
        Events = await ControlHost.WatchAsync(client, run.Id);
        After = await PrometheusText.ScrapeAsync(HttpUrl);
    }

    public async Task DisposeAsync()
    {
        if (host is not null)
            await host.DisposeAsync();
        dir.Dispose();
    }

    /// <summary>How much <paramref name="name"/> (with <paramref name="labels"/>) grew during the run.</summary>
    internal double Growth(string name, params (string Label, string Value)[] labels) =>
        After.Value(name, labels) - Before.Value(name, labels);
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MetricsCollection : ICollectionFixture<TrainedNode>
{
    public const string Name = "metrics";
}
