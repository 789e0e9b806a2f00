using Akka.Actor;
using Akka.Event;
using EcsNet.AllReduce.Rendezvous;
using EcsNet.Cluster.Messages;
using EcsNet.Core.Runtime;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Data;
using static Akka.Cluster.ClusterEvent;

namespace EcsNet.Cluster.Training;

/// <summary>
/// The training coordinator: a cluster singleton on the <c>coordinator</c> role. It keeps each run's state machine
/// (queued → running stage by stage → completed, failed or stopped; the step, the generation and the checkpoint of
/// the training in progress) and drives the run's pipeline on a thread of its own. For every stage that trains it
/// hosts a gRPC rendezvous (EcsNet.AllReduce), picks idle workers and starts them on it; the workers form the ring
/// and train. Cluster membership drives the generations: a worker whose node becomes unreachable (Akka's failure
/// detector, within seconds) or is removed is dropped from the rendezvous at once, so the survivors re-form and go
/// on from their weights instead of waiting for a collective to time out. Workers that appear while a training is
/// short of its target join it between steps; a scale request adds or removes members the same way.
/// </summary>
public sealed class TrainingCoordinator : ReceiveActor, IWithTimers
{
    private readonly CoordinatorSettings settings;
    private readonly ILoggingAdapter log = Context.GetLogger();
    private readonly Dictionary<IActorRef, WorkerEntry> workers = new();
    private readonly Dictionary<string, RunState> runs = new(StringComparer.Ordinal);
    private readonly Queue<string> queue = new();
    private readonly Dictionary<string, TrainingState> trainings = new(StringComparer.Ordinal);
    private readonly HashSet<Address> unreachable = new();
    private readonly LevelShare knownWorkers = EcsNetMetrics.CoordinatorWorkers.Share();
    private readonly LevelShare activeRuns = EcsNetMetrics.ActiveRuns.Share();
    private readonly LevelShare queuedRuns = EcsNetMetrics.QueuedRuns.Share();
    private string? activeRun;

