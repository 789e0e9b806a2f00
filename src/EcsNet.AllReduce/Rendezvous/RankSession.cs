using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.Topology;
using EcsNet.AllReduce.Wire;
using EcsNet.Core.Training;
using Grpc.Core;
using Grpc.Net.Client;

namespace EcsNet.AllReduce.Rendezvous;

/// <summary>
/// One rank's membership in a job: hosts the rank's peer server, registers with the coordinator, keeps its
/// lease, follows the generations on the watch stream, and builds the ring of each generation it belongs to.
/// Sessions share nothing, so one process may hold several (one per device, e.g. one per worker actor).
/// <para>
/// When a generation is announced that lost a member of this session's ring (the coordinator dropped it:
/// watch stream closed, lease expired, reported by a peer, or dropped by the process hosting the coordinator),
/// the ring is aborted at once: a collective blocked on that member, which may be frozen with its connections
/// still open, fails with <see cref="PeerFailedException"/> naming it instead of waiting for the peer timeout.
/// A generation that only adds members, or that a member left cleanly, aborts nothing: the ring still works,
/// and the training loop moves to the new generation between steps.
/// </para>
/// Joining, closing and leaving are meant for one caller at a time (the rank's training loop); the properties,
/// <see cref="Changed"/> and the events may be used from any thread.
/// </summary>
public sealed class RankSession : IAsyncDisposable
{
    private readonly WorkerOptions options;
    private readonly GrpcChannel channel;
    private readonly Coordinator.CoordinatorClient client;
    private readonly CancellationTokenSource life = new();
    private readonly object gate = new();
    private readonly List<(long Announced, LostRankInfo Lost)> losses = new();
    private TaskCompletionSource changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task watchLoop = Task.CompletedTask;
    private Task heartbeatLoop = Task.CompletedTask;
    private GenerationInfo? latest;
    private string? droppedReason;
    private IGroupCollective? ring;
    private long joined;
    private bool leaving;
    private int disposed;

    private RankSession(WorkerOptions options, PeerServer peer, GrpcChannel channel)
    {
        this.options = options;
        Peer = peer;
        this.channel = channel;
        client = new Coordinator.CoordinatorClient(channel);
    }

    public PeerServer Peer { get; }

    /// <summary>The id the coordinator gave this rank (what <see cref="CoordinatorHost.DropWorker"/> takes).</summary>
    public string WorkerId { get; private set; } = "";

    public string Device => options.Device;

    /// <summary>The coordinator's URL.</summary>
    public string Coordinator => options.Coordinator;

    /// <summary>The newest generation the coordinator announced to this rank (null before the first).</summary>
    public GenerationInfo? Latest { get { lock (gate) return latest; } }

    /// <summary>
    /// The collectives of the generation this rank is in (null before <see cref="JoinRingAsync"/> and after
    /// <see cref="CloseRingAsync"/>): the gRPC ring, or shared memory inside a host (<see cref="RingOptions.Transport"/>).
    /// </summary>
    public IGroupCollective? Ring { get { lock (gate) return ring; } }

    /// <summary>The generation of the ring joined last (0: none yet); the next join waits for a newer one.</summary>
    public long JoinedGeneration { get { lock (gate) return joined; } }

    /// <summary>
    /// Why this rank can no longer take part, once that is so: the coordinator dropped it (the text names the
    /// rank, the generation and the reason), it left, or the coordinator went away.
    /// </summary>
    public string? DroppedReason { get { lock (gate) return droppedReason; } }

    /// <summary>
    /// Completes at the next change: a generation announced or this rank dropped. Take it before reading
    /// <see cref="Latest"/> and <see cref="DroppedReason"/>, then await it, and no change is missed.
    /// </summary>
    public Task Changed { get { lock (gate) return changed.Task; } }

