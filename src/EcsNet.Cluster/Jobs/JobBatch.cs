using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using EcsNet.Cluster.Messages;
using EcsNet.Core.Runtime;
using EcsNet.Data;
using EcsNet.Labels.Jobs;

namespace EcsNet.Cluster.Jobs;

/// <summary>
/// One <see cref="ShardedImageJobRunner.RunAsync"/> call as an actor (local to the runner's node): keeps up to
/// <see cref="ShardedJobRunnerSettings.MaxInFlight"/> jobs out, watches the cluster for removed nodes, checks
/// deadlines once a second, and completes the run's task with every result or the first job that cannot be done.
/// </summary>
internal sealed class JobBatch : ReceiveActor, IWithTimers
{
    /// <summary>
    /// After a node is removed, its jobs are sent again once the shard coordinator has moved the node's shards:
    /// it keeps them on the removed node for the down-removal margin (Akka.NET docs, "Split Brain Resolver"), and a
    /// job sent before then can be routed to the dead node and lost. This much on top of the margin.
    /// </summary>
    private static readonly TimeSpan ResendSlack = TimeSpan.FromSeconds(2);

    private TimeSpan resendAfterNodeLoss;

    private readonly IReadOnlyList<IImageJob> jobs;
    private readonly IReadOnlyDictionary<string, IActorRef> regions;
    private readonly ShardedJobRunnerSettings settings;
    private readonly ImageJobProgress? progress;
    private readonly TaskCompletionSource<IReadOnlyList<ImageJobResult>> completion;
    private readonly Slot[] slots;
    private readonly Dictionary<string, int> byImage = new();
    private readonly ILoggingAdapter log = Context.GetLogger();
    private readonly ImageJobResult[] results;
    private readonly LevelShare inFlightShare = EcsNetMetrics.JobsInFlight.Share();
    private readonly LevelShare waitingShare = EcsNetMetrics.JobsWaiting.Share();
    private int next;
    private int inFlight;
    private int finished;

