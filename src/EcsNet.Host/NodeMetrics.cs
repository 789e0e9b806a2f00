using EcsNet.Core.Runtime;
using Prometheus;

namespace EcsNet.Host;

/// <summary>
/// What a node serves at <see cref="Path"/> (docs/METRICS.md): a Prometheus registry of its own with the
/// <see cref="EcsNetMetrics"/> meter, published by prometheus-net's meter adapter, and the process's .NET statistics
/// (CPU, memory, GC). Other meters (ASP.NET Core's, Kestrel's) are left out, and so is everything in prometheus-net's
/// process-wide default registry.
/// </summary>
public sealed class NodeMetrics : IDisposable
{
    public const string Path = "/metrics";

    /// <summary>
    /// A series of the adapter that sees no new value this long is dropped (prometheus-net, MeterAdapterOptions). The
    /// observable instruments are read at every scrape and never age; the step-time histogram of a stage goes after a
    /// day without a step of it (the longest the adapter allows) and starts again from zero, which rate() takes as a
    /// counter reset.
    /// </summary>
    private static readonly TimeSpan KeepSeries = TimeSpan.FromDays(1);

    private readonly IDisposable adapter;

    public NodeMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        // reading the meter creates the instruments before the adapter starts listening, so the first scrape has them all
        var meter = EcsNetMetrics.Meter;
        adapter = MeterAdapter.StartListening(new MeterAdapterOptions
        {
            Registry = Registry,
            MetricFactory = Metrics.WithCustomRegistry(Registry),
            InstrumentFilterPredicate = instrument => ReferenceEquals(instrument.Meter, meter),
            MetricsExpireAfter = KeepSeries,
            ResolveHistogramBuckets = _ => EcsNetMetrics.StepSecondsBuckets,
        });
    }

    public CollectorRegistry Registry { get; }

    public void Dispose() => adapter.Dispose();
}

/// <summary>Composition of <see cref="NodeMetrics"/> into a node host.</summary>
public static class NodeMetricsHosting
{
    /// <summary>Adds the node's metrics registry (one per host).</summary>
    public static IServiceCollection AddEcsNetMetrics(this IServiceCollection services) => services.AddSingleton<NodeMetrics>();

    /// <summary>
    /// Serves the registry of <see cref="AddEcsNetMetrics"/> at <see cref="NodeMetrics.Path"/> in the Prometheus text
    /// format (OpenMetrics when the scraper asks for it). Mapping it creates the registry, so the meter is listened to
    /// from before the host starts.
    /// </summary>
    public static IEndpointConventionBuilder MapEcsNetMetrics(this IEndpointRouteBuilder endpoints)
    {
        var metrics = endpoints.ServiceProvider.GetRequiredService<NodeMetrics>();
        return endpoints.MapMetrics(settings => settings.Registry = metrics.Registry, NodeMetrics.Path);
    }
}
