using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.Wire;
using Grpc.Core;
using Grpc.Net.Client;

namespace EcsNet.AllReduce.Rendezvous;

/// <summary>
/// A worker's membership in a job: hosts the peer server, registers with the coordinator, keeps its lease,
/// follows the generations on the watch stream, and builds the ring of each generation it belongs to.
/// </summary>
public sealed class ClusterWorker : IAsyncDisposable
{
    private readonly WorkerOptions options;
    private readonly GrpcChannel channel;
    private readonly Coordinator.CoordinatorClient client;
    private readonly CancellationTokenSource life = new();
    private readonly object gate = new();
    private TaskCompletionSource changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task watchLoop = Task.CompletedTask;
    private Task heartbeatLoop = Task.CompletedTask;
    private GenerationInfo? latest;
    private string? droppedReason;

    private ClusterWorker(WorkerOptions options, PeerServer peer, GrpcChannel channel)
    {
        this.options = options;
        Peer = peer;
        this.channel = channel;
        client = new Coordinator.CoordinatorClient(channel);
    }

    public PeerServer Peer { get; }

    public string WorkerId { get; private set; } = "";

    public string Device => options.Device;

    /// <summary>The newest generation the coordinator announced to this worker.</summary>
    public GenerationInfo? Latest { get { lock (gate) return latest; } }

    /// <summary>The ring of the generation this worker joined last (null before <see cref="JoinRingAsync"/>).</summary>
    public RingAllReduce? Ring { get; private set; }

    /// <summary>Why the coordinator dropped this worker, once it has.</summary>
    public string? DroppedReason { get { lock (gate) return droppedReason; } }

    /// <summary>Starts the peer server and registers; generations then arrive on the watch stream.</summary>
    public static async Task<ClusterWorker> StartAsync(WorkerOptions options, CancellationToken cancellationToken = default)
    {
        options.Ring.Validate();
        var peer = await PeerServer.StartAsync(options.Bind, options.Port, cancellationToken);
        peer.AttachTimeout = options.Ring.ConnectTimeout;
        var channel = GrpcChannel.ForAddress(options.Coordinator);
        var worker = new ClusterWorker(options, peer, channel);
        try
        {
            var reply = await worker.client.RegisterAsync(new RegisterRequest
            {
                Address = peer.Address,
                Device = options.Device,
                RequestedRank = options.RequestedRank,
            }, deadline: DateTime.UtcNow + options.Ring.ConnectTimeout, cancellationToken: cancellationToken);
            worker.WorkerId = reply.WorkerId;
            var watch = worker.client.Watch(new WatchRequest { WorkerId = reply.WorkerId }, cancellationToken: worker.life.Token);
            worker.watchLoop = Task.Run(() => worker.WatchLoopAsync(watch));
            worker.heartbeatLoop = Task.Run(() => worker.HeartbeatLoopAsync(TimeSpan.FromSeconds(reply.HeartbeatIntervalSeconds)));
            return worker;
        }
        catch
        {
            await worker.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Waits for a generation newer than the current ring's that includes this worker and satisfies
    /// <paramref name="accept"/> (e.g. the full world size), then replaces the ring with that generation's.
    /// </summary>
    public async Task<RingAllReduce> JoinRingAsync(Func<GenerationInfo, bool>? accept = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout is { } t)
            limit.CancelAfter(t);
        var after = Ring?.Generation ?? 0;
        while (true)
        {
            Task next;
            GenerationInfo? candidate;
            lock (gate)
            {
                if (droppedReason is not null)
                    throw new InvalidOperationException($"worker {WorkerId} was dropped by the coordinator: {droppedReason}");
                candidate = latest;
                next = changed.Task;
            }
            if (candidate is not null && candidate.Number > after && candidate.Rank >= 0 && (accept?.Invoke(candidate) ?? true))
            {
                if (Ring is not null)
                    await Ring.DisposeAsync();
                Ring = RingAllReduce.Join(Peer, candidate.Number, candidate.Rank, candidate.Members, options.Ring);
                return Ring;
            }
            try
            {
                await next.WaitAsync(limit.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"worker {WorkerId}: no suitable generation from {options.Coordinator} within {timeout?.TotalSeconds:0.#} s" +
                                           (candidate is null ? " (none formed yet)" : $" (latest: generation {candidate.Number}, world size {candidate.WorldSize})"));
            }
        }
    }

    /// <summary>Returns when every member of the current ring's generation reached <paramref name="step"/>.</summary>
    public async Task BarrierAsync(long step, CancellationToken cancellationToken = default)
    {
        var generation = Ring?.Generation ?? throw new InvalidOperationException("join a ring before a barrier");
        await client.BarrierAsync(new BarrierRequest { WorkerId = WorkerId, Generation = generation, Step = step }, cancellationToken: cancellationToken);
    }

    /// <summary>Tells the coordinator which peer failed a collective; it drops that rank and forms a new generation.</summary>
    public async Task ReportFailureAsync(PeerFailedException failure, CancellationToken cancellationToken = default)
    {
        var generation = Ring?.Generation ?? throw new InvalidOperationException("no ring to report on");
        if (failure.Rank < 0)
            return;
        await client.ReportFailureAsync(new FailureReport
        {
            WorkerId = WorkerId,
            Generation = generation,
            SuspectRank = failure.Rank,
            Detail = failure.Message,
        }, cancellationToken: cancellationToken);
    }

    /// <summary>The coordinator's view: current generation and every lost rank.</summary>
    public async Task<StatusReply> CoordinatorStatusAsync(CancellationToken cancellationToken = default) =>
        await client.GetStatusAsync(new StatusRequest(), cancellationToken: cancellationToken);

    private async Task WatchLoopAsync(AsyncServerStreamingCall<Generation> watch)
    {
        string reason = "the coordinator closed the watch stream";
        try
        {
            await foreach (var generation in watch.ResponseStream.ReadAllAsync(life.Token))
                Announce(GenerationInfo.From(generation), null);
        }
        catch (RpcException e) when (!life.IsCancellationRequested)
        {
            reason = $"watch stream failed: {e.Status.StatusCode}: {e.Status.Detail}";
        }
        catch (Exception) when (life.IsCancellationRequested)
        {
            return;
        }
        finally
        {
            watch.Dispose();
        }
        Announce(null, reason);
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
                    await client.HeartbeatAsync(new HeartbeatRequest { WorkerId = WorkerId, Generation = Ring?.Generation ?? 0 },
                        deadline: DateTime.UtcNow + interval * 4, cancellationToken: life.Token);
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
                {
                    Announce(null, e.Status.Detail);
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

    private void Announce(GenerationInfo? generation, string? dropped)
    {
        TaskCompletionSource wake;
        lock (gate)
        {
            if (generation is not null)
                latest = generation;
            if (dropped is not null)
                droppedReason ??= dropped;
            wake = changed;
            changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        wake.TrySetResult();
    }

    /// <summary>Leaves the job cleanly (the coordinator forms a generation without this worker).</summary>
    public async Task LeaveAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await client.LeaveAsync(new LeaveRequest { WorkerId = WorkerId }, deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: cancellationToken);
        }
        catch (RpcException) { }
    }

    /// <summary>Stops without telling the coordinator (as if the process died); the watch stream closes.</summary>
    public async ValueTask DisposeAsync()
    {
        life.Cancel();
        try { await Task.WhenAll(watchLoop, heartbeatLoop).WaitAsync(TimeSpan.FromSeconds(2)); } catch (Exception) { }
        if (Ring is not null)
            await Ring.DisposeAsync();
        await Peer.DisposeAsync();
        channel.Dispose();
    }
}