    public JobBatch(IReadOnlyList<IImageJob> jobs, IReadOnlyDictionary<string, IActorRef> regions, ShardedJobRunnerSettings settings,
        ImageJobProgress? progress, TaskCompletionSource<IReadOnlyList<ImageJobResult>> completion)
    {
        this.jobs = jobs;
        this.regions = regions;
        this.settings = settings;
        this.progress = progress;
        this.completion = completion;
        slots = jobs.Select(j => new Slot(j)).ToArray();
        results = new ImageJobResult[jobs.Count];
        for (int i = 0; i < jobs.Count; i++)
            byImage[jobs[i].ImageId] = i;

        Receive<JobAccepted>(m => Find(m.ImageId, m.Attempt, current: true)?.Accepted(m.Node, settings.JobTimeout));
        Receive<JobDone>(Done);
        Receive<JobFailed>(Failed);
        Receive<ClusterEvent.MemberRemoved>(Removed);
        Receive<ClusterEvent.CurrentClusterState>(_ => { });
        Receive<Resend>(m =>
        {
            if (!slots[m.Index].IsDone && slots[m.Index].Attempt == m.Attempt)
                Send(m.Index, m.Why);
        });
        Receive<Tick>(_ => CheckDeadlines());
        Receive<Cancel>(_ => Finish(new OperationCanceledException("the job run was cancelled")));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        resendAfterNodeLoss = Akka.Cluster.Cluster.Get(Context.System).DowningProvider.DownRemovalMargin + ResendSlack;
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.MemberRemoved));
        Timers.StartPeriodicTimer("deadlines", Tick.Instance, TimeSpan.FromSeconds(1));
        Fill();
    }

    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        inFlightShare.Dispose();
        waitingShare.Dispose();
        // stopped with jobs still out: the actor system is shutting down under the run
        if (!completion.Task.IsCompleted && slots.FirstOrDefault(s => !s.IsDone) is { } open)
            completion.TrySetException(new ImageJobFailedException(open.Job.ImageId, open.Node ?? "no node",
                "the job runner stopped before the job was done (is this node shutting down?)"));
    }

    private void Fill()
    {
        while (inFlight < settings.MaxInFlight && next < slots.Length)
        {
            inFlight++;
            Send(next++, null);
        }
        // this run's share of the node's runner gauges (docs/METRICS.md)
        inFlightShare.Set(inFlight);
        waitingShare.Set(slots.Length - next);
    }

    private void Send(int index, string? why)
    {
        var slot = slots[index];
        slot.Tries++;
        slot.Attempt++;
        slot.IsAccepted = false;
        slot.Deadline = DateTime.UtcNow + settings.AcceptTimeout;
        if (why is not null)
            log.Warning("image {0}: {1}; sending it again (try {2} of {3})", slot.Job.ImageId, why, slot.Tries, settings.MaxTries);
        regions[JobRegions.For(slot.Job)].Tell(JobMessages.ToMessage(slot.Job, slot.Attempt), Self);
    }

    /// <summary>The slot of a reply, or null for a reply of an earlier send when <paramref name="current"/> (a stale reply).</summary>
    private Slot? Find(string imageId, int attempt, bool current)
    {
        if (!byImage.TryGetValue(imageId, out var index))
            return null;
        var slot = slots[index];
        return slot.IsDone || (current && slot.Attempt != attempt) ? null : slot;
    }

    private void Done(JobDone m)
    {
        // Any send's answer will do: every run of a job writes the same file.
        var slot = Find(m.ImageId, m.Attempt, current: false);
        if (slot is null)
            return;
        slot.IsDone = true;
        int index = Array.IndexOf(slots, slot);
        results[index] = new ImageJobResult(m.ImageId, m.OutputPath, m.Seconds, m.Node);
        finished++;
        inFlight--;
        progress?.Invoke(finished, slots.Length, results[index]);
        if (finished == slots.Length)
        {
            completion.TrySetResult(results);
            Context.Stop(Self);
            return;
        }
        Fill();
    }

    private void Failed(JobFailed m)
    {
        var slot = Find(m.ImageId, m.Attempt, current: true);
        if (slot is null)
            return;
        string node = string.IsNullOrEmpty(m.Node) ? "an unknown node" : m.Node;
        switch (m.Reason)
        {
            case JobFailed.Types.Reason.BadInput:
                Finish(new BadInputException($"image {m.ImageId} on {node}", m.Message));
                break;
            case JobFailed.Types.Reason.Interrupted:
                Retry(slot, node, $"interrupted on {node} ({m.Message})");
                break;
            default:
                Retry(slot, node, $"failed on {node}: {m.Message}");
                break;
        }
    }

    private void Removed(ClusterEvent.MemberRemoved m)
    {
        var address = m.Member.Address.ToString();
        for (int i = 0; i < slots.Length; i++)
        {
            var slot = slots[i];
            if (slot.IsDone || slot.Attempt == 0 || slot.Node != address)
                continue;
            if (slot.Tries >= settings.MaxTries)
            {
                Finish(new ImageJobFailedException(slot.Job.ImageId, address,
                    $"its node was removed from the cluster while it had the job ({m.PreviousStatus}), {slot.Tries} times; gave up"));
                return;
            }
            // wait out the removal margin before sending again; a stale reply of this send is ignored meanwhile
            slot.Deadline = DateTime.MaxValue;
            Timers.StartSingleTimer($"resend-{i}", new Resend(i, slot.Attempt, $"its node {address} was removed from the cluster"), resendAfterNodeLoss);
        }
    }

    private void CheckDeadlines()
    {
        var now = DateTime.UtcNow;
        foreach (var slot in slots)
        {
            if (slot.IsDone || slot.Attempt == 0 || slot.Deadline > now)
                continue;
            var why = slot.IsAccepted
                ? $"no answer from {slot.Node} within {settings.JobTimeout.TotalSeconds:0} s of accepting it"
                : $"no node with the '{ClusterRoles.Preprocess}' role accepted it within {settings.AcceptTimeout.TotalSeconds:0} s";
            Retry(slot, slot.Node ?? "no node", why);
            if (completion.Task.IsCompleted)
                return;
        }
    }

    private void Retry(Slot slot, string node, string why)
    {
        if (slot.Tries >= settings.MaxTries)
        {
            Finish(new ImageJobFailedException(slot.Job.ImageId, node, $"{why}; gave up after {slot.Tries} tries"));
            return;
        }
        Send(Array.IndexOf(slots, slot), why);
    }

    private void Finish(Exception error)
    {
        completion.TrySetException(error);
        Context.Stop(Self);
    }

    private sealed class Slot(IImageJob job)
    {
        public IImageJob Job { get; } = job;
        public int Tries { get; set; }
        public int Attempt { get; set; }
        public bool IsAccepted { get; set; }
        public bool IsDone { get; set; }
        public string? Node { get; set; }
        public DateTime Deadline { get; set; } = DateTime.MaxValue;

        public void Accepted(string node, TimeSpan jobTimeout)
        {
            IsAccepted = true;
            Node = node;
            Deadline = DateTime.UtcNow + jobTimeout;
        }
    }

    private sealed record Resend(int Index, int Attempt, string Why);

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }

    public sealed class Cancel
    {
        public static readonly Cancel Instance = new();
    }
}
