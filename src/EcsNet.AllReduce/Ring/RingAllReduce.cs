using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using EcsNet.AllReduce.Wire;
using Grpc.Core;
using Grpc.Net.Client;

namespace EcsNet.AllReduce.Ring;

/// <summary>
/// Ring all-reduce over gRPC streams (Baidu's ring all-reduce as in Horovod, Sergeev and Del Balso 2018): reduce-scatter then all-gather, each segment cut into
/// pieces of <see cref="RingOptions.ChunkBytes"/> that flow on one long-lived stream per neighbour (the
/// successor pulls from this worker's peer server), so a
/// piece is forwarded as soon as it is reduced (pipelining). Segment k is summed in ring order starting
/// at rank k and finished by one owner, which then sends the final bits to everyone: every replica ends
/// bit-identical, and the same inputs give the same result run after run.
/// </summary>
public sealed class RingAllReduce : IGroupCollective, IPieceSink
{
    private readonly RingMember[] members;
    private readonly int position;
    private readonly RingOptions options;
    private readonly PeerServer? server;
    private readonly OutboundLink? link;
    private readonly Channel<Outgoing> outbound = Channel.CreateUnbounded<Outgoing>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim gate = new(1, 1);
    private readonly CancellationTokenSource failed = new();
    private readonly CancellationTokenSource life = new();
    private readonly GrpcChannel? channel;
    private readonly AsyncServerStreamingCall<RingFrame>? pull;
    private readonly TaskCompletionSource served = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Exception? failure;
    private Exception? successorGone;
    private int sendsPending;
    private long nextOp;
    private bool disposed;

    // the piece the collective in progress waits for (a sink set last, read first): see TryConsume
    private long expectOp;
    private int expectPhase, expectSegment, expectPiece, expectStart, expectLength, expectBytes;
    private volatile IPieceConsumer? expectSink;

    private RingAllReduce(PeerServer? server, long generation, int position, RingMember[] members, RingOptions options)
    {
        this.server = server;
        this.members = members;
        this.position = position;
        this.options = options;
        Generation = generation;
        Rank = members[position].Rank;
        if (members.Length == 1)
            return;
        link = new OutboundLink(generation, members[position], Successor, ServeAsync);
        server!.Attach(link);
        channel = GrpcTuning.Channel(Predecessor.Address, options.ConnectTimeout);
        pull = RingWire.OpenPull(channel.CreateCallInvoker(), new PullRequest { Generation = generation, ReceiverRank = Rank }, this, life.Token);
    }

