using Akka.Actor;
using EcsNet.Cluster.Messages;
using EcsNet.Data;

namespace EcsNet.Cluster.Training;

/// <summary>Submits a run to the training coordinator and follows it to its end, from any node of the cluster.</summary>
public static class RunClient
{
    /// <summary>
    /// Submits <paramref name="spec"/>, reports every status the coordinator publishes to <paramref name="onStatus"/>
    /// (on an actor's thread), and returns the last one (completed, failed or stopped). Cancelling
    /// <paramref name="cancellationToken"/> asks the coordinator to stop the run, then waits for it to stop.
    /// </summary>
    /// <exception cref="BadInputException">The coordinator rejected the run (the reason names the field).</exception>
    public static async Task<RunStatus> RunAsync(ActorSystem system, IActorRef coordinator, RunSpec spec, Action<RunStatus>? onStatus,
        TimeSpan submitTimeout, CancellationToken cancellationToken = default)
    {
        var end = new TaskCompletionSource<RunStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        var watcher = system.ActorOf(Props.Create(() => new Watcher(coordinator, spec.Run, onStatus, end)));
        try
        {
            var answer = await coordinator.Ask<object>(new SubmitRun { Spec = spec }, submitTimeout, cancellationToken);
            if (answer is RunRejected rejected)
                throw new BadInputException($"run {spec.Run}", rejected.Reason);
            watcher.Tell(Watcher.Start.Instance);
            using var stop = cancellationToken.Register(() => coordinator.Tell(new StopRun { Run = spec.Run }));
            return await end.Task;
        }
        finally
        {
            system.Stop(watcher);
        }
    }

    /// <summary>
    /// Follows a run already submitted: every status the coordinator publishes goes to <paramref name="onStatus"/>
    /// (on an actor's thread; the watch is renewed every few seconds, so a coordinator that moved is found again),
    /// and <paramref name="onUnknown"/> is told when the coordinator does not know the run (e.g. it moved to
    /// another node and lost its runs). Dispose to stop following.
    /// </summary>
    public static IDisposable Follow(ActorSystem system, IActorRef coordinator, string run, Action<RunStatus> onStatus, Action<string> onUnknown)
    {
        var end = new TaskCompletionSource<RunStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        var watcher = system.ActorOf(Props.Create(() => new Watcher(coordinator, run, onStatus, end)));
        end.Task.ContinueWith(t => onUnknown(t.Exception?.InnerException?.Message ?? $"run {run} is unknown"),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        watcher.Tell(Watcher.Start.Instance);
        return new Stopper(system, watcher);
    }

    private sealed class Stopper(ActorSystem system, IActorRef watcher) : IDisposable
    {
        public void Dispose() => system.Stop(watcher);
    }

    /// <summary>The failure of a failed run as the exception it was: bad input (exit 2 in the CLI) or an error.</summary>
    public static Exception Failure(RunStatus status) => status.BadInput
        ? new BadInputException(status.ErrorSubject, status.ErrorProblem)
        : new RunFailedException(status.Run, status.Error);

    public static bool IsOver(RunStatus status) =>
        status.State is RunStatus.Types.State.Completed or RunStatus.Types.State.Failed or RunStatus.Types.State.Stopped;

    /// <summary>Subscribes to the run and completes with its last status; re-subscribes when the coordinator moves.</summary>
    private sealed class Watcher : ReceiveActor, IWithTimers
    {
        public Watcher(IActorRef coordinator, string run, Action<RunStatus>? onStatus, TaskCompletionSource<RunStatus> end)
        {
            Receive<Start>(_ =>
            {
                coordinator.Tell(new WatchRun { Run = run });
                // the coordinator may move (its node lost): asking again is harmless, a watcher is a set member
                Timers.StartPeriodicTimer("rewatch", Start.Again, TimeSpan.FromSeconds(5));
            });
            Receive<Again>(_ => coordinator.Tell(new WatchRun { Run = run }));
            Receive<RunStatus>(status =>
            {
                onStatus?.Invoke(status);
                if (IsOver(status))
                    end.TrySetResult(status);
            });
            Receive<RunRejected>(r => end.TrySetException(new BadInputException($"run {run}", r.Reason)));
        }

        public ITimerScheduler Timers { get; set; } = null!;

        public sealed class Start
        {
            public static readonly Start Instance = new();
            public static readonly Again Again = new();
        }

        public sealed class Again;
    }
}

/// <summary>A run on the cluster failed; the message says where (stage, image, node) and why.</summary>
public sealed class RunFailedException(string run, string error) : Exception($"run {run} failed: {error}");
