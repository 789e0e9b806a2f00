using EcsNet.Cluster;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Training;
using EcsNet.Host;

namespace EcsNet.Cli;

/// <summary>The embedded cluster of a command: <see cref="EmbeddedNode"/> with the run's progress on the console.</summary>
internal static class EmbeddedCluster
{
    /// <summary>Starts the one-process cluster of a command (all roles, <paramref name="workers"/> worker actors) and says so.</summary>
    public static async Task<EmbeddedNode> StartAsync(CliIo io, int workers, string device, CancellationToken ct)
    {
        var node = await EmbeddedNode.StartAsync(workers, device, ct: ct);
        io.Out.WriteLine($"embedded cluster {node.Address}: roles {string.Join(", ", ClusterRoles.All)}; {workers} worker actor(s) on {device}");
        io.Out.Flush();
        return node;
    }

    /// <summary>Submits the run to <paramref name="node"/>, shows its progress, and returns its last status; a failed run throws its error.</summary>
    public static async Task<RunStatus> RunAsync(this EmbeddedNode node, CliIo io, string title, RunSpec spec, CancellationToken ct)
    {
        var shown = new RunStatusLines(io);
        var status = await Progress.Run(io, title, (report, ct2) =>
            node.RunAsync(spec, s =>
            {
                shown.Print(s);
                if (s.MaxSteps > 0 && s.Step > 0 && s.Step <= s.MaxSteps && s.Activity.Length == 0)
                    report(s.Step, s.MaxSteps, $"{s.Stage} train, loss {(s.Terms.Count > 0 ? s.Terms[0].Value : double.NaN):F3}, {s.WorldSize} worker(s)");
                else if (s.Total > 0)
                    report(s.Done, s.Total, s.Activity);
            }, ct2).GetAwaiter().GetResult(), ct);
        shown.Print(status);
        if (status.State == RunStatus.Types.State.Failed)
            throw RunClient.Failure(status);
        if (status.State == RunStatus.Types.State.Stopped)
            throw new OperationCanceledException($"run {spec.Run} stopped: {status.Error}");
        return status;
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
