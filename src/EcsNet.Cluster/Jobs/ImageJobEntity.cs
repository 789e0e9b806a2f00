using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using EcsNet.Cluster.Messages;
using EcsNet.Core.Runtime;
using EcsNet.Data;
using EcsNet.Labels.Jobs;
using Google.Protobuf;

namespace EcsNet.Cluster.Jobs;

/// <summary>
/// The sharded entity of one image in one stage's region. It turns a request into its job, answers
/// <see cref="JobAccepted"/> at once, has its worker child run the job on the CPU-work dispatcher (never on the
/// default dispatcher, whose threads carry cluster heartbeats) and answers <see cref="JobDone"/> or
/// <see cref="JobFailed"/>. The same job sent again while it runs (a runner retrying) waits for the same run.
/// <para>
/// It passivates after <see cref="ImageJobEntitySettings.IdleTimeout"/> without work, never while a job runs
/// (Akka.NET docs, "Cluster Sharding", passivation). On <see cref="FinishAndStop"/> — the shard's hand-off stop
/// message when its node leaves or a rebalance moves the shard — it finishes the running job, answers, and stops;
/// jobs queued behind it are answered <c>REASON_INTERRUPTED</c> so the runner sends them to the shard's new home.
/// </para>
/// </summary>
public sealed class ImageJobEntity : ReceiveActor
{
    private readonly string imageId;
    private readonly ImageJobEntitySettings settings;
    private readonly string node;
    private readonly ILoggingAdapter log = Context.GetLogger();
    private readonly List<Run> queued = new();
    private readonly LevelShare runningShare = EcsNetMetrics.JobsRunning.Share();
    private readonly LevelShare queuedShare = EcsNetMetrics.JobsQueued.Share();
    private Run? running;
    private CancellationTokenSource? notStarted;
    private IActorRef? worker;
    private bool stopping;

    public ImageJobEntity(string imageId, ImageJobEntitySettings settings)
    {
        this.imageId = imageId;
        this.settings = settings;
        node = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();
        Receive<CrfLabelJobRequest>(Request);
        Receive<AffinityMapsJobRequest>(Request);
        Receive<PropagationJobRequest>(Request);
        Receive<JobWorker.Finished>(Finished);
        Receive<ReceiveTimeout>(_ => Context.Parent.Tell(new Passivate(FinishAndStop.Instance)));
        Receive<FinishAndStop>(_ =>
        {
            stopping = true;
            // a job still waiting for a worker thread is given back (answered interrupted, sent elsewhere);
            // one that has started runs to the end
            notStarted?.Cancel();
            if (running is null)
                Context.Stop(Self);
        });
        Context.SetReceiveTimeout(settings.IdleTimeout);
    }

    public static Props PropsFor(string imageId, ImageJobEntitySettings settings) =>
        Props.Create(() => new ImageJobEntity(imageId, settings));

    private void Request(IMessage request)
    {
        var (id, attempt) = JobMessages.Key(request)!.Value;
        if (id != imageId)
        {
            Fail(Sender, id, attempt, JobFailed.Types.Reason.BadInput,
                $"a {request.Descriptor.Name} for image '{id}' reached the entity of image '{imageId}'");
            return;
        }
        IImageJob job;
        try
        {
            job = JobMessages.ToJob(request);
            job.Validate();
        }
        catch (BadInputException e)
        {
            Fail(Sender, id, attempt, JobFailed.Types.Reason.BadInput, e.Message);
            return;
        }
        if (stopping)
        {
            Fail(Sender, id, attempt, JobFailed.Types.Reason.Interrupted, $"image {imageId}: its entity on {node} is stopping (shard hand-off)");
            return;
        }
        Sender.Tell(new JobAccepted { ImageId = imageId, Attempt = attempt, Node = node });
        var waiter = new Waiter(Sender, attempt);
        // The same job again (a retry, a second runner) joins the run that has it; another job queues.
        var same = running is not null && running.Job.Equals(job) ? running : queued.Find(r => r.Job.Equals(job));
        if (same is not null)
            same.Waiters.Add(waiter);
        else if (running is not null)
            queued.Add(new Run(job, new List<Waiter> { waiter }));
        else
            Start(new Run(job, new List<Waiter> { waiter }));
        ReportDepth();
    }

    /// <summary>This entity's share of the node's job gauges (docs/METRICS.md).</summary>
    private void ReportDepth()
    {
        runningShare.Set(running is null ? 0 : 1);
        queuedShare.Set(queued.Count);
    }

