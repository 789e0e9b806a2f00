using System.Net;
using Akka.Actor;
using Akka.Event;
using EcsNet.AllReduce.DataParallel;
using EcsNet.AllReduce.Rendezvous;
using EcsNet.AllReduce.Ring;
using EcsNet.Cluster.Messages;
using EcsNet.Core.Runtime;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Data;
using TorchSharp;

namespace EcsNet.Cluster.Training;

/// <summary>What a worker actor needs from its node.</summary>
/// <param name="Bind">Address its ring peer server listens on (other workers dial it).</param>
/// <param name="HelloInterval">How often it tells the coordinator it exists.</param>
/// <param name="Threads">LibTorch intra-op threads while it trains (0: leave the default).</param>
/// <param name="Sources">Where its training samples come from.</param>
public sealed record WorkerSettings(IPAddress Bind, TimeSpan HelloInterval, int Threads, IBatchSources Sources);

/// <summary>
/// One worker per device (role <c>worker</c>): it owns a data-parallel replica while it trains. It introduces itself
/// to the training coordinator, and on <see cref="StartTraining"/> joins the training's rendezvous and runs Core's
/// training loop (<see cref="StageTraining"/>) over an <see cref="ElasticTrainingGroup"/>, with its samples pulled
/// from the sample entities. The loop runs on a thread of its own, never on the actor's: the actor keeps answering
/// (leave and stop requests reach the loop between steps) while a step computes. It reports the root's steps, each
/// generation it joins, and how its part ended.
/// </summary>
public sealed class TrainingWorker : ReceiveActor, IWithTimers
{
    private readonly string device;
    private readonly IActorRef coordinator;
    private readonly WorkerSettings settings;
    private readonly ILoggingAdapter log = Context.GetLogger();
    private readonly LevelShare present = EcsNetMetrics.Workers.Share();
    private readonly LevelShare busy = EcsNetMetrics.BusyWorkers.Share();
    private Running? running;

