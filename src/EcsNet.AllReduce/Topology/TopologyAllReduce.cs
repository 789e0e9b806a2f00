using System.Numerics;
using System.Numerics.Tensors;
using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.SharedMemory;

namespace EcsNet.AllReduce.Topology;

/// <summary>
/// A hierarchical all-reduce, as NCCL and Horovod's hierarchical mode arrange it: the ranks of each host sum
/// into their leader (the host's lowest rank) through shared memory, the leaders all-reduce on the gRPC ring,
/// and each leader hands the result to its host's ranks through shared memory again. With one host it is
/// shared memory only. Every rank ends with the leaders' bits, which the ring already makes identical, so
/// replicas stay bit-identical; sums run in a fixed order (host ranks in rank order, then the ring's order).
/// Averages divide once, on the leaders, after the sum. The fp16 wire applies between hosts only.
/// </summary>
public sealed class TopologyAllReduce : IGroupCollective
{
    private readonly RingMember[] members;
    private readonly IReadOnlyList<IReadOnlyList<RingMember>> hosts;
    private readonly IReadOnlyList<RingMember> host;
    private readonly int hostIndex;
    private readonly int local;
    private readonly RingOptions options;
    private readonly SharedMemoryGroup? shared;
    private readonly RingAllReduce? leaders;
    private readonly DedicatedThread? thread;
    private readonly SemaphoreSlim gate = new(1, 1);
    private Exception? failure;
    private bool disposed;

    internal TopologyAllReduce(PeerServer? server, long generation, int rank, RingMember[] members,
        IReadOnlyList<IReadOnlyList<RingMember>> hosts, RingOptions options)
    {
        this.members = members;
        this.hosts = hosts;
        this.options = options;
        Generation = generation;
        Rank = rank;
        hostIndex = Enumerable.Range(0, hosts.Count).First(h => hosts[h].Any(m => m.Rank == rank));
        host = hosts[hostIndex];
        local = host.ToList().FindIndex(m => m.Rank == rank);
        if (host.Count > 1)
        {
            var path = SharedMemoryGroup.PathFor(host[0].Host, generation, host);
            shared = new SharedMemoryGroup(path, generation, local, host, members, options.ShmSlotBytes, options.PeerTimeout, options.ConnectTimeout);
            thread = new DedicatedThread($"ecsnet-shm-r{rank}");
        }
        if (local == 0 && hosts.Count > 1)
            leaders = RingAllReduce.JoinSubRing(server, generation, hostIndex, hosts.Select(h => h[0]).ToArray(), options);
    }

    public long Generation { get; }

    public int Rank { get; }

    public int WorldSize => members.Length;

    public IReadOnlyList<RingMember> Members => members;

    public Exception? Failure => Volatile.Read(ref failure);

    public string Plan => hosts.Count == 1
        ? $"shared memory, {members.Length} ranks"
        : $"{hosts.Count} hosts ({string.Join("+", hosts.Select(h => h.Count))} ranks): shared memory inside, gRPC ring of leaders between";

    public Task AllReduceAsync(Memory<float> buffer, ReduceOp op = ReduceOp.Sum, WireCompression? compression = null, CancellationToken cancellationToken = default) =>
        RunAsync(() => AllReduceCoreAsync(buffer, op, compression ?? options.Compression), cancellationToken);

    public Task AllReduceAsync(Memory<double> buffer, ReduceOp op = ReduceOp.Sum, CancellationToken cancellationToken = default) =>
        RunAsync(() => AllReduceCoreAsync(buffer, op, WireCompression.None), cancellationToken);

    public Task BroadcastAsync(Memory<float> buffer, int root = 0, CancellationToken cancellationToken = default)
    {
        if (root < 0 || root >= WorldSize)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"root must be in [0, {WorldSize})");
        return RunAsync(() => BroadcastCoreAsync(buffer, root), cancellationToken);
    }

    private async Task AllReduceCoreAsync<T>(Memory<T> buffer, ReduceOp op, WireCompression compression) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var average = op == ReduceOp.Average;
        if (hosts.Count == 1)
        {
            await OnThread(() => shared!.AllReduce(buffer.Span, average, everyone: true));
            return;
        }
        if (shared is not null)
            await OnThread(() => shared.AllReduce(buffer.Span, average: false, everyone: false));
        if (leaders is not null)
        {
            if (typeof(T) == typeof(float))
                await leaders.AllReduceAsync((Memory<float>)(object)buffer, ReduceOp.Sum, compression);
            else
                await leaders.AllReduceAsync((Memory<double>)(object)buffer, ReduceOp.Sum);
            if (average)
                TensorPrimitives.Divide(buffer.Span, T.CreateChecked(WorldSize), buffer.Span);
        }
        if (shared is not null)
            await OnThread(() => shared.Broadcast(buffer.Span, root: 0));
    }

    private async Task BroadcastCoreAsync(Memory<float> buffer, int root)
    {
        var rootHost = Enumerable.Range(0, hosts.Count).First(h => hosts[h].Any(m => m.Rank == root));
        if (hostIndex == rootHost && shared is not null)
        {
            var rootLocal = host.ToList().FindIndex(m => m.Rank == root);
            await OnThread(() => shared.Broadcast(buffer.Span, rootLocal));
        }
        if (leaders is not null)
            await leaders.BroadcastAsync(buffer, hosts[rootHost][0].Rank);
        if (hostIndex != rootHost && shared is not null)
            await OnThread(() => shared.Broadcast(buffer.Span, root: 0));
    }

    private Task OnThread(Action work) => thread!.Run(work);

    private async Task RunAsync(Func<Task> collective, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        await gate.WaitAsync(cancellationToken);
        try
        {
            ThrowIfFailed();
            await collective().WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // the other ranks are in the middle of this collective: the group cannot be used again
            Fail(new OperationCanceledException($"rank {Rank} cancelled a collective of generation {Generation}"));
            throw;
        }
        catch (Exception e)
        {
            Fail(e);
            throw Failure ?? e;
        }
        finally
        {
            gate.Release();
        }
    }

    private void ThrowIfFailed()
    {
        if (Failure is { } f)
            throw PeerFailedException.AlreadyFailed(f, $"the collectives of generation {Generation}");
    }

    public void Abort(string reason, int blamedRank = -1)
    {
        if (disposed)
            return;
        var blamed = blamedRank >= 0 && blamedRank < members.Length ? members[blamedRank] : null;
        Fail(PeerFailedException.Aborted(blamed, Generation, Rank, reason));
    }

    /// <summary>Gives up on the group: the host's ranks (through shared memory) and the other leaders (through the ring) hear why.</summary>
    private void Fail(Exception reason)
    {
        if (!PeerFailedException.KeepFirst(ref failure, reason))
            return;
        var blamed = PeerFailedException.BlamedBy(reason);
        shared?.Abort($"rank {Rank}: {reason.Message}", blamed);
        leaders?.Abort(reason.Message, blamed);
    }

    public async ValueTask DisposeAsync()
    {
        if (disposed)
            return;
        disposed = true;
        // a collective still running (another thread's) ends at its next wait once aborted; then nothing touches the mapping
        if (!gate.Wait(0))
        {
            Fail(new ObjectDisposedException(nameof(TopologyAllReduce), $"rank {Rank} closed its collectives of generation {Generation}"));
            await gate.WaitAsync();
        }
        try
        {
            if (leaders is not null)
                await leaders.DisposeAsync();
            thread?.Dispose();
            shared?.Dispose();
        }
        finally
        {
            gate.Release();
        }
    }
}
