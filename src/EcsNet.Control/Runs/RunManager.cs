using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Akka.Actor;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Training;
using EcsNet.Control.Api;
using EcsNet.Control.Hosting;
using EcsNet.Control.Registry;
using EcsNet.Control.V1;
using EcsNet.Core.Stages;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EcsNet.Control.Runs;

/// <summary>A run id the registry does not know.</summary>
public sealed class RunNotFoundException(string run) : Exception($"run '{run}' is not in the registry")
{
    public string Run { get; } = run;
}

/// <summary>A request that the run's state does not allow (e.g. resuming a completed run).</summary>
public sealed class RunStateException(string message) : Exception(message);

/// <summary>
/// The runs of the control API: submits them to the training coordinator singleton (through the actor system),
/// follows each to its end, keeps the registry up to date and feeds the watchers. Pause and stop ask the
/// coordinator to stop the run gracefully (the step in flight finishes, the root checkpoints); resume submits it
/// again, and the pipeline goes on from its finished stages and last checkpoint (docs/CONTROL.md, "Runs").
/// </summary>
public sealed class RunManager : IAsyncDisposable
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ProgressWriteEvery = TimeSpan.FromSeconds(2);

    private readonly IRunRegistry registry;
    private readonly ActorSystem system;
    private readonly IActorRef coordinator;
    private readonly ControlOptions options;
    private readonly ILogger<RunManager> log;
    private readonly ConcurrentDictionary<string, LiveRun> live = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource stopping = new();
    private int disposed;

    public RunManager(IRunRegistry registry, ActorSystem system, IActorRef coordinator, IOptions<ControlOptions> options, ILogger<RunManager> log)
    {
        this.registry = registry;
        this.system = system;
        this.coordinator = coordinator;
        this.options = options.Value;
        this.log = log;
    }

    /// <summary>The options experiments' hyperparameters are applied on.</summary>
    public ExperimentConfig BaseConfig { get; init; } = ExperimentConfig.SmallCpu;

    public IRunRegistry Registry => registry;

    /// <summary>The training coordinator singleton (through its proxy).</summary>
    public IActorRef Coordinator => coordinator;

    /// <summary>Runs in flight on this host.</summary>
    public IReadOnlyCollection<string> LiveRuns => live.Keys.ToArray();

    /// <summary>Opens the registry and goes on with the runs that were in flight when the host last stopped.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        await registry.InitializeAsync(ct);
        var interrupted = await registry.ListAsync(new[] { RunLifecycle.Queued, RunLifecycle.Running, RunLifecycle.Pausing, RunLifecycle.Stopping }, 1000, ct);
        foreach (var r in interrupted.OrderBy(r => r.Created))
        {
            switch (r.State)
            {
                case RunLifecycle.Pausing:
                    await registry.SetStateAsync(r.Id, RunLifecycle.Paused, "", ct);
                    break;
                case RunLifecycle.Stopping:
                    await registry.SetStateAsync(r.Id, RunLifecycle.Stopped, "stopped on request", ct);
                    break;
                case var _ when !options.ResumeInterrupted:
                    await registry.SetStateAsync(r.Id, RunLifecycle.Paused, "", ct);
                    log.LogInformation("run {Run} was interrupted by the host's restart: paused (resume it with ResumeRun)", r.Id);
                    break;
                default:
                    log.LogInformation("run {Run} was interrupted by the host's restart: going on from its checkpoints", r.Id);
                    await LaunchAsync(r, resumed: r.State == RunLifecycle.Running, ct);
                    break;
            }
        }
    }

    public async Task<Run> SubmitAsync(Experiment experiment, CancellationToken ct)
    {
        var resolved = Experiments.Resolve(experiment, BaseConfig);
        var id = NewRunId(resolved.Name);
        var record = new RunRecord
        {
            Id = id, Name = resolved.Name.Length > 0 ? resolved.Name : id, State = RunLifecycle.Queued,
            ExperimentJson = RunMessages.ExperimentToJson(experiment), RunDir = Path.GetFullPath(Path.Combine(options.RunsDir, id)),
            Created = DateTimeOffset.UtcNow, Updated = DateTimeOffset.UtcNow, Workers = resolved.Workers,
        };
        await registry.CreateAsync(record, ct);
        log.LogInformation("run {Run} submitted: {Stages} on {Workers} worker(s)", id,
            resolved.Stages.Count == 0 ? "all stages" : string.Join(",", resolved.Stages), resolved.Workers);
        var liveRun = await LaunchAsync(record, resumed: false, ct, resolved);
        return liveRun.Snapshot();
    }

    public async Task<Run> GetAsync(string id, CancellationToken ct)
    {
        if (live.TryGetValue(id, out var run))
            return run.Snapshot();
        var record = await registry.GetAsync(id, ct) ?? throw new RunNotFoundException(id);
        return RunMessages.ToRun(record, await registry.StagesAsync(id, ct));
    }

    public async Task<IReadOnlyList<Run>> ListAsync(IReadOnlyCollection<RunLifecycle>? states, int limit, CancellationToken ct)
    {
        var records = await registry.ListAsync(states, limit <= 0 ? 100 : limit, ct);
        var runs = new List<Run>(records.Count);
        foreach (var r in records)
            runs.Add(live.TryGetValue(r.Id, out var l) ? l.Snapshot() : RunMessages.ToRun(r, await registry.StagesAsync(r.Id, ct)));
        return runs;
    }

    /// <summary>The run now, then every change until it ends; a run that is over yields its last state once.</summary>
    public async IAsyncEnumerable<RunEvent> WatchAsync(string id, [EnumeratorCancellation] CancellationToken ct)
    {
        if (!live.TryGetValue(id, out var run))
        {
            yield return new RunEvent { Run = await GetAsync(id, ct), Miou = -1, Message = "run is not in flight" };
            yield break;
        }
        var feed = run.Subscribe();
        try
        {
            await foreach (var e in feed.Reader.ReadAllAsync(ct))
                yield return e;
        }
        finally
        {
            run.Unsubscribe(feed);
        }
    }

    public async Task<Run> ScaleAsync(string id, int workers, CancellationToken ct)
    {
        if (workers is < 1 or > Experiments.MaxWorkers)
            throw new InvalidRequestException(new[] { new FieldProblem("workers", $"must lie in 1..{Experiments.MaxWorkers}, got {workers}") });
        var run = Live(id, "scale");
        var answer = await coordinator.Ask<object>(new ScaleRun { Run = run.CoordinatorRun, Workers = workers }, AskTimeout, ct);
        if (answer is RunRejected rejected)
            throw new RunStateException($"run {id} cannot be scaled now: {rejected.Reason}");
        run.Workers = workers;
        await registry.SetProgressAsync(id, run.Current.Stage, run.Current.Step, run.Current.MaxSteps, workers, ct);
        log.LogInformation("run {Run} scaled to {Workers} worker(s)", id, workers);
        return run.Snapshot();
    }

    public Task<Run> PauseAsync(string id, CancellationToken ct) => StopAsync(id, Intent.Pause, ct);

    public Task<Run> StopAsync(string id, CancellationToken ct) => StopAsync(id, Intent.Stop, ct);

    public async Task<Run> ResumeAsync(string id, CancellationToken ct)
    {
        if (live.ContainsKey(id))
            throw new RunStateException($"run {id} is in flight already");
        var record = await registry.GetAsync(id, ct) ?? throw new RunNotFoundException(id);
        if (record.State != RunLifecycle.Paused)
            throw new RunStateException($"run {id} is {record.State.ToString().ToLowerInvariant()}: only a paused run can be resumed");
        var run = await LaunchAsync(record, resumed: true, ct);
        return run.Snapshot();
    }

    private async Task<Run> StopAsync(string id, Intent intent, CancellationToken ct)
    {
        var run = Live(id, intent == Intent.Pause ? "pause" : "stop");
        run.Intent = intent;
        var state = intent == Intent.Pause ? RunLifecycle.Pausing : RunLifecycle.Stopping;
        await registry.SetStateAsync(id, state, "", ct);
        run.Update(r => r.State = RunMessages.ToProto(state));
        run.Post(RunUpdate.State(state));
        if (run.CoordinatorRun.Length > 0)
            coordinator.Tell(new StopRun { Run = run.CoordinatorRun });
        log.LogInformation("run {Run}: {What} requested", id, intent == Intent.Pause ? "pause" : "stop");
        return run.Snapshot();
    }

    private LiveRun Live(string id, string what) =>
        live.TryGetValue(id, out var run) ? run
        : throw new RunStateException($"run {id} is not in flight: cannot {what} it");

    /// <summary>The run's folder on this host's storage (artifacts, reports).</summary>
    public async Task<string> RunDirAsync(string id, CancellationToken ct) =>
        (await registry.GetAsync(id, ct) ?? throw new RunNotFoundException(id)).RunDir;

    private static string NewRunId(string name)
    {
        var stem = name.Length > 0 ? new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? char.ToLowerInvariant(c) : '-').ToArray()) : "run";
        if (stem.Length > 40) stem = stem[..40];
        return $"{stem}-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Random.Shared.Next(0x10000):x4}";
    }

    // --------------------------------------------------------------------------------------------- one run

    /// <param name="resolved">The record's experiment resolved (a new submission has it already), else resolved from the record.</param>
    private async Task<LiveRun> LaunchAsync(RunRecord record, bool resumed, CancellationToken ct, ResolvedExperiment? resolved = null)
    {
        resolved ??= Experiments.Resolve(RunMessages.ExperimentFromJson(record.ExperimentJson), BaseConfig);
        if (resumed)
            await registry.AddResumeAsync(record.Id, ct);
        var stages = await registry.StagesAsync(record.Id, ct);
        var current = RunMessages.ToRun(record with { State = RunLifecycle.Queued, Error = "", Resumes = record.Resumes + (resumed ? 1 : 0) }, stages);
        if (record.State != RunLifecycle.Queued)
            await registry.SetStateAsync(record.Id, RunLifecycle.Queued, "", ct);
        var run = new LiveRun(record.Id, resolved, current, record.Workers > 0 ? record.Workers : resolved.Workers);
        if (!live.TryAdd(record.Id, run))
            throw new RunStateException($"run {record.Id} is in flight already");
        run.Pump = Task.Run(() => PumpAsync(run));
        run.Post(RunUpdate.Launch());
        return run;
    }

    /// <summary>Everything that happens to one run, in order: preparation, the coordinator's statuses, requests.</summary>
    private async Task PumpAsync(LiveRun run)
    {
        var ct = stopping.Token;
        // every log line of the run carries its id and this node (JSON logs: as fields)
        using var scope = log.BeginScope(new Dictionary<string, object> { ["RunId"] = run.Id, ["Node"] = Akka.Cluster.Cluster.Get(system).SelfAddress.ToString() });
        try
        {
            await foreach (var update in run.Inbox.Reader.ReadAllAsync(ct))
            {
                try
                {
                    if (await ApplyAsync(run, update, ct))
                        break;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    log.LogError(e, "run {Run}: {Error}", run.Id, e.Message);
                    await EndAsync(run, RunLifecycle.Failed, $"{e.GetType().Name}: {e.Message}", ct);
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the host is stopping: the registry keeps the run as in flight, and the next host goes on with it
        }
        finally
        {
            run.Follow?.Dispose();
            run.Complete();
            live.TryRemove(run.Id, out _);
        }
    }

    /// <summary>Applies one update; true when the run is over.</summary>
    private async Task<bool> ApplyAsync(LiveRun run, RunUpdate update, CancellationToken ct)
    {
        switch (update.Kind)
        {
            case RunUpdate.Kinds.Launch:
                return await StartOnCoordinatorAsync(run, ct);
            case RunUpdate.Kinds.SetState:
                run.Update(r => r.State = RunMessages.ToProto(update.NewState));
                run.Publish($"run {update.NewState.ToString().ToLowerInvariant()}");
                return false;
            case RunUpdate.Kinds.Unknown:
                if (++run.Relaunches > 3)
                {
                    await EndAsync(run, RunLifecycle.Failed, $"the training coordinator lost the run {run.Relaunches - 1} times: {update.Message}", ct);
                    return true;
                }
                log.LogWarning("run {Run}: the training coordinator no longer knows it ({Why}); submitting it again from its checkpoints", run.Id, update.Message);
                await registry.AddResumeAsync(run.Id, ct);
                run.Update(r => r.Resumes++);
                return await StartOnCoordinatorAsync(run, ct);
            default:
                return await StatusAsync(run, update.Status!, ct);
        }
    }

    private async Task<bool> StartOnCoordinatorAsync(LiveRun run, CancellationToken ct)
    {
        run.Follow?.Dispose();
        run.Follow = null;
        if (run.Intent != Intent.None)
        {
            await EndAsync(run, run.Intent == Intent.Pause ? RunLifecycle.Paused : RunLifecycle.Stopped, run.Intent == Intent.Pause ? "" : "stopped on request", ct);
            return true;
        }
        run.Publish("preparing the run folder");
        var spec = await Task.Run(() => RunFolder.Prepare(run.Current.RunDir, run.Experiment, run.Workers), ct);
        run.NextAttempt();
        spec.Run = run.CoordinatorRun;
        var answer = await coordinator.Ask<object>(new SubmitRun { Spec = spec }, AskTimeout, ct);
        if (answer is RunRejected rejected)
        {
            await EndAsync(run, RunLifecycle.Failed, $"the training coordinator refused the run: {rejected.Reason}", ct);
            return true;
        }
        var attempt = run.CoordinatorRun;
        run.Follow = RunClient.Follow(system, coordinator, attempt,
            status => run.Post(RunUpdate.From(status)),
            why => run.Post(RunUpdate.Lost(attempt, why)));
        if (run.Intent != Intent.None)
            coordinator.Tell(new StopRun { Run = attempt });   // paused or stopped while its folder was being prepared
        return false;
    }

    private async Task<bool> StatusAsync(LiveRun run, RunStatus s, CancellationToken ct)
    {
        if (s.Run != run.CoordinatorRun)
            return false;   // a status of an earlier attempt
        var c = run.Current;
        var finished = s.Stages.Where(x => c.Stages.All(y => y.Stage != x.Stage))
            .Select(x => new StageRecord(x.Stage, x.Title, x.Reused, x.Seconds, x.Note, new Dictionary<string, double>(x.Metrics))).ToList();
        foreach (var record in finished)
            await registry.SetStageAsync(run.Id, record, ct);
        run.Update(r =>
        {
            r.Stage = s.Stage.Length > 0 ? s.Stage : r.Stage;
            r.Step = s.Step;
            r.MaxSteps = s.MaxSteps;
            if (s.WorldSize > 0)
                r.Workers = s.WorldSize;
            r.Stages.AddRange(finished.Select(RunMessages.ToProto));
        });
        var state = s.State switch
        {
            RunStatus.Types.State.Queued => RunLifecycle.Queued,
            RunStatus.Types.State.Running => run.Intent switch { Intent.Pause => RunLifecycle.Pausing, Intent.Stop => RunLifecycle.Stopping, _ => RunLifecycle.Running },
            RunStatus.Types.State.Completed => RunLifecycle.Completed,
            RunStatus.Types.State.Failed => RunLifecycle.Failed,
            _ => run.Intent == Intent.Pause ? RunLifecycle.Paused : RunLifecycle.Stopped,
        };
        if (RunMessages.IsOver(state))
        {
            await EndAsync(run, state, state == RunLifecycle.Paused ? "" : s.Error, ct, s);
            return true;
        }
        bool changed = RunMessages.ToProto(state) != c.State;
        if (changed || DateTime.UtcNow - run.LastProgressWrite > ProgressWriteEvery)
        {
            await registry.SetProgressAsync(run.Id, c.Stage, c.Step, c.MaxSteps, c.Workers, ct);
            run.LastProgressWrite = DateTime.UtcNow;
        }
        if (changed)
        {
            await registry.SetStateAsync(run.Id, state, "", ct);
            run.Update(r => r.State = RunMessages.ToProto(state));
        }
        run.Publish(s);
        return false;
    }

    private async Task EndAsync(LiveRun run, RunLifecycle state, string error, CancellationToken ct, RunStatus? last = null)
    {
        var c = run.Current;
        await registry.SetProgressAsync(run.Id, c.Stage, c.Step, c.MaxSteps, c.Workers, ct);
        await registry.SetStateAsync(run.Id, state, state == RunLifecycle.Failed ? error : "", ct);
        // per-image files (labels, overlays) are recorded by folder: a VOC run has tens of thousands
        foreach (var artifact in RunFolder.Artifacts(c.RunDir)
                     .Select(a => a.Kind is "labels" or "overlays" ? a with { Path = a.Path[..(a.Path.LastIndexOf('/') + 1)] } : a).Distinct())
            await registry.AddArtifactAsync(run.Id, artifact, ct);
        run.Update(r =>
        {
            r.State = RunMessages.ToProto(state);
            r.Error = state == RunLifecycle.Failed ? error : "";
        });
        log.Log(state == RunLifecycle.Failed ? LogLevel.Error : LogLevel.Information, "run {Run} {State}{Error}", run.Id,
            state.ToString().ToLowerInvariant(), state == RunLifecycle.Failed ? ": " + error : "");
        if (last is not null)
            run.Publish(last);
        else
            run.Publish($"run {state.ToString().ToLowerInvariant()}");
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
            return;
        stopping.Cancel();
        var pumps = live.Values.Select(r => r.Pump).Where(p => p is not null).ToArray();
        try
        {
            await Task.WhenAll(pumps!).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
        }
        stopping.Dispose();
    }

    internal enum Intent
    {
        None,
        Pause,
        Stop,
    }

    /// <summary>One thing that happened to a run (the pump's inbox).</summary>
    private sealed record RunUpdate(RunUpdate.Kinds Kind, RunStatus? Status = null, RunLifecycle NewState = default, string Message = "")
    {
        public enum Kinds
        {
            Launch,
            Status,
            SetState,
            Unknown,
        }

        public static RunUpdate Launch() => new(Kinds.Launch);

        public static RunUpdate From(RunStatus s) => new(Kinds.Status, s);

        public static RunUpdate State(RunLifecycle state) => new(Kinds.SetState, NewState: state);

        public static RunUpdate Lost(string attempt, string why) => new(Kinds.Unknown, Status: new RunStatus { Run = attempt }, Message: why);
    }

    /// <summary>A run in flight: where it is, its attempt on the coordinator, and its watchers.</summary>
    private sealed class LiveRun(string id, ResolvedExperiment experiment, Run current, int workers)
    {
        private readonly object gate = new();
        private readonly List<Channel<RunEvent>> feeds = new();
        private readonly ProgressClock clock = new();
        private RunEvent last = new() { Run = current, Miou = -1 };

        public string Id { get; } = id;
        public ResolvedExperiment Experiment { get; } = experiment;
        public Run Current { get; } = current;
        public int Workers { get; set; } = workers;
        public Intent Intent { get; set; }
        public int Attempt { get; set; }
        public int Relaunches { get; set; }
        public IDisposable? Follow { get; set; }
        public Task? Pump { get; set; }
        public DateTime LastProgressWrite { get; set; }
        public Channel<RunUpdate> Inbox { get; } = Channel.CreateUnbounded<RunUpdate>(new UnboundedChannelOptions { SingleReader = true });

        /// <summary>
        /// The run's id on the coordinator: one per attempt (a resumed run is a new attempt there), unique even on a
        /// coordinator that outlived this host (it may run on another node).
        /// </summary>
        public string CoordinatorRun { get; private set; } = "";

        public void NextAttempt()
        {
            Attempt++;
            CoordinatorRun = $"{Id}.{Attempt}-{Random.Shared.Next(0x10000):x4}";
        }

        public void Post(RunUpdate update)
        {
            if (update.Kind == RunUpdate.Kinds.Unknown && update.Status!.Run != CoordinatorRun)
                return;
            Inbox.Writer.TryWrite(update);
        }

        public void Update(Action<Run> change)
        {
            lock (gate)
                change(Current);
        }

        public Run Snapshot()
        {
            lock (gate)
                return Current.Clone();
        }

        public void Publish(string message) => Publish(new RunEvent { Message = message });

        public void Publish(RunStatus s) => Publish(clock.Event(s, Experiment.Config, Current));

        private void Publish(RunEvent e)
        {
            lock (gate)
            {
                e.Run = Current.Clone();
                e.Miou = Current.Stages.LastOrDefault(x => x.Metrics.ContainsKey("mIoU"))?.Metrics["mIoU"] ?? -1;
                if (e.Message.Length == 0)
                    e.Message = e.Activity.Length > 0 ? e.Activity : $"{Current.Stage} step {Current.Step}/{Current.MaxSteps}";
                last = e;
                foreach (var f in feeds)
                    f.Writer.TryWrite(e);
            }
        }

        public Channel<RunEvent> Subscribe()
        {
            var feed = Channel.CreateBounded<RunEvent>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest });
            lock (gate)
            {
                feed.Writer.TryWrite(last.Clone());
                if (RunMessages.IsOver(RunMessages.FromProto(Current.State)))
                    feed.Writer.TryComplete();
                else
                    feeds.Add(feed);
            }
            return feed;
        }

        public void Unsubscribe(Channel<RunEvent> feed)
        {
            lock (gate)
                feeds.Remove(feed);
        }

        /// <summary>The run is over: every watcher's stream ends after the last event.</summary>
        public void Complete()
        {
            Inbox.Writer.TryComplete();
            lock (gate)
            {
                foreach (var f in feeds)
                    f.Writer.TryComplete();
                feeds.Clear();
            }
        }
    }
}
