using System.Threading.Channels;
using EcsNet.AllReduce.Wire;
using Grpc.Core;

namespace EcsNet.AllReduce.Rendezvous;

/// <summary>
/// The coordinator's bookkeeping: registered workers, the current generation (members in ring order),
/// barriers, and the log of lost ranks. Every change of membership forms a new generation that is pushed
/// to every member's watch stream. One lock guards it all; nothing here blocks while holding it.
/// </summary>
internal sealed class CoordinatorState
{
    private readonly CoordinatorOptions options;
    private readonly TimeProvider clock;
    private readonly object gate = new();
    private readonly List<Worker> waiting = new();
    private readonly List<LostRank> lost = new();
    private readonly Dictionary<long, BarrierRound> barriers = new();
    private List<Worker> members = new();
    private Generation? current;
    private int nextWorker;

    public CoordinatorState(CoordinatorOptions options, TimeProvider? clock = null)
    {
        options.Validate();
        this.options = options;
        this.clock = clock ?? TimeProvider.System;
    }

    public CoordinatorOptions Options => options;

    /// <summary>Raised (outside the lock) for each rank that is dropped.</summary>
    public event Action<LostRank>? RankLost;

    public RegisterReply Register(RegisterRequest request)
    {
        if (string.IsNullOrWhiteSpace(request.Address) || !Uri.TryCreate(request.Address, UriKind.Absolute, out _))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"worker address '{request.Address}' is not an absolute URL like http://127.0.0.1:5000"));
        var device = string.IsNullOrWhiteSpace(request.Device) ? "cpu" : request.Device;
        Generation? formed;
        Worker worker;
        lock (gate)
        {
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
            worker = new Worker($"w{++nextWorker}", request.Address, device, request.RequestedRank, clock.GetUtcNow());
            waiting.Add(worker);
            formed = TryFormLocked(Array.Empty<LostRank>());
        }
        Publish(formed);
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
                worker.Updates.Writer.TryWrite(ForWorker(current, worker));
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
        Worker? suspect;
        int reporterRank;
        lock (gate)
        {
            var reporter = Find(report.WorkerId);
            CheckGenerationLocked(report.Generation, reporter);
            reporterRank = members.IndexOf(reporter);
            if (report.SuspectRank < 0 || report.SuspectRank >= members.Count)
                throw new RpcException(new Status(StatusCode.InvalidArgument,
                    $"rank {report.SuspectRank} is not in generation {report.Generation} (world size {members.Count})"));
            suspect = members[report.SuspectRank];
        }
        Drop(suspect, $"reported by rank {reporterRank}: {report.Detail}");
        lock (gate)
            return current?.Number ?? 0;
    }

    public void Leave(string workerId)
    {
        Worker worker;
        lock (gate)
            worker = Find(workerId);
        Drop(worker, "left", log: false);
    }

    /// <summary>A watch stream closed: the process is gone (or will reconnect as a new worker).</summary>
    public void WatchEnded(string workerId)
    {
        Worker? worker;
        lock (gate)
            worker = members.Concat(waiting).FirstOrDefault(w => w.Id == workerId);
        if (worker is not null)
            Drop(worker, "its watch stream closed (process exited or connection lost)");
    }

    /// <summary>Drops every worker whose lease expired; called on a timer.</summary>
    public void ExpireLeases()
    {
        var now = clock.GetUtcNow();
        List<Worker> expired;
        lock (gate)
            expired = members.Concat(waiting).Where(w => now - w.LastSeen > options.LeaseTimeout).ToList();
        foreach (var worker in expired)
            Drop(worker, $"no heartbeat for {(now - worker.LastSeen).TotalSeconds:0.#} s (lease {options.LeaseTimeout.TotalSeconds:0.#} s)");
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

    private void Drop(Worker worker, string reason, bool log = true)
    {
        Generation? formed;
        LostRank? record = null;
        lock (gate)
        {
            var rank = members.IndexOf(worker);
            if (rank < 0 && !waiting.Contains(worker))
                return;
            if (rank >= 0)
            {
                members = members.Where(m => m != worker).ToList();
                if (log)
                {
                    record = new LostRank { Generation = current!.Number, Rank = rank, WorkerId = worker.Id, Address = worker.Address, Reason = reason };
                    lost.Add(record);
                }
            }
            else
            {
                waiting.Remove(worker);
            }
            worker.Dropped = reason;
            worker.Updates.Writer.TryComplete();
            formed = rank >= 0 ? TryFormLocked(record is null ? Array.Empty<LostRank>() : new[] { record }) : null;
            if (rank >= 0 && formed is null)
                FailBarriersLocked($"rank {rank} ({worker.Address}) was lost: {reason}");
        }
        if (record is not null)
            RankLost?.Invoke(record);
        Publish(formed);
    }

    /// <summary>Forms a new generation if the waiting workers and members allow it; returns it (published by the caller).</summary>
    private Generation? TryFormLocked(IReadOnlyList<LostRank> lostNow)
    {
        var next = members.Concat(waiting).ToList();
        var first = current is null;
        if (first ? next.Count < options.WorldSize : next.Count < options.MinWorldSize)
        {
            if (!first && lostNow.Count > 0 && members.Count > 0)
            {
                // too few to go on: the survivors still learn that the generation is over
                current = new Generation { Number = current!.Number + 1, WorldSize = 0 };
                current.Lost.AddRange(lostNow);
                FailBarriersLocked($"generation {current.Number - 1} ended with too few workers");
                return current;
            }
            return null;
        }
        if (!first && lostNow.Count == 0 && waiting.Count == 0)
            return null;

        // ranks: requested ranks first where free, everybody else fills the gaps in their previous order
        var order = new Worker?[next.Count];
        foreach (var w in next.Where(w => w.RequestedRank >= 0 && w.RequestedRank < order.Length && first))
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
            generation.Members.Add(new Member { Rank = i, WorkerId = members[i].Id, Address = members[i].Address, Device = members[i].Device });
        }
        generation.Lost.AddRange(lostNow);
        FailBarriersLocked($"generation changed to {generation.Number}" + (lostNow.Count > 0
            ? $" (lost {string.Join(", ", lostNow.Select(l => $"rank {l.Rank} at {l.Address}: {l.Reason}"))})"
            : " (membership changed)"));
        current = generation;
        return generation;
    }

    private void Publish(Generation? generation)
    {
        if (generation is null)
            return;
        List<Worker> audience;
        lock (gate)
            audience = members.ToList();
        foreach (var worker in audience)
            worker.Updates.Writer.TryWrite(ForWorker(generation, worker));
    }

    private static Generation ForWorker(Generation generation, Worker worker)
    {
        var copy = generation.Clone();
        copy.YourRank = copy.Members.FirstOrDefault(m => m.WorkerId == worker.Id)?.Rank ?? -1;
        return copy;
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
        public int RequestedRank { get; } = requestedRank;
        public int Rank { get; set; } = -1;
        public DateTimeOffset LastSeen { get; set; } = seen;
        public bool Watching { get; set; }
        public string? Dropped { get; set; }
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