    /// <summary>
    /// Joins the ring of <paramref name="generation"/>: <paramref name="members"/>[i] has rank i; this
    /// worker is <paramref name="rank"/> and receives on <paramref name="server"/> (unused when alone).
    /// </summary>
    public static RingAllReduce Join(PeerServer? server, long generation, int rank, IReadOnlyList<RingMember> members, RingOptions? options = null)
    {
        options ??= new RingOptions();
        options.Validate();
        if (members.Count == 0)
            throw new ArgumentException("a ring needs at least one member", nameof(members));
        if (rank < 0 || rank >= members.Count)
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"rank must be in [0, {members.Count})");
        for (var i = 0; i < members.Count; i++)
            if (members[i].Rank != i)
                throw new ArgumentException($"members[{i}] has rank {members[i].Rank}; members must be listed in rank order", nameof(members));
        if (members.Count > 1 && server is null)
            throw new ArgumentNullException(nameof(server), "a ring of more than one rank needs this worker's peer server");
        return new RingAllReduce(server, generation, rank, members.ToArray(), options);
    }

    /// <summary>
    /// Joins a ring of some ranks of a generation, e.g. the node leaders of a hierarchical all-reduce:
    /// <paramref name="ringOrder"/> lists them in ring order with their ranks in the generation, and this worker
    /// is at <paramref name="position"/>. Ranks in failures, aborts and <see cref="BroadcastAsync"/>'s root are
    /// those ranks, so a failure names the same rank on every transport.
    /// </summary>
    internal static RingAllReduce JoinSubRing(PeerServer? server, long generation, int position, IReadOnlyList<RingMember> ringOrder, RingOptions options)
    {
        options.Validate();
        if (ringOrder.Count == 0 || position < 0 || position >= ringOrder.Count)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"position must be in [0, {ringOrder.Count})");
        if (ringOrder.Select(m => m.Rank).Distinct().Count() != ringOrder.Count)
            throw new ArgumentException("a rank appears twice in the ring", nameof(ringOrder));
        if (ringOrder.Count > 1 && server is null)
            throw new ArgumentNullException(nameof(server), "a ring of more than one rank needs this worker's peer server");
        return new RingAllReduce(server, generation, position, ringOrder.ToArray(), options);
    }

    public long Generation { get; }

    public int Rank { get; }

    public int WorldSize => members.Length;

    public IReadOnlyList<RingMember> Members => members;

    public string Plan => members.Length == 1 ? "one rank" : $"gRPC ring of {members.Length} ranks";

    /// <summary>Why this ring failed or was aborted (null while it works).</summary>
    public Exception? Failure => Volatile.Read(ref failure);

    /// <summary>
    /// Fails this ring from outside, e.g. because the rendezvous dropped a member that may be frozen while its
    /// connections stay open: a collective waiting on it (and every later one) throws
    /// <see cref="PeerFailedException"/> with <paramref name="reason"/> at once instead of after
    /// <see cref="RingOptions.PeerTimeout"/>, and the successor hears of it through the ring's abort message.
    /// <paramref name="blamedRank"/> is the rank in this ring held responsible (-1: none). Touches only this
    /// ring: the rings of other generations on the same peer server go on. No effect once disposed or failed.
    /// </summary>
    public void Abort(string reason, int blamedRank = -1)
    {
        if (disposed)
            return;
        Fail(PeerFailedException.Aborted(Member(blamedRank), Generation, Rank, reason));
    }

    /// <summary>The member with rank <paramref name="rank"/>; a rank of the generation outside this ring has no address here.</summary>
    private RingMember? Member(int rank) => RingMember.Find(members, rank);

    private int PredecessorPosition => (position - 1 + members.Length) % members.Length;

    private RingMember Predecessor => members[PredecessorPosition];

    private RingMember Successor => members[(position + 1) % members.Length];

    public Task AllReduceAsync(Memory<float> buffer, ReduceOp op = ReduceOp.Sum, WireCompression? compression = null, CancellationToken cancellationToken = default) =>
        RunAsync(buffer, op, compression ?? options.Compression, cancellationToken);

    public Task AllReduceAsync(Memory<double> buffer, ReduceOp op = ReduceOp.Sum, CancellationToken cancellationToken = default) =>
        RunAsync(buffer, op, WireCompression.None, cancellationToken);

    /// <summary>
    /// Broadcast as an exact all-reduce in which every rank but the root contributes zeros (x + 0 = x in
    /// IEEE arithmetic), never compressed. Costs twice a pipelined chain; it is used once, for weights.
    /// </summary>
    public Task BroadcastAsync(Memory<float> buffer, int root = 0, CancellationToken cancellationToken = default)
    {
        if (!members.Any(m => m.Rank == root))
            throw new ArgumentOutOfRangeException(nameof(root), root, $"root must be a rank of this ring: {string.Join(", ", members.Select(m => m.Rank))}");
        return RunAsync(buffer, ReduceOp.Sum, WireCompression.None, cancellationToken, zeroUnlessRoot: root);
    }

    private async Task RunAsync<T>(Memory<T> buffer, ReduceOp op, WireCompression compression, CancellationToken cancellationToken, int zeroUnlessRoot = -1)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        await gate.WaitAsync(cancellationToken);
        try
        {
            ThrowIfFailed();
        }
        catch
        {
            gate.Release();
            throw;
        }
        try
        {
            var opId = nextOp++;
            if (zeroUnlessRoot >= 0 && zeroUnlessRoot != Rank)
                buffer.Span.Clear();
            if (WorldSize == 1)
                return;
            var work = new Collective<T>(this, opId, buffer, op, compression);
            Interlocked.Exchange(ref sendsPending, 1);
            await work.RunAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // a collective stopped half-way leaves the streams out of step: the ring cannot be used again
            Fail(new OperationCanceledException($"rank {Rank} cancelled a collective of generation {Generation}"));
            throw;
        }
        catch (Exception e)
        {
            var reason = e is PeerFailedException ? e : failure ?? e;
            Fail(reason);
            throw failure ?? reason;
        }
        finally
        {
            Interlocked.Exchange(ref sendsPending, 0);
            gate.Release();
        }
    }

    private void ThrowIfFailed()
    {
        if (failure is { } f)
            throw PeerFailedException.AlreadyFailed(f, $"the ring of generation {Generation}");
    }

    /// <summary>Gives up on the ring: tells the successor why and wakes any waiter.</summary>
    private void Fail(Exception reason)
    {
        if (!PeerFailedException.KeepFirst(ref failure, reason))
            return;
        var blamed = PeerFailedException.BlamedBy(reason);
        outbound.Writer.TryWrite(new Outgoing(new RingFrame { Op = -1, Phase = -1, Abort = $"rank {Rank}: {reason.Message}", BlamedRank = blamed }, null, null, true));
        outbound.Writer.TryComplete();
        failed.Cancel();
    }

    private void Enqueue(Outgoing item)
    {
        if (item.Fence is not null && Volatile.Read(ref successorGone) is not null)
        {
            // the send loop has ended with everything before this fence written, or the ring has failed
            if (Volatile.Read(ref failure) is { } f)
                item.Fence.TrySetException(f);
            else
                item.Fence.TrySetResult();
            return;
        }
        if (!outbound.Writer.TryWrite(item))
            ThrowIfFailed();
        // the successor closed its stream while this ring had nothing for it: this message cannot reach it
        if (item.Chunk is not null && Volatile.Read(ref successorGone) is { } gone)
            Fail(gone);
    }

    /// <summary>The send loop, run by the peer server for the successor's Pull stream.</summary>
    private async Task ServeAsync(IServerStreamWriter<RingFrame> writer, CancellationToken streamClosed)
    {
        using var timer = new CancellationTokenSource();
        using var writeToken = CancellationTokenSource.CreateLinkedTokenSource(streamClosed, timer.Token);
        var reader = outbound.Reader;
        var unflushed = 0L;
        var writing = false;
        try
        {
            while (await reader.WaitToReadAsync(writeToken.Token))
            {
                while (reader.TryRead(out var item))
                {
                    if (item.Fence is not null)
                    {
                        item.Fence.TrySetResult();
                        continue;
                    }
                    try
                    {
                        // Coalesce: while more chunks are queued, let gRPC serialize into Kestrel's response
                        // buffer without a flush, and flush once per FlushBytes or when the queue runs dry.
                        // Each flush is several thread hand-offs through Kestrel's HTTP/2 writer.
                        unflushed += item.Chunk!.Data.Length;
                        var more = unflushed < options.FlushBytes && reader.TryPeek(out var next) && next.Chunk is not null;
                        writer.WriteOptions = more ? BufferHint : null;
                        if (!more)
                            unflushed = 0;
                        timer.CancelAfter(options.PeerTimeout);
                        writing = true;
                        await writer.WriteAsync(item.Chunk!, writeToken.Token);
                        writing = false;
                        timer.CancelAfter(Timeout.Infinite);
                    }
                    finally
                    {
                        if (item.Rented is not null)
                            ArrayPool<byte>.Shared.Return(item.Rented);
                    }
                    if (item.Final)
                        return;
                }
            }
        }
        catch (OperationCanceledException e) when (!disposed && !writing && streamClosed.IsCancellationRequested)
        {
            // The successor closed its stream while nothing was being written to it. When the collective in progress
            // (if any) has sent all it sends, that is how a successor that finished the collective leaves the ring
            // (it moves to the next generation, or leaves the job): this rank still completes the collective from
            // what its predecessor sends. Only a chunk queued but unwritten (below) or queued later (Enqueue)
            // fails the ring, naming the successor. Published first and then checked, so that a collective
            // starting meanwhile sees one or the other.
            var gone = new PeerFailedException(Successor.Rank, Successor.Address,
                $"{Successor} closed its stream of generation {Generation} (it left the ring or died)", e);
            Interlocked.Exchange(ref successorGone, gone);
            if (Volatile.Read(ref sendsPending) == 1)
                Fail(gone);
        }
        catch (Exception e) when (!disposed)
        {
            var detail = e switch
            {
                OperationCanceledException when timer.IsCancellationRequested =>
                    $"{Successor} accepted nothing for {options.PeerTimeout.TotalSeconds:0.###} s (it stalled or died)",
                _ => $"sending to {Successor} failed: {(e is RpcException rpc ? $"{rpc.Status.StatusCode}: {rpc.Status.Detail}" : e.Message)}",
            };
            Fail(new PeerFailedException(Successor.Rank, Successor.Address, detail, e));
        }
        catch (Exception)
        {
            // disposed while writing: nothing to report
        }
        finally
        {
            var left = new List<Outgoing>();
            while (reader.TryRead(out var item))
                left.Add(item);
            var gone = Volatile.Read(ref successorGone);
            if (gone is not null && left.Any(item => item.Chunk is not null && !item.Final))
                Fail(gone);
            // after a successor that left, a fence with only written chunks before it has passed
            var passed = gone is not null && Volatile.Read(ref failure) is null;
            foreach (var item in left)
            {
                if (item.Rented is not null)
                    ArrayPool<byte>.Shared.Return(item.Rented);
                if (item.Fence is null)
                    continue;
                if (passed)
                    item.Fence.TrySetResult();
                else
                    item.Fence.TrySetException(failure ?? new ObjectDisposedException(nameof(RingAllReduce)));
            }
            served.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (disposed)
            return;
        disposed = true;
        outbound.Writer.TryComplete();
        if (link is not null)
        {
            // let the successor read the end of the stream, then stop serving
            if (link.Claimed)
                await Task.WhenAny(served.Task, Task.Delay(TimeSpan.FromSeconds(2)));
            server!.Detach(link);
        }
        if (pull is not null)
        {
            // the predecessor ends its stream when it closes its ring; do not wait long for it
            using var drain = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
            try { while (await pull.ResponseStream.MoveNext(drain.Token)) pull.ResponseStream.Current.Release(); } catch (Exception) { }
        }
        life.Cancel();
        pull?.Dispose();
        channel?.Dispose();
        // `failed` is not disposed: Abort may race with disposal, and a source without timers or links holds nothing
    }

    private static readonly WriteOptions BufferHint = new(WriteFlags.BufferHint);

    /// <summary>
    /// Called by gRPC while it reads the Pull stream, inside the collective's own wait for the next piece (the
    /// stream is read one message at a time, only when the collective asks): the expected piece is reduced
    /// straight from the received message.
    /// </summary>
    bool IPieceSink.TryConsume(RingFrame header, ReadOnlySpan<byte> data)
    {
        var sink = expectSink;
        if (sink is null || header.Op != expectOp || header.Phase != expectPhase || header.Segment != expectSegment ||
            header.Piece != expectPiece || data.Length != expectBytes)
            return false;
        expectSink = null;
        sink.Combine(expectPhase, data, expectStart, expectLength);
        return true;
    }

    private void Expect(IPieceConsumer sink, long op, int phase, int segment, int piece, int start, int length, int bytes)
    {
        expectOp = op;
        expectPhase = phase;
        expectSegment = segment;
        expectPiece = piece;
        expectStart = start;
        expectLength = length;
        expectBytes = bytes;
        expectSink = sink;
    }

    /// <summary>A collective's reduce step, as <see cref="IPieceSink.TryConsume"/> calls it.</summary>
    private interface IPieceConsumer
    {
        void Combine(int phase, ReadOnlySpan<byte> data, int start, int length);
    }

    /// <summary>One queued wire message, a fence (completed when every earlier message was written), or the final abort.</summary>
    private sealed record Outgoing(RingFrame? Chunk, byte[]? Rented, TaskCompletionSource? Fence, bool Final = false);

    /// <summary>
    /// One all-reduce: the plan of segments and pieces, the reduce-scatter and all-gather loop, and the
    /// checks that the predecessor runs the same collective.
    /// </summary>
    private sealed class Collective<T> : IPieceConsumer where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly RingAllReduce ring;
        private readonly long op;
        private readonly Memory<T> buffer;
        private readonly ReduceOp reduce;
        private readonly bool half;
        private readonly DType dtype = ElementTypes.Of<T>();
        private readonly DType wire;
        private readonly ByteView<T> bytes;
        private readonly int n;
        private readonly int world;
        private readonly int segmentLength;
        private readonly int pieceLength;
        private float[]? scratch;

        public Collective(RingAllReduce ring, long op, Memory<T> buffer, ReduceOp reduce, WireCompression compression)
        {
            this.ring = ring;
            this.op = op;
            this.buffer = buffer;
            this.reduce = reduce;
            half = compression == WireCompression.Float16 && typeof(T) == typeof(float);
            wire = half ? DType.Float16 : dtype;
            bytes = new ByteView<T>(buffer);
            n = buffer.Length;
            world = ring.WorldSize;
            segmentLength = (int)(((long)n + world - 1) / world);
            pieceLength = Math.Max(1, ring.options.ChunkBytes / ElementTypes.Size(wire));
        }

        private int Phases => 2 * (world - 1);

        /// <summary>The segment rank <paramref name="r"/> sends in <paramref name="phase"/>.</summary>
        private int SegmentSent(int r, int phase) => phase < world - 1
            ? Mod(r - phase)
            : Mod(r + 1 - (phase - (world - 1)));

        private int Mod(int x) => ((x % world) + world) % world;

        private (int Start, int Length) Segment(int s)
        {
            var start = (int)Math.Min(n, (long)s * segmentLength);
            var end = (int)Math.Min(n, (long)(s + 1) * segmentLength);
            return (start, end - start);
        }

        private int Pieces(int s) => (Segment(s).Length + pieceLength - 1) / pieceLength;

        private (int Start, int Length) Piece(int s, int piece)
        {
            var (start, length) = Segment(s);
            var offset = piece * pieceLength;
            return (start + offset, Math.Min(pieceLength, length - offset));
        }

        public async Task RunAsync(CancellationToken cancellationToken)
        {
            var pred = ring.Predecessor;
            ring.Enqueue(new Outgoing(new RingFrame { Op = op, Phase = -1, TotalElements = n, Dtype = dtype, Wire = wire }, null, null));
            var first = SegmentSent(ring.position, 0);
            for (var piece = 0; piece < Pieces(first); piece++)
                Send(0, first, piece);

            // one token for the whole collective's reads, its timer re-armed for every chunk. It is not linked to
            // the ring's failure: cancelling a read cancels the Pull call, and the predecessor would then blame
            // this rank for a failure that started elsewhere (ReceiveAsync stops waiting on the failure instead).
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var header = await ReceiveAsync(-1, wait, cancellationToken);
            if (header.Op != op || header.Phase != -1)
                throw Mismatch($"collective order differs: it is at op {header.Op} phase {header.Phase}, this rank starts op {op}");
            if (header.TotalElements != n || header.Dtype != dtype)
                throw Mismatch($"tensor mismatch in op {op}: it has {header.TotalElements} {ElementTypes.Name(header.Dtype)} elements, " +
                               $"this rank has {n} {ElementTypes.Name(dtype)}");
            if (header.Wire != wire)
                throw Mismatch($"wire encoding mismatch in op {op}: it sends {ElementTypes.Name(header.Wire)}, this rank expects {ElementTypes.Name(wire)}");

            for (var phase = 0; phase < Phases; phase++)
            {
                // the last phase only receives: every chunk for the successor is queued by now
                if (phase == Phases - 1)
                    Interlocked.Exchange(ref ring.sendsPending, 0);
                var s = SegmentSent(ring.PredecessorPosition, phase);
                var count = Pieces(s);
                for (var piece = 0; piece < count; piece++)
                {
                    var (start, length) = Piece(s, piece);
                    var bytes = length * ElementTypes.Size(wire);
                    ring.Expect(this, op, phase, s, piece, start, length, bytes);
                    RingFrame chunk;
                    try
                    {
                        chunk = await ReceiveAsync(phase, wait, cancellationToken);
                    }
                    finally
                    {
                        // a read left pending by a failure must not write into the caller's buffer later
                        ring.expectSink = null;
                    }
                    try
                    {
                        if (chunk.Op != op || chunk.Phase != phase || chunk.Segment != s || chunk.Piece != piece)
                            throw Mismatch($"collective order differs: got op {chunk.Op} phase {chunk.Phase} segment {chunk.Segment} piece {chunk.Piece}, " +
                                           $"expected op {op} phase {phase} segment {s} piece {piece}");
                        if (!chunk.Consumed)
                        {
                            if (chunk.Data.Length != bytes)
                                throw Mismatch($"piece of {chunk.Data.Length} bytes in op {op}, expected {bytes}");
                            Combine(phase, chunk.Data.Span, start, length);
                        }
                        if (phase == world - 2)
                            Finish(buffer.Span.Slice(start, length));
                    }
                    finally
                    {
                        // the received bytes are reduced (or copied) into the buffer: their pooled block goes back
                        chunk.Release();
                    }
                    if (phase + 1 < Phases)
                        Send(phase + 1, s, piece);
                }
            }

            var fence = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            ring.Enqueue(new Outgoing(null, null, fence));
            try
            {
                await fence.Task.WaitAsync(ring.options.PeerTimeout, ring.failed.Token);
            }
            catch (OperationCanceledException) when (ring.failure is not null)
            {
                throw ring.failure;
            }
            catch (TimeoutException)
            {
                var next = ring.Successor;
                throw new PeerFailedException(next.Rank, next.Address, ring.link!.Claimed
                    ? $"{next} stopped reading during all-reduce op {op} (nothing accepted for {ring.options.PeerTimeout.TotalSeconds:0.###} s)"
                    : $"{next} never connected to receive all-reduce op {op} of generation {ring.Generation} within {ring.options.PeerTimeout.TotalSeconds:0.###} s");
            }
        }

        /// <summary>Reduce-scatter: add into the local slice; all-gather: take the owner's bits. The caller finishes the segment.</summary>
        public void Combine(int phase, ReadOnlySpan<byte> data, int start, int length)
        {
            var local = buffer.Span.Slice(start, length);
            var reducing = phase < world - 1;
            if (half)
            {
                var incoming = MemoryMarshal.Cast<byte, Half>(data);
                var mine = MemoryMarshal.Cast<T, float>(local);
                if (reducing)
                {
                    scratch ??= new float[pieceLength];
                    var tmp = scratch.AsSpan(0, length);
                    TensorPrimitives.ConvertToSingle(incoming, tmp);
                    TensorPrimitives.Add(mine, tmp, mine);
                }
                else
                {
                    TensorPrimitives.ConvertToSingle(incoming, mine);
                }
            }
            else
            {
                var incoming = MemoryMarshal.Cast<byte, T>(data);
                if (reducing)
                    TensorPrimitives.Add<T>(local, incoming, local);
                else
                    incoming.CopyTo(local);
            }
        }

        /// <summary>The owner's last touch: average, and for fp16 keep exactly what the others will receive.</summary>
        private void Finish(Span<T> local)
        {
            if (reduce == ReduceOp.Average)
                TensorPrimitives.Divide<T>(local, T.CreateChecked(world), local);
            if (half)
            {
                var mine = MemoryMarshal.Cast<T, float>(local);
                var rounded = ArrayPool<Half>.Shared.Rent(mine.Length);
                TensorPrimitives.ConvertToHalf(mine, rounded.AsSpan(0, mine.Length));
                TensorPrimitives.ConvertToSingle(rounded.AsSpan(0, mine.Length), mine);
                ArrayPool<Half>.Shared.Return(rounded);
            }
        }

        private void Send(int phase, int s, int piece)
        {
            var (start, length) = Piece(s, piece);
            byte[]? rented = null;
            ReadOnlyMemory<byte> data;
            if (half)
            {
                rented = ArrayPool<byte>.Shared.Rent(length * 2);
                var mine = MemoryMarshal.Cast<T, float>(buffer.Span.Slice(start, length));
                TensorPrimitives.ConvertToHalf(mine, MemoryMarshal.Cast<byte, Half>(rented.AsSpan(0, length * 2)));
                data = rented.AsMemory(0, length * 2);
            }
            else
            {
                var size = ElementTypes.Size(wire);
                data = bytes.Memory.Slice(start * size, length * size);
            }
            var chunk = new RingFrame { Op = op, Phase = phase, Segment = s, Piece = piece, Data = data };
            ring.Enqueue(new Outgoing(chunk, rented, null));
        }

        private async ValueTask<RingFrame> ReceiveAsync(int phase, CancellationTokenSource wait, CancellationToken cancellationToken)
        {
            var stream = ring.pull!.ResponseStream;
            var pred = ring.Predecessor;
            RingFrame chunk;
            wait.CancelAfter(ring.options.PeerTimeout);
            try
            {
                var moving = stream.MoveNext(wait.Token);
                bool more;
                try
                {
                    more = await moving.WaitAsync(ring.failed.Token);
                }
                catch (OperationCanceledException) when (!moving.IsCompleted)
                {
                    // the ring failed elsewhere: leave this read pending (disposing the ring ends it), observed
                    _ = moving.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                    throw;
                }
                if (!more)
                    throw new PeerFailedException(pred.Rank, pred.Address, $"{pred} closed its stream during all-reduce op {op} phase {phase}");
                chunk = stream.Current;
            }
            catch (Exception) when (ring.failure is not null)
            {
                throw ring.failure;
            }
            catch (Exception e) when (e is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled } && !cancellationToken.IsCancellationRequested)
            {
                throw new PeerFailedException(pred.Rank, pred.Address,
                    $"{pred} sent nothing for {ring.options.PeerTimeout.TotalSeconds:0.###} s during all-reduce op {op} phase {phase} " +
                    $"of generation {ring.Generation} (it stalled or died)");
            }
            catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new PeerFailedException(pred.Rank, pred.Address, $"stream from {pred} failed: {e.Status.StatusCode}: {e.Status.Detail}", e);
            }
            if (chunk.Abort.Length > 0)
            {
                var blamed = ring.Member(chunk.BlamedRank) ?? pred;
                throw new PeerFailedException(blamed.Rank, blamed.Address, $"all-reduce aborted by {pred}: {chunk.Abort}");
            }
            return chunk;
        }

        private PeerFailedException Mismatch(string what)
        {
            var pred = ring.Predecessor;
            return new PeerFailedException(pred.Rank, pred.Address, $"{pred} does not match rank {ring.Rank}: {what}");
        }
    }
}