    public TrainingWorker(string device, IActorRef coordinator, WorkerSettings settings)
    {
        this.device = Devices.Normalize(device, "worker device");
        this.coordinator = coordinator;
        this.settings = settings;
        Receive<Hello>(_ => coordinator.Tell(new WorkerHello { Device = this.device, Training = running?.Training ?? "" }));
        Receive<StartTraining>(Start);
        Receive<LeaveTraining>(m =>
        {
            if (running?.Training == m.Training)
            {
                log.Info("leaving training {0} after the step in progress: {1}", m.Training, m.Reason);
                running.Control.RequestLeave();
            }
        });
        Receive<StopTraining>(m =>
        {
            if (running?.Training == m.Training)
                running.Control.RequestStop();
        });
        Receive<Ended>(e =>
        {
            if (running?.Training != e.Message.Training)
                return;
            running = null;
            busy.Set(0);
            coordinator.Tell(e.Message);
            Self.Tell(Hello.Instance);   // idle again: say so at once
        });
        Receive<LeaveAll>(_ =>
        {
            running?.Control.RequestLeave();
            Sender.Tell(new Draining(running?.Done ?? Task.CompletedTask));
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props PropsFor(string device, IActorRef coordinator, WorkerSettings settings) =>
        Props.Create(() => new TrainingWorker(device, coordinator, settings));

    protected override void PreStart()
    {
        present.Set(1);
        Timers.StartPeriodicTimer("hello", Hello.Instance, TimeSpan.Zero, settings.HelloInterval);
    }

    protected override void PostStop()
    {
        running?.Control.Cancel();
        running = null;
        busy.Dispose();
        present.Dispose();
    }

    private void Start(StartTraining m)
    {
        if (running is not null)
        {
            if (running.Training != m.Training)
                Sender.Tell(new TrainingEnded
                {
                    Training = m.Training, Outcome = TrainingEnded.Types.Outcome.Failed,
                    Error = $"worker {Self.Path} ({device}) is busy with training {running.Training}",
                });
            return;   // a repeated start of the training it is in: nothing to do
        }
        var control = new TrainingControl();
        var self = Self;
        var done = Task.Factory.StartNew(() => Train(m, control, self), TaskCreationOptions.LongRunning).Unwrap();
        done.PipeTo(self, success: ended => new Ended(ended));
        running = new Running(m.Training, control, done);
        busy.Set(1);
        log.Info("joining training {0} ({1} stage of run {2}) on {3}", m.Training, m.Job?.Stage, m.Run, device);
    }

    /// <summary>The training thread: join the rendezvous and the group, train, and say how it ended. Never throws.</summary>
    private async Task<TrainingEnded> Train(StartTraining m, TrainingControl control, IActorRef self)
    {
        var ended = new TrainingEnded { Training = m.Training };
        try
        {
            var job = TrainingMessages.ToJob(m.Job);
            var dp = TrainingMessages.ToOptions(m.Settings);
            var placementDevice = Devices.Resolve(device, "worker device");
            await using var session = await RankSession.StartAsync(new WorkerOptions
            {
                Coordinator = m.Rendezvous, Device = device, Bind = settings.Bind,
                Ring = new RingOptions { PeerTimeout = dp.PeerTimeout, Compression = dp.Compression, Transport = dp.Transport },
            }, control.Token);
            coordinator.Tell(new TrainingJoined { Training = m.Training, RendezvousWorker = session.WorkerId }, self);
            using var group = await ElasticTrainingGroup.JoinAsync(session, dp.DataParallel, dp.GenerationTimeout, control.Token);
            control.Attach(group);
            if (settings.Threads > 0)
                torch.set_num_threads(settings.Threads);
            var placement = new TrainingPlacement { Group = group, Device = placementDevice, Sources = settings.Sources };
            var result = StageTraining.Run(job, placement, new TrainingCallbacks(
                OnStep: r =>
                {
                    if (r.Rank != 0)
                        return;
                    var progress = TrainingMessages.ToMessage(m.Training, r);
                    if (group.Current.LastSync is { } sync)
                    {
                        progress.AllreduceBytes = sync.Bytes;
                        progress.AllreduceSeconds = sync.CommunicationSeconds;
                    }
                    coordinator.Tell(progress, self);
                },
                OnGeneration: g =>
                {
                    log.Info("run {0} training {1}: {2}", m.Run, m.Training,
                        $"rank {g.Rank} of {g.WorldSize} in generation {g.Generation} on {device}, from step {g.ResumedStep}");
                    coordinator.Tell(TrainingMessages.ToMessage(m.Training, g), self);
                },
                StopRequested: () => control.StopRequested), control.Token);
            ended.Outcome = result.Left ? TrainingEnded.Types.Outcome.Left
                : result.Completed ? TrainingEnded.Types.Outcome.Completed : TrainingEnded.Types.Outcome.Stopped;
            if (!result.Left)
                await group.LeaveAsync();   // done: leave cleanly, so the rendezvous does not count this member as lost
            ended.Steps = result.Steps;
            ended.MaxSteps = result.MaxSteps;
            ended.Checkpoint = result.Checkpoint ?? "";
            ended.LastTerms.AddRange(result.LastTerms.Select(t => new LossValue { Name = t.Name, Value = t.Value }));
        }
        catch (Exception e) when (e is GroupMembershipException or CollectiveFailedException or TimeoutException
                                      || (e is Grpc.Core.RpcException && !control.Token.IsCancellationRequested))
        {
            ended.Outcome = TrainingEnded.Types.Outcome.Dropped;
            ended.Error = e.Message;
        }
        catch (OperationCanceledException) when (control.Token.IsCancellationRequested)
        {
            ended.Outcome = TrainingEnded.Types.Outcome.Stopped;
            ended.Error = "the worker stopped";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            ended.Outcome = TrainingEnded.Types.Outcome.Failed;
            ended.Error = e is BadInputException or TrainingDivergedException ? e.Message : $"{e.GetType().Name}: {e.Message}";
        }
        return ended;
    }

    /// <summary>Asks the worker to leave its training (if any) after the step in progress; the reply says when it is out.</summary>
    public sealed class LeaveAll
    {
        public static readonly LeaveAll Instance = new();

        private LeaveAll()
        {
        }
    }

    /// <summary>Completes when the worker's training thread has ended.</summary>
    public sealed record Draining(Task Done);

    private sealed class Hello
    {
        public static readonly Hello Instance = new();
    }

    private sealed record Ended(TrainingEnded Message);

    private sealed record Running(string Training, TrainingControl Control, Task Done);
}

/// <summary>Requests from the actor to the training thread: leave, stop, cancel. Thread-safe.</summary>
internal sealed class TrainingControl
{
    private readonly CancellationTokenSource cancel = new();
    private ElasticTrainingGroup? group;
    private volatile bool leave;
    private volatile bool stop;

    public CancellationToken Token => cancel.Token;

    public bool StopRequested => stop;

    public void Attach(ElasticTrainingGroup joined)
    {
        group = joined;
        if (leave)
            joined.RequestLeave();
    }

    public void RequestLeave()
    {
        leave = true;
        group?.RequestLeave();
    }

    public void RequestStop() => stop = true;

    /// <summary>The hard way (the actor stopped): the loop stops at its next step without a checkpoint.</summary>
    public void Cancel() => cancel.Cancel();
}
