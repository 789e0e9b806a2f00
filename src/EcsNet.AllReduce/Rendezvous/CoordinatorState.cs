using EcsNet.AllReduce.Topology;
using System.Threading.Channels;
using EcsNet.AllReduce.Wire;
using Grpc.Core;

namespace EcsNet.AllReduce.Rendezvous;

/// <summary>
/// The coordinator's bookkeeping: registered workers, the current generation (members in ring order),
/// barriers, and the log of lost ranks. Every change of membership (a joiner, a loss, a departure) forms a
/// new generation that is written to every member's watch stream while the lock is held, so each worker
/// sees the generations in the order they formed. One lock guards it all; nothing here blocks while
/// holding it. Events are raised after the lock is released, one at a time and in the order they happened.
/// </summary>
internal sealed class CoordinatorState
{
    private readonly CoordinatorOptions options;
    private readonly TimeProvider clock;
    private readonly object gate = new();
    private readonly object delivery = new();
    private readonly Queue<Action> pendingEvents = new();
    private readonly List<Worker> waiting = new();
    private readonly List<LostRank> lost = new();
    private readonly Dictionary<long, BarrierRound> barriers = new();
    private List<Worker> members = new();
    private Generation? current;
    private int nextWorker;
    private string? jobTransport;

    public CoordinatorState(CoordinatorOptions options, TimeProvider? clock = null)
    {
        options.Validate();
        this.options = options;
        this.clock = clock ?? TimeProvider.System;
    }

    public CoordinatorOptions Options => options;

    /// <summary>Raised for each rank that is lost (not for a worker that leaves).</summary>
    public event Action<LostRank>? RankLost;

    /// <summary>Raised for each generation that forms (a copy; <c>your_rank</c> unset).</summary>
    public event Action<Generation>? GenerationFormed;

