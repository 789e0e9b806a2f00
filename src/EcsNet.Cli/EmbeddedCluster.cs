using Akka.Actor;
using Akka.Hosting;
using EcsNet.Cluster;
using EcsNet.Cluster.Hosting;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Training;
using EcsNet.Host;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EcsNet.Cli;

/// <summary>
/// The embedded default: a one-node cluster in this process carrying every role — the training coordinator, the
/// sample and job entities, and <c>workers</c> worker actors on <c>device</c> — so that <c>demo</c>, <c>pipeline</c> and
/// <c>train-cam --workers N</c> run through the same actors as a multi-node cluster.
/// </summary>
internal sealed class EmbeddedCluster : IAsyncDisposable
{
    private readonly WebApplication app;

    private EmbeddedCluster(WebApplication app, ActorSystem system, IActorRef coordinator)
    {
        this.app = app;
        System = system;
        Coordinator = coordinator;
    }

    public ActorSystem System { get; }

    public IActorRef Coordinator { get; }

    public static async Task<EmbeddedCluster> StartAsync(int workers, string device, CancellationToken ct)
    {
        var app = NodeHost.Build(Array.Empty<string>(), new NodeHostSettings
        {
            Roles = ClusterRoles.All,
            Port = 0,
            LogLevel = LogLevel.Warning,
            ConfigureTraining = t => t.Devices = Enumerable.Repeat(device, workers).ToArray(),
        });
        try
        {
            await app.StartAsync(ct);
            var coordinator = await app.Services.GetRequiredService<IRequiredActor<TrainingCoordinatorKey>>().GetAsync(ct);
            return new EmbeddedCluster(app, app.Services.GetRequiredService<ActorSystem>(), coordinator);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>Submits the run, shows its progress, and returns its last status; a failed run throws its error.</summary>
    public async Task<RunStatus> RunAsync(CliIo io, string title, RunSpec spec, CancellationToken ct)
    {
        var shown = new RunStatusLines(io);
        var status = await Progress.Run(io, title, (report, ct2) =>
            RunClient.RunAsync(System, Coordinator, spec, s =>
            {
                shown.Print(s);
                if (s.MaxSteps > 0 && s.Step > 0 && s.Step <= s.MaxSteps && s.Activity.Length == 0)
                    report(s.Step, s.MaxSteps, $"{s.Stage} train, loss {(s.Terms.Count > 0 ? s.Terms[0].Value : double.NaN):F3}, {s.WorldSize} worker(s)");
                else if (s.Total > 0)
                    report(s.Done, s.Total, s.Activity);
            }, TimeSpan.FromSeconds(30), ct2).GetAwaiter().GetResult(), ct);
        shown.Print(status);
        if (status.State == RunStatus.Types.State.Failed)
            throw RunClient.Failure(status);
        if (status.State == RunStatus.Types.State.Stopped)
            throw new OperationCanceledException($"run {spec.Run} stopped: {status.Error}");
        return status;
    }

    public async ValueTask DisposeAsync()
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await app.StopAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
        }
        await app.DisposeAsync();
    }
}

/// <summary>Prints each finished stage and each new generation of a run once, as the statuses arrive.</summary>
internal sealed class RunStatusLines(CliIo io)
{
    private readonly HashSet<string> stages = new(StringComparer.Ordinal);
    private readonly HashSet<(string, long)> generations = new();

    public void Print(RunStatus status)
    {
        lock (this)
        {
            foreach (var s in status.Stages)
                if (stages.Add(s.Stage))
                    io.Out.WriteLine(FormattableString.Invariant($"stage {s.Stage}: {s.Note} ({s.Seconds:F0} s)"));
            foreach (var g in status.Generations)
                if (g.Rank == 0 && generations.Add((status.Stage, g.Generation)) && (g.Generation > 1 || g.WorldSize > 1))
                    io.Out.WriteLine(FormattableString.Invariant($"{status.Stage}: generation {g.Generation} of {g.WorldSize} worker(s) from step {g.ResumedStep}") +
                                     (g.AbandonedStep >= 0 ? $" (step {g.AbandonedStep} was in flight: {(g.AbandonedStep == g.ResumedStep ? "redone" : "kept")}; {g.Reason})" : ""));
            io.Out.Flush();
        }
    }
}
