using EcsNet.Cluster.Hosting;
using EcsNet.Labels.Jobs;

namespace EcsNet.Cluster.Tests;

/// <summary>Passes jobs on and keeps every result.</summary>
internal sealed class RecordingRunner(IImageJobRunner inner) : IImageJobRunner
{
    public List<ImageJobResult> Results { get; } = new();

    public async Task<IReadOnlyList<ImageJobResult>> RunAsync(IReadOnlyList<IImageJob> jobs, ImageJobProgress? progress = null, CancellationToken cancellationToken = default)
    {
        var results = await inner.RunAsync(jobs, progress, cancellationToken);
        lock (Results) Results.AddRange(results);
        return results;
    }
}

/// <summary>Notes that it ran.</summary>
internal sealed class RecordingShutdownTask : INodeShutdownTask
{
    public string Name => "test-record";

    public bool Ran { get; private set; }

    public Task RunAsync(Akka.Actor.ActorSystem system, CancellationToken cancellationToken)
    {
        Ran = true;
        return Task.CompletedTask;
    }
}