    public RegisterReply Register(RegisterRequest request)
    {
        if (string.IsNullOrWhiteSpace(request.Address) || !Uri.TryCreate(request.Address, UriKind.Absolute, out _))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"worker address '{request.Address}' is not an absolute URL like http://127.0.0.1:5000"));
        var device = string.IsNullOrWhiteSpace(request.Device) ? "cpu" : request.Device;
        var transport = string.IsNullOrWhiteSpace(request.Transport) ? "auto" : request.Transport.Trim().ToLowerInvariant();
        if (!TransportNames.IsKnown(transport))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"transport '{request.Transport}' is not one of {TransportNames.List}"));
        Worker worker;
        lock (gate)
        {
            // the data plane is chosen by each worker, and ranks on different planes cannot talk: the first
            // registration fixes it for the job
            jobTransport ??= transport;
            if (transport != jobTransport)
                throw new RpcException(new Status(StatusCode.FailedPrecondition,
                    $"transport '{transport}' of the worker at {request.Address} differs from this job's '{jobTransport}': start every worker with the same --transport"));
            if (request.RequestedRank >= 0)
            {
                if (request.RequestedRank >= options.WorldSize)
                    throw new RpcException(new Status(StatusCode.InvalidArgument,
                        $"rank {request.RequestedRank} does not exist: the world size is {options.WorldSize}"));
                var holder = members.Concat(waiting).FirstOrDefault(w => w.Claims(request.RequestedRank, current));
                if (holder is not null)
                    throw new RpcException(new Status(StatusCode.AlreadyExists,
                        $"rank {request.RequestedRank} is already held by worker {holder.Id} at {holder.Address}"));
            }
            if (members.Concat(waiting).FirstOrDefault(w => w.Address == request.Address) is { } same)
                throw new RpcException(new Status(StatusCode.AlreadyExists,
                    $"address {request.Address} is already registered by worker {same.Id}"));
            worker = new Worker($"w{++nextWorker}", request.Address, device, request.RequestedRank, clock.GetUtcNow()) { Host = request.Host.Trim() };
            waiting.Add(worker);
            // after the first generation a joiner forms the next one at once: the members switch between steps
            TryFormLocked(Array.Empty<LostRank>(), removed: false);
        }
        Deliver();
        return new RegisterReply
        {
            WorkerId = worker.Id,
            ExpectedWorldSize = options.WorldSize,
            HeartbeatIntervalSeconds = options.HeartbeatInterval.TotalSeconds,
        };
    }

    /// <summary>The stream of generations a worker sees; the current one first if it is a member.</summary>
    public ChannelReader<Generation> Watch(string workerId)
    {
        lock (gate)
        {
            var worker = Find(workerId);
            if (worker.Watching)
                throw new RpcException(new Status(StatusCode.AlreadyExists, $"worker {workerId} already has a watch stream"));
            worker.Watching = true;
            if (current is not null && members.Contains(worker))
                SendLocked(worker, current);
            return worker.Updates.Reader;
        }
    }

    public long Heartbeat(string workerId)
    {
        lock (gate)
        {
            Find(workerId).LastSeen = clock.GetUtcNow();
            return current?.Number ?? 0;
        }
    }

    /// <summary>Returns when every member of <paramref name="generation"/> reached <paramref name="step"/>.</summary>
    public async Task<long> BarrierAsync(string workerId, long generation, long step, CancellationToken cancellationToken)
    {
        Task arrival;
        lock (gate)
        {
            var worker = Find(workerId);
            worker.LastSeen = clock.GetUtcNow();
            CheckGenerationLocked(generation, worker);
            if (!barriers.TryGetValue(step, out var round))
                barriers[step] = round = new BarrierRound(generation);
            round.Arrived.Add(workerId);
            if (round.Arrived.Count == members.Count)
            {
                barriers.Remove(step);
                round.Done.TrySetResult();
            }
            arrival = round.Done.Task;
        }
        try
        {
            await arrival.WaitAsync(options.BarrierTimeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            string missing;
            lock (gate)
                missing = string.Join(", ", members.Where(m => !(barriers.GetValueOrDefault(step)?.Arrived.Contains(m.Id) ?? true))
                    .Select(m => $"rank {members.IndexOf(m)} ({m.Address})"));
            throw new RpcException(new Status(StatusCode.DeadlineExceeded,
                $"barrier at step {step} of generation {generation} timed out after {options.BarrierTimeout.TotalSeconds:0.#} s waiting for {missing}"));
        }
        return generation;
    }

    public long ReportFailure(FailureReport report)
    {
        long number;
        lock (gate)
        {
            var reporter = Find(report.WorkerId);
            CheckGenerationLocked(report.Generation, reporter);
            var reporterRank = members.IndexOf(reporter);
            if (report.SuspectRank < 0 || report.SuspectRank >= members.Count)
                throw new RpcException(new Status(StatusCode.InvalidArgument,
                    $"rank {report.SuspectRank} is not in generation {report.Generation} (world size {members.Count})"));
            DropLocked(new[] { (members[report.SuspectRank], $"reported by rank {reporterRank}: {report.Detail}") }, log: true);
            number = current?.Number ?? 0;
        }
        Deliver();
        return number;
    }

    public void Leave(string workerId)
    {
        lock (gate)
            DropLocked(new[] { (Find(workerId), "left") }, log: false);
        Deliver();
    }

    /// <summary>
    /// Drops the workers named by <paramref name="workerIds"/> (ids it does not know, or that are gone already,
    /// are skipped) with one new generation for all of them; <paramref name="reason"/> goes into the lost-rank
    /// log, the survivors' generation and the dropped workers' last message. Returns how many it dropped.
    /// </summary>
    public int DropWorkers(IEnumerable<string> workerIds, string reason)
    {
        ArgumentNullException.ThrowIfNull(workerIds);
        if (string.IsNullOrWhiteSpace(reason))
            throw new ArgumentException("a drop needs a reason: it is logged and shown to the surviving ranks", nameof(reason));
        var ids = workerIds.ToHashSet(StringComparer.Ordinal);
        int count;
        lock (gate)
        {
            var found = members.Concat(waiting).Where(w => ids.Contains(w.Id)).Select(w => (w, reason)).ToList();
            count = found.Count;
            DropLocked(found, log: true);
        }
        Deliver();
        return count;
    }

    /// <summary>A watch stream closed: the process is gone (or will reconnect as a new worker).</summary>
    public void WatchEnded(string workerId)
    {
        lock (gate)
        {
            if (members.Concat(waiting).FirstOrDefault(w => w.Id == workerId) is { } worker)
                DropLocked(new[] { (worker, "its watch stream closed (process exited or connection lost)") }, log: true);
        }
        Deliver();
    }

    /// <summary>Drops every worker whose lease expired (one generation for all of them); called on a timer.</summary>
    public void ExpireLeases()
    {
        var now = clock.GetUtcNow();
        lock (gate)
        {
            DropLocked(members.Concat(waiting).Where(w => now - w.LastSeen > options.LeaseTimeout)
                .Select(w => (w, $"no heartbeat for {(now - w.LastSeen).TotalSeconds:0.#} s (lease {options.LeaseTimeout.TotalSeconds:0.#} s)"))
                .ToList(), log: true);
        }
        Deliver();
    }

    public StatusReply Status()
    {
        lock (gate)
        {
            var reply = new StatusReply { Registered = members.Count + waiting.Count };
            if (current is not null)
                reply.Current = current.Clone();
            reply.Lost.AddRange(lost);
            return reply;
        }
    }

    /// <summary>
    /// Removes the <paramref name="drops"/> (each with its reason) and forms one generation without them. Members that are lost
    /// (<paramref name="log"/>) are recorded with the rank they held in the current generation; a worker that
    /// leaves is not a loss. Each dropped worker gets a last message saying why, then its stream ends.
    /// </summary>
    private void DropLocked(IReadOnlyList<(Worker Worker, string Reason)> drops, bool log)
    {
        var records = new List<LostRank>();
        var notices = new List<(Worker Worker, string Text)>();
        var removed = false;
        foreach (var (worker, reason) in drops.DistinctBy(d => d.Worker))
        {
            var rank = members.IndexOf(worker);
            if (rank >= 0)
            {
                var number = current?.Number ?? 0;
                if (log)
                    records.Add(new LostRank { Generation = number, Rank = rank, WorkerId = worker.Id, Address = worker.Address, Reason = reason });
                notices.Add((worker, log
                    ? $"worker {worker.Id} (rank {rank} of generation {number}, {worker.Address}) was dropped: {reason}"
                    : $"worker {worker.Id} (rank {rank} of generation {number}, {worker.Address}) left the job"));
                removed = true;
            }
            else if (waiting.Contains(worker))
            {
                notices.Add((worker, log
                    ? $"worker {worker.Id} ({worker.Address}) was dropped before it joined a generation: {reason}"
                    : $"worker {worker.Id} ({worker.Address}) left the job before it joined a generation"));
            }
        }
        if (notices.Count == 0)
            return;
        // ranks are taken above against the current order, so remove only now
        var gone = notices.Select(n => n.Worker).ToHashSet();
        members = members.Where(m => !gone.Contains(m)).ToList();
        waiting.RemoveAll(gone.Contains);
        lost.AddRange(records);
        foreach (var record in records)
            pendingEvents.Enqueue(() => RankLost?.Invoke(record));

        var formed = removed ? TryFormLocked(records, removed: true) : null;
        if (removed && formed is null)
            FailBarriersLocked(records.Count > 0
                ? $"lost {string.Join(", ", records.Select(r => $"rank {r.Rank} ({r.Address}): {r.Reason}"))}"
                : "a member left");
        foreach (var (worker, text) in notices)
        {
            worker.Updates.Writer.TryWrite(new Generation { Number = current?.Number ?? 0, YourRank = -1, Dropped = text });
            worker.Updates.Writer.TryComplete();
        }
    }

    /// <summary>
    /// Forms and publishes a new generation if the waiting workers and members allow it (the first needs the
    /// full world size; later ones form on any change, with at least the minimum world size); returns it.
    /// </summary>
    private Generation? TryFormLocked(IReadOnlyList<LostRank> lostNow, bool removed)
    {
        var next = members.Concat(waiting).ToList();
        var first = current is null;
        if (first ? next.Count < options.WorldSize : next.Count < options.MinWorldSize)
        {
            if (!first && removed && members.Count > 0)
            {
                // too few to go on: the remaining members still learn that their generation is over
                var empty = new Generation { Number = current!.Number + 1, WorldSize = 0 };
                empty.Lost.AddRange(lostNow);
                FailBarriersLocked($"generation {current.Number} ended with too few workers ({members.Count} < {options.MinWorldSize})");
                current = empty;
                PublishLocked(empty);
                return empty;
            }
            return null;
        }
        if (!first && !removed && waiting.Count == 0)
            return null;

        // ranks: on the first generation requested ranks first where free, everybody else fills the gaps; later
        // generations keep the members' relative order and append joiners in the order they registered
        var order = new Worker?[next.Count];
        if (first)
            foreach (var w in next.Where(w => w.RequestedRank >= 0 && w.RequestedRank < order.Length))
                if (order[w.RequestedRank] is null)
                    order[w.RequestedRank] = w;
        var rest = new Queue<Worker>(next.Where(w => !order.Contains(w)));
        for (var i = 0; i < order.Length; i++)
            order[i] ??= rest.Dequeue();

        members = order.Select(w => w!).ToList();
        waiting.Clear();
        var generation = new Generation { Number = (current?.Number ?? 0) + 1, WorldSize = members.Count };
        for (var i = 0; i < members.Count; i++)
        {
            members[i].Rank = i;
            generation.Members.Add(new Member { Rank = i, WorkerId = members[i].Id, Address = members[i].Address, Device = members[i].Device, Host = members[i].Host });
        }
        generation.Lost.AddRange(lostNow);
        FailBarriersLocked($"generation changed to {generation.Number}" + (lostNow.Count > 0
            ? $" (lost {string.Join(", ", lostNow.Select(l => $"rank {l.Rank} at {l.Address}: {l.Reason}"))})"
            : " (membership changed)"));
        current = generation;
        PublishLocked(generation);
        return generation;
    }

    /// <summary>Writes the generation to every member's stream (unbounded channels: never blocks) and queues the event.</summary>
    private void PublishLocked(Generation generation)
    {
        foreach (var worker in members)
            SendLocked(worker, generation);
        var copy = generation.Clone();
        pendingEvents.Enqueue(() => GenerationFormed?.Invoke(copy));
    }

    /// <summary>At most once per generation and worker (a joiner's Watch may come after the publish that included it).</summary>
    private static void SendLocked(Worker worker, Generation generation)
    {
        if (generation.Number <= worker.LastSent)
            return;
        worker.LastSent = generation.Number;
        var copy = generation.Clone();
        copy.YourRank = copy.Members.FirstOrDefault(m => m.WorkerId == worker.Id)?.Rank ?? -1;
        worker.Updates.Writer.TryWrite(copy);
    }

    /// <summary>
    /// Raises the queued events outside the state lock, in the order they were queued, one at a time (a
    /// handler that calls back into this state queues more, delivered after the ones before them).
    /// </summary>
    private void Deliver()
    {
        lock (delivery)
        {
            while (true)
            {
                Action? next;
                lock (gate)
                    if (!pendingEvents.TryDequeue(out next))
                        return;
                try
                {
                    next();
                }
                catch (Exception)
                {
                    // a subscriber's bug must not break the call that changed membership (an RPC, the lease timer)
                }
            }
        }
    }

    private void FailBarriersLocked(string why)
    {
        foreach (var round in barriers.Values)
            round.Done.TrySetException(new RpcException(new Status(StatusCode.Aborted, why)));
        barriers.Clear();
    }

    private void CheckGenerationLocked(long generation, Worker worker)
    {
        if (current is null || !members.Contains(worker))
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"worker {worker.Id} is not a member of the current generation {current?.Number ?? 0}"));
        if (generation != current.Number)
        {
            var lostText = current.Lost.Count > 0 ? $" (lost {string.Join(", ", current.Lost.Select(l => $"rank {l.Rank}"))})" : "";
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"stale generation {generation}: the current generation is {current.Number}{lostText}"));
        }
    }

    private Worker Find(string workerId)
    {
        var worker = members.Concat(waiting).FirstOrDefault(w => w.Id == workerId);
        if (worker is not null)
            return worker;
        var gone = lost.LastOrDefault(l => l.WorkerId == workerId);
        throw new RpcException(new Status(StatusCode.NotFound, gone is not null
            ? $"worker {workerId} was dropped from the job (rank {gone.Rank} of generation {gone.Generation}: {gone.Reason})"
            : $"worker {workerId} is not registered"));
    }

    private sealed class Worker(string id, string address, string device, int requestedRank, DateTimeOffset seen)
    {
        public string Id { get; } = id;
        public string Address { get; } = address;
        public string Device { get; } = device;
        public string Host { get; init; } = "";
        public int RequestedRank { get; } = requestedRank;
        public int Rank { get; set; } = -1;
        public DateTimeOffset LastSeen { get; set; } = seen;
        public bool Watching { get; set; }
        public long LastSent { get; set; }
        public Channel<Generation> Updates { get; } = Channel.CreateUnbounded<Generation>();

        public bool Claims(int rank, Generation? current) =>
            current is null ? RequestedRank == rank : Rank == rank || (Rank < 0 && RequestedRank == rank);
    }

    private sealed class BarrierRound(long generation)
    {
        public long Generation { get; } = generation;
        public HashSet<string> Arrived { get; } = new();
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