    /// <summary>
    /// Raised on the watch stream's thread after <see cref="Latest"/> was updated (and after the ring was aborted
    /// if the generation lost one of its members). Keep handlers short: post, do not wait.
    /// </summary>
    public event Action<GenerationInfo>? GenerationAnnounced;

    /// <summary>Raised once, with <see cref="DroppedReason"/>, when this rank can no longer take part.</summary>
    public event Action<string>? Dropped;

    /// <summary>Starts the peer server and registers; generations then arrive on the watch stream.</summary>
    public static async Task<RankSession> StartAsync(WorkerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!Uri.TryCreate(options.Coordinator, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
            throw new ArgumentException($"coordinator '{options.Coordinator}' is not an http:// URL", nameof(options));
        options.Ring.Validate();
        var peer = await PeerServer.StartAsync(options.Bind, options.Port, cancellationToken);
        peer.AttachTimeout = options.Ring.ConnectTimeout;
        var channel = GrpcChannel.ForAddress(options.Coordinator);
        var session = new RankSession(options, peer, channel);
        try
        {
            var reply = await session.client.RegisterAsync(new RegisterRequest
            {
                Address = peer.Address,
                Device = options.Device,
                RequestedRank = options.RequestedRank,
                Host = options.Host,
                Transport = TransportNames.Name(options.Ring.Transport),
            }, deadline: DateTime.UtcNow + options.Ring.ConnectTimeout, cancellationToken: cancellationToken);
            session.WorkerId = reply.WorkerId;
            var watch = session.client.Watch(new WatchRequest { WorkerId = reply.WorkerId }, cancellationToken: session.life.Token);
            session.watchLoop = Task.Run(() => session.WatchLoopAsync(watch));
            session.heartbeatLoop = Task.Run(() => session.HeartbeatLoopAsync(TimeSpan.FromSeconds(reply.HeartbeatIntervalSeconds)));
            return session;
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Waits for a generation newer than <see cref="JoinedGeneration"/> that includes this rank and satisfies
    /// <paramref name="accept"/> (e.g. the full world size); returns the newest such one announced.
    /// </summary>
    /// <exception cref="GroupMembershipException">This rank was dropped (or left, or lost the coordinator).</exception>
    /// <exception cref="TimeoutException">None came within <paramref name="timeout"/>.</exception>
    public async Task<GenerationInfo> WaitForGenerationAsync(Func<GenerationInfo, bool>? accept = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout is { } t)
            limit.CancelAfter(t);
        while (true)
        {
            Task next;
            GenerationInfo? candidate;
            long after;
            lock (gate)
            {
                if (droppedReason is not null)
                    throw new GroupMembershipException(droppedReason);
                candidate = latest;
                after = joined;
                next = changed.Task;
            }
            if (candidate is not null && candidate.Number > after && candidate.Rank >= 0 && (accept?.Invoke(candidate) ?? true))
                return candidate;
            try
            {
                await next.WaitAsync(limit.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                var latestText = candidate is null
                    ? "none formed yet"
                    : $"latest: generation {candidate.Number}, world size {candidate.WorldSize}" +
                      (candidate.Rank < 0 ? ", without this worker" : "") +
                      (candidate.Lost.Count > 0 ? $", lost {string.Join("; ", candidate.Lost)}" : "");
                throw new TimeoutException($"worker {WorkerId}: no {(accept is null ? "" : "suitable ")}generation after generation {after} " +
                                           $"that includes it came from {Coordinator} within {timeout?.TotalSeconds:0.#} s ({latestText})");
            }
        }
    }

    /// <summary>
    /// Waits as <see cref="WaitForGenerationAsync"/> does, closes the previous ring, and joins the ring of that
    /// generation. If a member of it was lost meanwhile, the ring comes back aborted (its first collective
    /// fails naming that member) and a newer generation is already announced.
    /// </summary>
    public async Task<IGroupCollective> JoinRingAsync(Func<GenerationInfo, bool>? accept = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var generation = await WaitForGenerationAsync(accept, timeout, cancellationToken);
        await CloseRingAsync();
        var next = GroupCollectives.Join(Peer, generation.Number, generation.Rank, generation.Members, options.Ring);
        (string Reason, int Rank)? abort;
        lock (gate)
        {
            ring = next;
            joined = generation.Number;
            losses.RemoveAll(l => l.Announced <= generation.Number);
            // a generation announced between the wait and now may already have lost a member of this ring
            abort = LossLocked(next);
        }
        if (abort is { } a)
            next.Abort(a.Reason, a.Rank);
        return next;
    }

    /// <summary>Leaves the current ring (disposes it), e.g. before waiting for the next generation.</summary>
    public async Task CloseRingAsync()
    {
        IGroupCollective? old;
        lock (gate)
        {
            old = ring;
            ring = null;
        }
        if (old is not null)
            await old.DisposeAsync();
    }

    /// <summary>Returns when every member of the joined generation reached <paramref name="step"/>.</summary>
    public async Task BarrierAsync(long step, CancellationToken cancellationToken = default)
    {
        var generation = JoinedGeneration;
        if (generation == 0)
            throw new InvalidOperationException($"worker {WorkerId}: join a ring before a barrier");
        await client.BarrierAsync(new BarrierRequest { WorkerId = WorkerId, Generation = generation, Step = step }, cancellationToken: cancellationToken);
    }

    /// <summary>
    /// Tells the coordinator which peer failed a collective of the joined generation; it drops that rank and
    /// forms a new generation. A failure that names no rank is not reported.
    /// </summary>
    public Task ReportFailureAsync(PeerFailedException failure, CancellationToken cancellationToken = default) =>
        failure.Rank < 0 ? Task.CompletedTask : ReportFailureAsync(failure.Rank, failure.Message, cancellationToken);

    /// <summary>
    /// Reports rank <paramref name="suspectRank"/> of the joined generation as failed. The coordinator refuses a
    /// report on a generation that is no longer current (<see cref="RpcException"/>, FailedPrecondition).
    /// </summary>
    public async Task ReportFailureAsync(int suspectRank, string detail, CancellationToken cancellationToken = default)
    {
        var generation = JoinedGeneration;
        if (generation == 0)
            throw new InvalidOperationException($"worker {WorkerId}: no generation joined to report on");
        if (suspectRank < 0)
            throw new ArgumentOutOfRangeException(nameof(suspectRank), suspectRank, "the suspect must be a rank of the joined generation");
        await client.ReportFailureAsync(new FailureReport
        {
            WorkerId = WorkerId,
            Generation = generation,
            SuspectRank = suspectRank,
            Detail = detail,
        }, deadline: DateTime.UtcNow + options.Ring.ConnectTimeout, cancellationToken: cancellationToken);
    }

    /// <summary>The coordinator's view: current generation and every lost rank.</summary>
    public async Task<StatusReply> CoordinatorStatusAsync(CancellationToken cancellationToken = default) =>
        await client.GetStatusAsync(new StatusRequest(), deadline: DateTime.UtcNow + options.Ring.ConnectTimeout, cancellationToken: cancellationToken);

    /// <summary>
    /// Leaves the job cleanly: the coordinator forms a generation without this rank and does not log it as lost,
    /// so the others' rings are not aborted. The ring stays open until <see cref="CloseRingAsync"/> (or
    /// disposal). Best effort: a coordinator that is gone or has dropped this rank already needs no leave.
    /// </summary>
    public async Task LeaveAsync(CancellationToken cancellationToken = default)
    {
        lock (gate)
            leaving = true;
        try
        {
            await client.LeaveAsync(new LeaveRequest { WorkerId = WorkerId }, deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: cancellationToken);
        }
        catch (RpcException) { }
    }

    /// <summary>The member of <paramref name="current"/> that a generation announced after it lost, if any.</summary>
    private (string Reason, int Rank)? LossLocked(IGroupCollective? current)
    {
        if (current is null)
            return null;
        foreach (var (announced, lost) in losses)
        {
            if (announced <= current.Generation)
                continue;
            var member = current.Members.FirstOrDefault(m => m.Address == lost.Address && m.Rank != current.Rank);
            if (member is not null)
                return ($"{member} was lost: {lost.Reason} (generation {announced} formed without it)", member.Rank);
        }
        return null;
    }

    private async Task WatchLoopAsync(AsyncServerStreamingCall<Generation> watch)
    {
        string reason = $"the coordinator at {Coordinator} closed the watch stream (it shut down)";
        try
        {
            await foreach (var generation in watch.ResponseStream.ReadAllAsync(life.Token))
            {
                if (generation.Dropped.Length > 0)
                {
                    OnDropped(generation.Dropped, abortRing: true);
                    return;
                }
                OnGeneration(GenerationInfo.From(generation));
            }
        }
        catch (RpcException e) when (!life.IsCancellationRequested)
        {
            reason = $"the watch stream from the coordinator at {Coordinator} failed: {e.Status.StatusCode}: {e.Status.Detail}";
        }
        catch (Exception) when (life.IsCancellationRequested)
        {
            return;
        }
        finally
        {
            watch.Dispose();
        }
        // without a coordinator no new generation can form, but the current ring may still finish its step
        OnDropped(reason, abortRing: false);
    }

    private async Task HeartbeatLoopAsync(TimeSpan interval)
    {
        try
        {
            while (!life.IsCancellationRequested)
            {
                await Task.Delay(interval, life.Token);
                try
                {
                    await client.HeartbeatAsync(new HeartbeatRequest { WorkerId = WorkerId, Generation = JoinedGeneration },
                        deadline: DateTime.UtcNow + interval * 4, cancellationToken: life.Token);
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
                {
                    OnDropped(e.Status.Detail, abortRing: true);
                    return;
                }
                catch (RpcException) when (!life.IsCancellationRequested)
                {
                    // coordinator briefly unreachable: the lease decides
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private void OnGeneration(GenerationInfo generation)
    {
        TaskCompletionSource wake;
        IGroupCollective? current;
        (string Reason, int Rank)? abort;
        lock (gate)
        {
            if (latest is null || generation.Number > latest.Number)
                latest = generation;
            foreach (var lost in generation.Lost)
                losses.Add((generation.Number, lost));
            current = ring;
            abort = LossLocked(current);
            wake = changed;
            changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        if (abort is { } a)
            current!.Abort(a.Reason, a.Rank);
        Raise(GenerationAnnounced, generation);
        wake.TrySetResult();
    }

    private void OnDropped(string reason, bool abortRing)
    {
        TaskCompletionSource wake;
        IGroupCollective? current;
        lock (gate)
        {
            if (droppedReason is not null)
                return;
            droppedReason = reason;
            current = abortRing && !leaving ? ring : null;
            wake = changed;
            changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        current?.Abort($"this rank was dropped: {reason}");
        Raise(Dropped, reason);
        wake.TrySetResult();
    }

    private static void Raise<T>(Action<T>? handlers, T value)
    {
        try
        {
            handlers?.Invoke(value);
        }
        catch (Exception)
        {
            // a subscriber's bug must not stop this rank from following its membership
        }
    }

    /// <summary>Stops without telling the coordinator (as if the process died): the watch stream closes, the ring and peer server stop.</summary>
    public async ValueTask DisposeAsync()
    {
        // an owner's stop path and an `await using` may both get here
        if (Interlocked.Exchange(ref disposed, 1) == 1)
            return;
        life.Cancel();
        try { await Task.WhenAll(watchLoop, heartbeatLoop).WaitAsync(TimeSpan.FromSeconds(2)); } catch (Exception) { }
        await CloseRingAsync();
        await Peer.DisposeAsync();
        channel.Dispose();
    }
}