    private void Start(Run run)
    {
        Context.SetReceiveTimeout(null);
        worker ??= Context.ActorOf(JobWorker.PropsFor(settings.Dispatcher), "worker");
        running = run;
        notStarted = new CancellationTokenSource();
        worker.Tell(new JobWorker.Run(run.Job, notStarted.Token));
    }

    private void Finished(JobWorker.Finished finished)
    {
        if (running is null)
            return;
        notStarted?.Dispose();
        notStarted = null;
        foreach (var waiter in running.Waiters)
        {
            if (finished.Error is OperationCanceledException)
                Fail(waiter.ReplyTo, imageId, waiter.Attempt, JobFailed.Types.Reason.Interrupted,
                    $"image {imageId}: its entity on {node} is handing off its shard; the job had not started");
            else if (finished.Error is null)
                waiter.ReplyTo.Tell(new JobDone
                {
                    ImageId = imageId, Attempt = waiter.Attempt, Node = node, OutputPath = finished.Result!.OutputPath,
                    Seconds = finished.Result.Seconds,
                });
            else
                Fail(waiter.ReplyTo, imageId, waiter.Attempt,
                    finished.Error is BadInputException ? JobFailed.Types.Reason.BadInput : JobFailed.Types.Reason.Error,
                    finished.Error is BadInputException ? finished.Error.Message : $"{finished.Error.GetType().Name}: {finished.Error.Message}");
        }
        if (finished.Error is not null and not (BadInputException or OperationCanceledException))
            log.Warning("image {0}: {1} failed on {2}: {3}", imageId, running.Job.GetType().Name, node, finished.Error);
        if (finished.Error is null)
            EcsNetMetrics.JobsCompleted.Add(1);
        else if (finished.Error is not OperationCanceledException)
            EcsNetMetrics.JobsFailed.Add(1);
        running = null;
        if (!stopping && queued.Count > 0)
        {
            var next = queued[0];
            queued.RemoveAt(0);
            Start(next);
            ReportDepth();
            return;
        }
        ReportDepth();
        if (stopping)
        {
            Context.Stop(Self);
            return;
        }
        Context.SetReceiveTimeout(settings.IdleTimeout);
    }

    protected override void PostStop()
    {
        // Whoever still waits learns at once that this run is gone, instead of waiting for a timeout.
        notStarted?.Cancel();
        foreach (var run in queued.Prepend(running).OfType<Run>())
            foreach (var w in run.Waiters)
                Fail(w.ReplyTo, imageId, w.Attempt, JobFailed.Types.Reason.Interrupted, $"image {imageId}: its entity on {node} stopped before the job finished");
        queued.Clear();
        running = null;
        runningShare.Dispose();
        queuedShare.Dispose();
    }

    private void Fail(IActorRef to, string id, int attempt, JobFailed.Types.Reason reason, string message) =>
        to.Tell(new JobFailed { ImageId = id, Attempt = attempt, Node = node, Reason = reason, Message = message });

    private sealed record Waiter(IActorRef ReplyTo, int Attempt);

    /// <summary>A job and everyone waiting for it.</summary>
    private sealed record Run(IImageJob Job, List<Waiter> Waiters);
}

/// <summary>What an <see cref="ImageJobEntity"/> needs from its node's options.</summary>
/// <param name="Dispatcher">Id of the dispatcher that runs jobs (a dedicated thread pool).</param>
/// <param name="IdleTimeout">Passivate after this long without a job.</param>
public sealed record ImageJobEntitySettings(string Dispatcher, TimeSpan IdleTimeout);

/// <summary>
/// Stop message of job entities (shard hand-off and passivation): finish the running job, then stop. Local to a
/// node (a shard sends it to its own entities), so it needs no serializer.
/// </summary>
public sealed class FinishAndStop
{
    public static readonly FinishAndStop Instance = new();

    private FinishAndStop()
    {
    }
}

/// <summary>Runs one job at a time for its entity, on the dispatcher its props name.</summary>
internal sealed class JobWorker : ReceiveActor
{
    public JobWorker()
    {
        Receive<Run>(run =>
        {
            ImageJobResult? result = null;
            Exception? error = null;
            try
            {
                // the token is only looked at before the job starts (jobs check it first thing)
                result = run.Job.Run(run.NotStarted);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                error = e;
            }
            Sender.Tell(new Finished(result, error));
        });
    }

    public static Props PropsFor(string dispatcher) => Props.Create(() => new JobWorker()).WithDispatcher(dispatcher);

    /// <param name="NotStarted">Cancelled when the job is no longer wanted, if it has not started yet.</param>
    public sealed record Run(IImageJob Job, CancellationToken NotStarted);

    public sealed record Finished(ImageJobResult? Result, Exception? Error);
}