    public TrainingCoordinator(CoordinatorSettings settings)
    {
        this.settings = settings;
        Receive<WorkerHello>(Hello);
        Receive<SubmitRun>(Submit);
        Receive<WatchRun>(Watch);
        Receive<GetRunStatus>(m => Sender.Tell(runs.TryGetValue(m.Run, out var r) ? r.Status.Clone() : Unknown(m.Run)));
        Receive<GetCoordinatorInfo>(_ => Sender.Tell(Info()));
        Receive<ScaleRun>(Scale);
        Receive<StopRun>(m => Stop(m.Run, Sender));
        Receive<CancelTraining>(m => Stop(m.Run, null));
        Receive<BeginTraining>(Begin);
        Receive<HostReady>(Ready);
        Receive<HostFailed>(m => FailTraining(m.Training, $"the rendezvous of training {m.Training} did not start: {m.Error.Message}"));
        Receive<TrainingJoined>(Joined);
        Receive<TrainingProgress>(Progress);
        Receive<GenerationJoined>(Generation);
        Receive<TrainingEnded>(Ended);
        Receive<DriverProgress>(DriverProgressed);
        Receive<StageFinished>(StageDone);
        Receive<DriverFinished>(DriverDone);
        Receive<RankLostNote>(m => log.Warning("training {0}: lost {1}", m.Training, m.Detail));
        Receive<UnreachableMember>(e => NodeLost(e.Member.Address, $"node {e.Member.Address} is unreachable (cluster failure detector)", removed: false));
        Receive<ReachableMember>(e => unreachable.Remove(e.Member.Address));
        Receive<MemberRemoved>(e => NodeLost(e.Member.Address, $"node {e.Member.Address} was removed from the cluster", removed: true));
        Receive<Terminated>(Gone);
        Receive<Tick>(_ => Ticked());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props PropsFor(CoordinatorSettings settings) => Props.Create(() => new TrainingCoordinator(settings));

    protected override void PreStart()
    {
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(UnreachableMember), typeof(ReachableMember), typeof(MemberRemoved));
        Timers.StartPeriodicTimer("tick", Tick.Instance, TimeSpan.FromSeconds(1));
    }

    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        foreach (var t in trainings.Values.ToList())
            FailTraining(t.Id, "the training coordinator stopped (its node left or moved the singleton)");
        foreach (var r in runs.Values)
            r.Cancel.Cancel();
        knownWorkers.Dispose();
        activeRuns.Dispose();
        queuedRuns.Dispose();
    }

    /// <summary>Every message may change the workers and runs: the gauges (docs/METRICS.md) follow after each one.</summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        bool handled = base.AroundReceive(receive, message);
        knownWorkers.Set(workers.Count);
        activeRuns.Set(activeRun is null ? 0 : 1);
        queuedRuns.Set(queue.Count(r => runs[r].Status.State == RunStatus.Types.State.Queued));
        return handled;
    }

    // ------------------------------------------------------------------------------------------ workers

    private void Hello(WorkerHello m)
    {
        if (!workers.TryGetValue(Sender, out var entry))
        {
            Context.Watch(Sender);
            workers[Sender] = entry = new WorkerEntry(Sender, m.Device);
            log.Info("worker {0} ({1}) registered", Sender.Path, m.Device);
        }
        entry.LastHello = DateTime.UtcNow;
        entry.Training = m.Training;
        OfferWorkers();
    }

    /// <summary>Idle: says it is in no training, is in none here, and its node is reachable.</summary>
    private bool IsIdle(WorkerEntry w) =>
        w.Training.Length == 0 && !unreachable.Contains(w.Worker.Path.Address) &&
        !trainings.Values.Any(t => t.Members.TryGetValue(w.Worker, out var member) && member.Ended is null);

    /// <summary>
    /// Idle workers for <paramref name="t"/>: not one that already ended its part in it (finished, stopped, left) —
    /// a worker that finished would otherwise join again as a fresh member of a training that is ending.
    /// </summary>
    private List<WorkerEntry> IdleWorkers(int count, TrainingState? t = null) =>
        workers.Values.Where(w => IsIdle(w) && !(t?.Members.TryGetValue(w.Worker, out var m) == true && m.Ended?.Outcome != TrainingEnded.Types.Outcome.Dropped))
            .OrderBy(w => w.Worker.Path.ToString(), StringComparer.Ordinal).Take(Math.Max(0, count)).ToList();

    /// <summary>Trainings short of their target get idle workers as joiners, until one of their members has finished.</summary>
    private void OfferWorkers()
    {
        foreach (var t in trainings.Values.Where(t => t.Host is not null && !t.Stopping && !t.Finishing).ToList())
        {
            int active = t.Members.Values.Count(m => m.Ended is null);
            foreach (var w in IdleWorkers(t.Target - active, t))
            {
                log.Info("training {0}: {1} joins ({2} of {3} members)", t.Id, w.Worker.Path, active + 1, t.Target);
                t.Members[w.Worker] = new MemberState(w.Worker);
                w.Worker.Tell(StartMessage(t));
                active++;
            }
        }
        // trainings still waiting for their first workers
        foreach (var t in trainings.Values.Where(t => t.Host is null && t.Starting is null && t.Members.Count == 0 && !t.Stopping).ToList())
            StartAttempt(t);
    }

    private void Gone(Terminated e)
    {
        foreach (var r in runs.Values)
            r.Watchers.Remove(e.ActorRef);
        if (!workers.Remove(e.ActorRef))
            return;
        foreach (var t in trainings.Values.ToList())
            if (t.Members.TryGetValue(e.ActorRef, out var member) && member.Ended is null)
                Lose(t, new[] { member }, $"worker {e.ActorRef.Path} stopped");
    }

    private void NodeLost(Address node, string reason, bool removed)
    {
        if (node == Akka.Cluster.Cluster.Get(Context.System).SelfAddress)
            return;
        unreachable.Add(node);
        if (removed)
        {
            unreachable.Remove(node);
            foreach (var w in workers.Keys.Where(w => w.Path.Address == node).ToList())
                workers.Remove(w);
        }
        foreach (var t in trainings.Values.ToList())
        {
            var lost = t.Members.Values.Where(m => m.Ended is null && m.Worker.Path.Address == node).ToList();
            if (lost.Count > 0)
                Lose(t, lost, reason);
        }
    }

    /// <summary>Drops members from the training's rendezvous (one new generation for all of them) and counts them out.</summary>
    private void Lose(TrainingState t, IReadOnlyList<MemberState> members, string reason)
    {
        var ids = members.Where(m => m.RendezvousId is not null).Select(m => m.RendezvousId!).ToList();
        if (!t.Formed && t.Host is { } host)
        {
            // no generation yet, and it would wait for the lost member forever: close this rendezvous (the others
            // learn at once that they were dropped) and start again with whoever is left
            t.Host = null;
            _ = host.DisposeAsync().AsTask();
        }
        else if (ids.Count > 0 && t.Host is not null)
        {
            t.Host.DropWorkers(ids, reason);
        }
        foreach (var m in members)
        {
            EcsNetMetrics.MemberLosses.Add(1, "lost");
            m.Ended = new TrainingEnded { Training = t.Id, Outcome = TrainingEnded.Types.Outcome.Dropped, Error = reason };
            log.Warning("training {0}: member {1} lost: {2}", t.Id, m.Worker.Path, reason);
        }
        CheckDone(t);
        OfferWorkers();
    }

    private void Ticked()
    {
        var now = DateTime.UtcNow;
        foreach (var (worker, entry) in workers.ToList())
            if (now - entry.LastHello > settings.WorkerExpiry && !trainings.Values.Any(t => t.Members.ContainsKey(worker)))
            {
                workers.Remove(worker);
                Context.Unwatch(worker);
            }
        foreach (var t in trainings.Values.Where(t => t.Host is null && t.Starting is null).ToList())
            if (now - t.WaitingSince > settings.WorkerWait)
                FailTraining(t.Id, $"no idle worker within {settings.WorkerWait.TotalSeconds:0} s for training {t.Id} " +
                                   $"({workers.Count} worker(s) registered, none free): start worker nodes or lower the run's workers");
    }

    // ------------------------------------------------------------------------------------------ runs

    private void Submit(SubmitRun m)
    {
        var spec = m.Spec;
        string? problem = spec is null ? "the message carries no run"
            : spec.Run.Length == 0 ? "run: is empty"
            : runs.ContainsKey(spec.Run) ? $"run: '{spec.Run}' exists already"
            : spec.Workers < 1 ? $"workers: {spec.Workers} must be at least 1"
            : spec.ExperimentFile.Length == 0 && spec.Training is null ? "experimentFile: is empty"
            : null;
        if (problem is not null)
        {
            Sender.Tell(new RunRejected { Run = spec?.Run ?? "", Reason = problem });
            return;
        }
        var run = new RunState(spec!) { Status = { Run = spec!.Run, State = RunStatus.Types.State.Queued } };
        runs[spec.Run] = run;
        queue.Enqueue(spec.Run);
        Sender.Tell(new RunAccepted { Run = spec.Run });
        log.Info("run {0} queued ({1} worker(s))", spec.Run, spec.Workers);
        StartNext();
    }

    private void StartNext()
    {
        if (activeRun is not null)
            return;
        while (queue.Count > 0)
        {
            var run = runs[queue.Dequeue()];
            if (run.Status.State != RunStatus.Types.State.Queued)
                continue;
            activeRun = run.Spec.Run;
            run.Status.State = RunStatus.Types.State.Running;
            Publish(run);
            var self = Self;
            var jobs = settings.Jobs;
            Task.Factory.StartNew(() => RunDriver.Drive(run.Spec, self, jobs, run.Cancel.Token), TaskCreationOptions.LongRunning)
                .PipeTo(self, success: outcome => outcome, failure: e => new DriverFinished(run.Spec.Run, null, e));
            return;
        }
    }

    private void Watch(WatchRun m)
    {
        if (!runs.TryGetValue(m.Run, out var run))
        {
            Sender.Tell(Unknown(m.Run));
            return;
        }
        run.Watchers.Add(Sender);
        Context.Watch(Sender);
        Sender.Tell(run.Status.Clone());
    }

    private void Scale(ScaleRun m)
    {
        if (!runs.TryGetValue(m.Run, out var run) || m.Workers < 1)
        {
            Sender.Tell(new RunRejected { Run = m.Run, Reason = run is null ? $"run '{m.Run}' is unknown" : $"workers: {m.Workers} must be at least 1" });
            return;
        }
        run.Spec.Workers = m.Workers;
        if (run.Training is { } t && trainings.ContainsKey(t.Id))
        {
            t.Target = m.Workers;
            var active = t.Members.Values.Where(x => x.Ended is null).OrderByDescending(x => x.Rank).ToList();
            foreach (var member in active.Take(Math.Max(0, active.Count - m.Workers)))
                member.Worker.Tell(new LeaveTraining { Training = t.Id, Reason = $"run {m.Run} scaled to {m.Workers} worker(s)" });
            OfferWorkers();
        }
        Sender.Tell(run.Status.Clone());
    }

    private void Stop(string runId, IActorRef? replyTo)
    {
        if (!runs.TryGetValue(runId, out var run))
        {
            replyTo?.Tell(Unknown(runId));
            return;
        }
        if (run.Status.State == RunStatus.Types.State.Queued)
        {
            run.Status.State = RunStatus.Types.State.Stopped;
            EcsNetMetrics.RunsFinished.Add(1, "stopped");
            Publish(run);
        }
        else if (run.Status.State == RunStatus.Types.State.Running)
        {
            run.StopRequested = true;
            // a training stops gracefully (every member finishes its step, the root checkpoints); other work is cancelled
            if (run.Training is { } t && trainings.ContainsKey(t.Id))
            {
                t.Stopping = true;
                foreach (var m in t.Members.Values.Where(m => m.Ended is null))
                    m.Worker.Tell(new StopTraining { Training = t.Id });
                CheckDone(t);
            }
            else
            {
                run.Cancel.Cancel();
            }
        }
        replyTo?.Tell(run.Status.Clone());
    }

    private void DriverProgressed(DriverProgress m)
    {
        if (!runs.TryGetValue(m.Run, out var run))
            return;
        run.Status.Activity = m.Activity;
        run.Status.Done = m.Done;
        run.Status.Total = m.Total;
        Publish(run);
    }

    private void StageDone(StageFinished m)
    {
        if (!runs.TryGetValue(m.Run, out var run))
            return;
        run.Status.Stages.Add(m.Summary);
        Publish(run);
    }

    private void DriverDone(DriverFinished m)
    {
        if (!runs.TryGetValue(m.Run, out var run))
            return;
        var error = m.Error is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerException! : m.Error;
        if (error is null && run.StopRequested)
        {
            run.Status.State = RunStatus.Types.State.Stopped;
            run.Status.Error = "stopped on request";
        }
        else if (error is null)
            run.Status.State = RunStatus.Types.State.Completed;
        else if (error is OperationCanceledException)
        {
            // on request, or a training that stops before its last step by its own options (stopAfterSteps)
            run.Status.State = RunStatus.Types.State.Stopped;
            run.Status.Error = run.StopRequested ? "stopped on request" : error.Message;
        }
        else
        {
            run.Status.State = RunStatus.Types.State.Failed;
            run.Status.Error = error is BadInputException or TrainingFailedException or TrainingDivergedException
                ? error.Message : $"{error.GetType().Name}: {error.Message}";
            if (error is BadInputException bad)
            {
                run.Status.BadInput = true;
                run.Status.ErrorSubject = bad.Subject;
                run.Status.ErrorProblem = bad.Problem;
            }
            log.Error("run {0} failed: {1}", m.Run, run.Status.Error);
        }
        if (m.Summary is { } summary)
            foreach (var s in summary.Where(s => run.Status.Stages.All(x => x.Stage != s.Stage)))
                run.Status.Stages.Add(s);
        EcsNetMetrics.RunsFinished.Add(1, run.Status.State.ToString().ToLowerInvariant());
        Publish(run);
        if (activeRun == m.Run)
            activeRun = null;
        StartNext();
    }

    private void Publish(RunState run)
    {
        foreach (var w in run.Watchers)
            w.Tell(run.Status.Clone());
    }

    private CoordinatorInfo Info()
    {
        var info = new CoordinatorInfo
        {
            Address = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString(),
            Workers = workers.Count,
            BusyWorkers = workers.Values.Count(w => !IsIdle(w)),
        };
        if (activeRun is not null)
            info.ActiveRuns.Add(activeRun);
        info.QueuedRuns.AddRange(queue.Where(r => runs[r].Status.State == RunStatus.Types.State.Queued));
        return info;
    }

    private static RunRejected Unknown(string run) => new() { Run = run, Reason = $"run '{run}' is unknown to this coordinator" };

    // ------------------------------------------------------------------------------------------ trainings

    private void Begin(BeginTraining m)
    {
        if (!runs.TryGetValue(m.Run, out var run))
        {
            m.Done.TrySetException(new InvalidOperationException($"run {m.Run} is unknown to the training coordinator"));
            return;
        }
        if (run.StopRequested)
        {
            m.Done.TrySetResult(new TrainingResult(m.Job.Stage, 0, 0, null, false, false, Array.Empty<(string, double)>(), Array.Empty<GenerationChange>()));
            return;
        }
        var t = new TrainingState($"{m.Run}/{m.Job.Stage}/{++run.Trainings}", m.Run, m.Job, m.Callbacks, m.Done) { Target = run.Spec.Workers };
        trainings[t.Id] = t;
        run.Training = t;
        run.Status.Stage = m.Job.Stage;
        run.Status.Step = 0;
        run.Status.MaxSteps = 0;
        Publish(run);
        StartAttempt(t);
    }

    /// <summary>A fresh rendezvous with the idle workers (first start, or again after every member was lost).</summary>
    private void StartAttempt(TrainingState t)
    {
        var chosen = IdleWorkers(t.Target);
        if (chosen.Count == 0)
            return;   // waits: a worker's hello or the tick starts it again (until WorkerWait)
        t.Attempt++;
        t.Formed = false;
        t.Starting = chosen.Select(w => w.Worker).ToList();
        foreach (var w in chosen)
            t.Members[w.Worker] = new MemberState(w.Worker);
        var attempt = t.Attempt;
        var options = new CoordinatorOptions
        {
            WorldSize = chosen.Count, MinWorldSize = 1, HeartbeatInterval = TimeSpan.FromSeconds(1),
            // cluster membership notices a lost node first; the lease only covers a worker that hangs on a live node
            LeaseTimeout = TimeSpan.FromSeconds(30), BarrierTimeout = TimeSpan.FromMinutes(10),
        };
        log.Info("training {0}: attempt {1} on {2} worker(s)", t.Id, attempt, chosen.Count);
        CoordinatorHost.StartAsync(options, settings.RendezvousBind, 0)
            .PipeTo(Self, success: host => new HostReady(t.Id, attempt, host), failure: e => new HostFailed(t.Id, e));
    }

    private void Ready(HostReady m)
    {
        if (!trainings.TryGetValue(m.Training, out var t) || t.Attempt != m.Attempt)
        {
            _ = m.Host.DisposeAsync().AsTask();
            return;
        }
        if (t.Members.Values.Any(x => x.Ended is not null))
        {
            // a chosen worker was lost while the rendezvous started: it would wait for it forever
            _ = m.Host.DisposeAsync().AsTask();
            t.Starting = null;
            t.Members.Clear();
            StartAttempt(t);
            return;
        }
        t.Host = m.Host;
        t.Formed = false;
        var self = Self;
        var id = t.Id;
        m.Host.RankLost += lost => self.Tell(new RankLostNote(id, $"rank {lost.Rank} ({lost.Address}) of generation {lost.Generation}: {lost.Reason}"));
        t.Url = $"http://{settings.RendezvousHost}:{new Uri(m.Host.Address).Port}";
        foreach (var worker in t.Starting ?? new List<IActorRef>())
            if (t.Members.TryGetValue(worker, out var member) && member.Ended is null)
                worker.Tell(StartMessage(t));
        t.Starting = null;
        OfferWorkers();
    }

    private StartTraining StartMessage(TrainingState t) => new()
    {
        Run = t.Run, Training = t.Id, Job = TrainingMessages.ToSpec(t.Job), Rendezvous = t.Url,
        Settings = runs[t.Run].Spec.Settings ?? TrainingMessages.ToSettings(new DataParallelTraining()),
    };

    private void Joined(TrainingJoined m)
    {
        if (!trainings.TryGetValue(m.Training, out var t) || !t.Members.TryGetValue(Sender, out var member))
            return;
        member.RendezvousId = m.RendezvousWorker;
        // lost before it could be dropped: drop it now
        if (member.Ended is not null && t.Host is not null)
            t.Host.DropWorker(m.RendezvousWorker, member.Ended.Error);
    }

    private void Progress(TrainingProgress m)
    {
        if (!trainings.TryGetValue(m.Training, out var t) || !runs.TryGetValue(t.Run, out var run))
            return;
        run.Status.Step = m.Step;
        run.Status.MaxSteps = m.MaxSteps;
        run.Status.Generation = m.Generation;
        run.Status.WorldSize = m.WorldSize;
        run.Status.Terms.Clear();
        run.Status.Terms.AddRange(m.Terms);
        run.Status.Epoch = m.Epoch;
        run.Status.LearningRate = m.LearningRate;
        run.Status.StepSeconds = m.Seconds;
        run.Status.AllreduceBytes = m.AllreduceBytes;
        run.Status.AllreduceSeconds = m.AllreduceSeconds;
        t.Callbacks?.OnStep?.Invoke(new StepReport(t.Job.Stage, m.Step, m.MaxSteps, m.Epoch, m.LearningRate,
            TrainingMessages.Terms(m.Terms), m.Generation, m.Rank, m.WorldSize, m.Seconds));
        Publish(run);
    }

    private void Generation(GenerationJoined m)
    {
        if (!trainings.TryGetValue(m.Training, out var t) || !runs.TryGetValue(t.Run, out var run))
            return;
        if (t.Members.TryGetValue(Sender, out var member))
            member.Rank = m.Rank;
        t.Formed = true;
        t.Generations.Add(m);
        run.Status.Generations.Add(m);
        if (t.Generations.Count(g => g.Generation == m.Generation) == 1)
        {
            EcsNetMetrics.GenerationsFormed.Add(1);
            log.Info("training {0}: generation {1} formed, {2} member(s), from step {3} ({4})", t.Id, m.Generation, m.WorldSize, m.ResumedStep, m.Reason);
            t.Callbacks?.OnGeneration?.Invoke(TrainingMessages.ToChange(m));
        }
        Publish(run);
    }

    private void Ended(TrainingEnded m)
    {
        if (!trainings.TryGetValue(m.Training, out var t) || !t.Members.TryGetValue(Sender, out var member))
            return;
        // a member the coordinator counted as lost already is not counted again when it says it was dropped
        if (member.Ended is null && m.Outcome is TrainingEnded.Types.Outcome.Dropped or TrainingEnded.Types.Outcome.Failed)
            EcsNetMetrics.MemberLosses.Add(1, m.Outcome == TrainingEnded.Types.Outcome.Dropped ? "dropped" : "failed");
        if (member.Ended is null || m.Outcome != TrainingEnded.Types.Outcome.Dropped)
            member.Ended = m;
        if (m.Outcome is TrainingEnded.Types.Outcome.Completed or TrainingEnded.Types.Outcome.Stopped)
            t.Finishing = true;   // the others are at their last step too: nobody joins now
        log.Info("training {0}: {1} ended: {2} at step {3}/{4}{5}", t.Id, Sender.Path, m.Outcome, m.Steps, m.MaxSteps,
            m.Error.Length > 0 ? $" ({m.Error})" : "");
        CheckDone(t);
    }

    /// <summary>When no member trains any more: the result of a member that finished, or what went wrong.</summary>
    private void CheckDone(TrainingState t)
    {
        if (t.Starting is not null || t.Members.Count == 0 || t.Members.Values.Any(m => m.Ended is null))
            return;
        var ends = t.Members.Values.Select(m => m.Ended!).ToList();
        var finished = ends.FirstOrDefault(e => e.Outcome == TrainingEnded.Types.Outcome.Completed)
                       ?? ends.FirstOrDefault(e => e.Outcome == TrainingEnded.Types.Outcome.Stopped);
        if (finished is not null)
        {
            FinishTraining(t, finished);
            return;
        }
        if (ends.FirstOrDefault(e => e.Outcome == TrainingEnded.Types.Outcome.Failed) is { } failed)
        {
            FailTraining(t.Id, failed.Error);
            return;
        }
        if (t.Stopping)
        {
            FinishTraining(t, new TrainingEnded { Training = t.Id, Outcome = TrainingEnded.Types.Outcome.Stopped });
            return;
        }
        if (CoordinatedShutdown.Get(Context.System).ShutdownReason is { } reason)
        {
            FailTraining(t.Id, $"training {t.Id}: its workers left because the cluster node is shutting down ({reason}); " +
                               "the last checkpoint is in its run folder: run the same command again to resume");
            return;
        }
        if (t.Attempt < settings.MaxAttempts)
        {
            log.Warning("training {0}: every member left or was lost ({1}); starting again from its last checkpoint",
                t.Id, string.Join("; ", ends.Select(e => e.Error).Where(e => e.Length > 0).Distinct()));
            t.Members.Clear();
            t.WaitingSince = DateTime.UtcNow;
            var old = t.Host;
            t.Host = null;
            if (old is not null)
                _ = old.DisposeAsync().AsTask();
            StartAttempt(t);
            return;
        }
        FailTraining(t.Id, $"training {t.Id}: every worker left or was lost, {t.Attempt} time(s): " +
                           string.Join("; ", ends.Select(e => e.Error).Where(e => e.Length > 0).Distinct()));
    }

    private void FinishTraining(TrainingState t, TrainingEnded end)
    {
        Close(t);
        t.Done.TrySetResult(new TrainingResult(t.Job.Stage, end.Steps, end.MaxSteps, end.Checkpoint.Length > 0 ? end.Checkpoint : null,
            end.Outcome == TrainingEnded.Types.Outcome.Completed, false, TrainingMessages.Terms(end.LastTerms),
            t.Generations.GroupBy(g => g.Generation).Select(g => TrainingMessages.ToChange(g.OrderBy(x => x.Rank).First())).ToList()));
    }

    private void FailTraining(string id, string error)
    {
        if (!trainings.TryGetValue(id, out var t))
            return;
        EcsNetMetrics.TrainingsFailed.Add(1);
        Close(t);
        foreach (var m in t.Members.Values.Where(m => m.Ended is null))
            m.Worker.Tell(new StopTraining { Training = t.Id });
        t.Done.TrySetException(new TrainingFailedException(error));
    }

    private void Close(TrainingState t)
    {
        trainings.Remove(t.Id);
        if (runs.TryGetValue(t.Run, out var run) && run.Training == t)
            run.Training = null;
        if (t.Host is { } host)
            _ = host.DisposeAsync().AsTask();
        t.Host = null;
    }

    // ------------------------------------------------------------------------------------------ messages and state

    /// <summary>From the pipeline's thread (<see cref="ActorTrainingRunner"/>): train this job on the run's workers.</summary>
    public sealed record BeginTraining(string Run, TrainingJob Job, TrainingCallbacks? Callbacks, TaskCompletionSource<TrainingResult> Done);

    /// <summary>The pipeline's cancellation reached its training.</summary>
    public sealed record CancelTraining(string Run);

    /// <summary>From the run's driver: what it is doing besides training (per-image jobs, inference).</summary>
    public sealed record DriverProgress(string Run, string Activity, int Done, int Total);

    public sealed record StageFinished(string Run, StageSummary Summary);

    /// <summary>The run's driver ended: with the stages' summaries, or with an error.</summary>
    public sealed record DriverFinished(string Run, IReadOnlyList<StageSummary>? Summary, Exception? Error);

    private sealed record HostReady(string Training, int Attempt, CoordinatorHost Host);

    private sealed record HostFailed(string Training, Exception Error);

    private sealed record RankLostNote(string Training, string Detail);

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }

    private sealed class WorkerEntry(IActorRef worker, string device)
    {
        public IActorRef Worker { get; } = worker;
        public string Device { get; } = device;
        public DateTime LastHello { get; set; } = DateTime.UtcNow;
        public string Training { get; set; } = "";
    }

    private sealed class RunState(RunSpec spec)
    {
        public RunSpec Spec { get; } = spec;
        public RunStatus Status { get; } = new();
        public HashSet<IActorRef> Watchers { get; } = new();
        public CancellationTokenSource Cancel { get; } = new();
        public bool StopRequested { get; set; }
        public TrainingState? Training { get; set; }
        public int Trainings { get; set; }
    }

    private sealed class TrainingState(string id, string run, TrainingJob job, TrainingCallbacks? callbacks, TaskCompletionSource<TrainingResult> done)
    {
        public string Id { get; } = id;
        public string Run { get; } = run;
        public TrainingJob Job { get; } = job;
        public TrainingCallbacks? Callbacks { get; } = callbacks;
        public TaskCompletionSource<TrainingResult> Done { get; } = done;
        public int Target { get; set; }
        public int Attempt { get; set; }
        public CoordinatorHost? Host { get; set; }
        public string Url { get; set; } = "";
        public List<IActorRef>? Starting { get; set; }
        public bool Stopping { get; set; }

        /// <summary>A member has finished (completed or stopped): the training is ending and takes no joiners.</summary>
        public bool Finishing { get; set; }

        /// <summary>A generation of the current attempt's rendezvous has formed.</summary>
        public bool Formed { get; set; }

        public DateTime WaitingSince { get; set; } = DateTime.UtcNow;
        public Dictionary<IActorRef, MemberState> Members { get; } = new();
        public List<GenerationJoined> Generations { get; } = new();
    }

    private sealed class MemberState(IActorRef worker)
    {
        public IActorRef Worker { get; } = worker;
        public string? RendezvousId { get; set; }
        public int Rank { get; set; } = -1;
        public TrainingEnded? Ended { get; set; }
    }
}

/// <summary>A training on the cluster could not finish: every worker failed, left or was lost, or none was there.</summary>
public sealed class TrainingFailedException(string message) : Exception(message);
