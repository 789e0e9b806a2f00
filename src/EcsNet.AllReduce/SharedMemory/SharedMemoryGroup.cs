using System.Diagnostics;
using System.Numerics;
using System.Numerics.Tensors;
using EcsNet.AllReduce.Ring;

namespace EcsNet.AllReduce.SharedMemory;

/// <summary>
/// The collectives of the ranks that share a host, over one <see cref="SharedMemorySegment"/>. An all-reduce
/// goes chunk by chunk (a chunk is what fits a slot): each rank copies the parts of its chunk that others own
/// into its slot, each rank sums the part it owns over every rank in a fixed order (local rank 0, 1, …) and
/// publishes the sum, then each rank copies the others' sums back: a reduce-scatter and an all-gather over the
/// slots, as NCCL's and gloo's shared-memory paths do. One rank owns each part, so every rank ends with
/// identical bits. Ranks signal progress through a counter each and sleep on one futex word (a short spin
/// first), so a waiting rank costs no CPU; a rank whose process is gone, that left, that aborted or that
/// makes no progress for the peer timeout is named in the <see cref="PeerFailedException"/>.
/// <para>Calls are synchronous and meant for one thread at a time; <see cref="Abort"/> may come from any thread.</para>
/// </summary>
internal sealed unsafe class SharedMemoryGroup : IDisposable
{
    private const int SpinRounds = 20;
    private const int SleepMilliseconds = 50;
    private static readonly TimeSpan LivenessInterval = TimeSpan.FromMilliseconds(200);

    private readonly string path;
    private readonly long generation;
    private readonly int local;
    private readonly RingMember[] members;
    private readonly IReadOnlyList<RingMember> world;
    private readonly long slotBytes;
    private readonly TimeSpan peerTimeout;
    private readonly TimeSpan attachTimeout;
    private SharedMemorySegment? segment;
    private volatile string? abortReason;
    private RingMember? abortBlamed;
    private long step;
    private long op;
    private bool disposed;
    private readonly object life = new();

    /// <param name="members">The ranks of this host in local order (members[local] is this rank), with their ranks in the generation.</param>
    /// <param name="world">Every rank of the generation in rank order, to name a rank blamed on another host.</param>
    public SharedMemoryGroup(string path, long generation, int local, IReadOnlyList<RingMember> members, IReadOnlyList<RingMember> world,
        long slotBytes, TimeSpan peerTimeout, TimeSpan attachTimeout)
    {
        this.world = world;
        this.path = path;
        this.generation = generation;
        this.local = local;
        this.members = members.ToArray();
        this.slotBytes = slotBytes;
        this.peerTimeout = peerTimeout;
        this.attachTimeout = attachTimeout;
    }

    public int Size => members.Length;

    /// <summary>The segment's file name for the ranks <paramref name="members"/> of a host in one generation.</summary>
    public static string PathFor(string host, long generation, IEnumerable<RingMember> members)
    {
        var key = $"{host}|{generation}|{string.Join(",", members.Select(m => m.Address))}";
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key));
        return Path.Combine(SharedMemorySegment.Folder, $"{SharedMemorySegment.Prefix}{Convert.ToHexStringLower(hash.AsSpan(0, 10))}{SharedMemorySegment.Suffix}");
    }

    /// <summary>
    /// Sums <paramref name="buffer"/> over the host's ranks (divided by their number when <paramref name="average"/>).
    /// With <paramref name="everyone"/> false only local rank 0 receives the result (the others' buffers are
    /// left partly summed), the first half of a hierarchical all-reduce.
    /// </summary>
    public void AllReduce<T>(Span<T> buffer, bool average, bool everyone) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var s = Begin<T>(buffer.Length);
        var capacity = SlotElements<T>();
        var chunks = (buffer.Length + capacity - 1) / capacity;
        var gathered = new long[2];
        for (var c = 0; c < chunks; c++)
        {
            var half = c & 1;
            var offset = c * capacity;
            var chunk = buffer.Slice(offset, Math.Min(capacity, buffer.Length - offset));
            var part = (chunk.Length + Size - 1) / Size;
            // the slots of this half were last read while gathering chunk c − 2
            if (c >= 2)
                WaitAll(gathered[half], $"chunk {c - 2}");

            for (var p = 0; p < Size; p++)
                if (p != local)
                {
                    var (start, length) = Part(chunk.Length, part, p);
                    chunk.Slice(start, length).CopyTo(s.Slot<T>(local, half, start, length));
                }
            var posted = Advance();
            WaitAll(posted, $"chunk {c} (posting)");

            var (mineStart, mineLength) = Part(chunk.Length, part, local);
            var mine = chunk.Slice(mineStart, mineLength);
            var sum = s.Slot<T>(local, half, mineStart, mineLength);
            // fixed order: local rank 0 + 1 + … (this rank's own values come from its buffer)
            if (Size == 1)
                mine.CopyTo(sum);
            else
                TensorPrimitives.Add(local == 0 ? mine : s.Slot<T>(0, half, mineStart, mineLength),
                    local == 1 ? mine : s.Slot<T>(1, half, mineStart, mineLength), sum);
            for (var r = 2; r < Size; r++)
                TensorPrimitives.Add(sum, r == local ? mine : s.Slot<T>(r, half, mineStart, mineLength), sum);
            if (average)
                TensorPrimitives.Divide(sum, T.CreateChecked(Size), sum);
            sum.CopyTo(mine);
            var reduced = Advance();

            if (everyone || local == 0)
            {
                WaitAll(reduced, $"chunk {c} (reducing)");
                for (var p = 0; p < Size; p++)
                    if (p != local)
                    {
                        var (start, length) = Part(chunk.Length, part, p);
                        s.Slot<T>(p, half, start, length).CopyTo(chunk.Slice(start, length));
                    }
            }
            gathered[half] = Advance();
        }
    }

    /// <summary>Copies local rank <paramref name="root"/>'s buffer into every rank's.</summary>
    public void Broadcast<T>(Span<T> buffer, int root) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var s = Begin<T>(buffer.Length);
        var capacity = SlotElements<T>();
        var chunks = (buffer.Length + capacity - 1) / capacity;
        var done = new long[2];
        for (var c = 0; c < chunks; c++)
        {
            var half = c & 1;
            var offset = c * capacity;
            var chunk = buffer.Slice(offset, Math.Min(capacity, buffer.Length - offset));
            if (c >= 2)
                WaitAll(done[half], $"chunk {c - 2}");
            if (local == root)
                chunk.CopyTo(s.Slot<T>(root, half, 0, chunk.Length));
            var posted = Advance();
            if (local != root)
            {
                WaitFor(root, posted, $"chunk {c} of a broadcast");
                s.Slot<T>(root, half, 0, chunk.Length).CopyTo(chunk);
            }
            done[half] = Advance();
        }
    }

    /// <summary>Elements of type <typeparamref name="T"/> one slot holds: the chunk of a collective.</summary>
    private int SlotElements<T>() where T : unmanaged =>
        (int)Math.Min(int.MaxValue, slotBytes / System.Runtime.CompilerServices.Unsafe.SizeOf<T>());

    private static (int Start, int Length) Part(int length, int part, int p)
    {
        var start = Math.Min(length, p * part);
        return (start, Math.Min(length, start + part) - start);
    }

    /// <summary>Attaches on first use, then checks that every rank runs the same collective on the same tensor.</summary>
    private SharedMemorySegment Begin<T>(int elements) where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        ThrowIfAborted();
        var s = segment ?? AttachAll();
        var type = typeof(T) == typeof(double) ? 2 : 1;
        var id = op++;
        s.Describe(local, id, elements, type);
        var described = Advance();
        WaitAll(described, $"op {id}");
        for (var r = 0; r < Size; r++)
        {
            if (r == local)
                continue;
            var (otherOp, otherElements, otherType) = s.DescriptionOf(r, id);
            if (otherOp != id || otherElements != elements || otherType != type)
                throw Blame(r, $"{Name(r)} does not match {Name(local)}: it runs op {otherOp} on {otherElements} {TypeName(otherType)} elements, " +
                               $"this rank op {id} on {elements} {TypeName(type)}");
        }
        return s;
    }

    private static string TypeName(int type) => type == 2 ? "float64" : "float32";

    /// <summary>Maps the segment (local rank 0 makes it) and waits until every rank of the host has; the last one unlinks it.</summary>
    private SharedMemorySegment AttachAll()
    {
        var clock = Stopwatch.StartNew();
        if (local == 0)
        {
            SharedMemorySegment.SweepStale();
            segment = SharedMemorySegment.Create(path, Size, generation, slotBytes);
        }
        else
        {
            while ((segment = SharedMemorySegment.TryOpen(path, Size, generation, slotBytes)) is null)
            {
                ThrowIfAborted();
                if (clock.Elapsed > attachTimeout)
                    throw Blame(0, $"{Name(0)} made no shared memory segment {path} for generation {generation} within {attachTimeout.TotalSeconds:0.###} s " +
                                   "(it died, stalled, or runs with --transport grpc)");
                Thread.Sleep(2);
            }
        }
        if (segment.Attach(local))
            segment.Unlink();
        while (segment.Attached < Size)
        {
            CheckAbort(segment);
            if (clock.Elapsed > attachTimeout)
            {
                segment.Unlink();
                var missing = Enumerable.Range(0, Size).FirstOrDefault(r => segment.PidOf(r) == 0);
                throw Blame(missing, $"{Name(missing)} did not attach to the shared memory of generation {generation} within {attachTimeout.TotalSeconds:0.###} s");
            }
            segment.SleepUnless(() => segment.Attached >= Size, SleepMilliseconds);
        }
        return segment;
    }

    private long Advance()
    {
        segment!.Advance(local);
        return ++step;
    }

    private void WaitAll(long target, string what)
    {
        for (var r = 0; r < Size; r++)
            if (r != local)
                WaitFor(r, target, what);
    }

    /// <summary>Waits until local rank <paramref name="r"/> reached <paramref name="target"/>: a short spin, then futex sleeps.</summary>
    private void WaitFor(int r, long target, string what)
    {
        var s = segment!;
        if (s.ProgressOf(r) >= target)
            return;
        var spinner = new SpinWait();
        for (var i = 0; i < SpinRounds && s.ProgressOf(r) < target; i++)
            spinner.SpinOnce(sleep1Threshold: -1);
        if (s.ProgressOf(r) >= target)
            return;
        var stuck = Stopwatch.StartNew();
        var lastCheck = TimeSpan.Zero;
        var seen = s.ProgressOf(r);
        while (true)
        {
            var ready = s.SleepUnless(() =>
            {
                if (s.ProgressOf(r) >= target)
                    return true;
                CheckAbort(s);
                if (s.HasLeft(r))
                    throw Blame(r, $"{Name(r)} left the group of generation {generation} while this rank waited for {what}");
                return false;
            }, SleepMilliseconds);
            if (ready)
                return;
            var now = s.ProgressOf(r);
            if (now >= target)
                return;
            if (now != seen)
            {
                seen = now;
                stuck.Restart();
            }
            if (stuck.Elapsed - lastCheck > LivenessInterval || stuck.Elapsed > peerTimeout)
            {
                lastCheck = stuck.Elapsed;
                if (!NativeWait.IsAlive(s.PidOf(r)))
                    throw Blame(r, $"{Name(r)} (process {s.PidOf(r)}) exited during {what} of generation {generation}");
            }
            if (stuck.Elapsed > peerTimeout)
                throw Blame(r, $"{Name(r)} made no progress for {peerTimeout.TotalSeconds:0.###} s during {what} of generation {generation} (it stalled or died)");
        }
    }

    private void ThrowIfAborted()
    {
        if (abortReason is { } reason)
            throw new PeerFailedException(abortBlamed?.Rank ?? -1, abortBlamed?.Address ?? "", reason);
    }

    private void CheckAbort(SharedMemorySegment s)
    {
        ThrowIfAborted();
        if (s.FindAbort() is { } found && found.Rank != local)
        {
            // the aborting rank names the culprit by its rank in the generation (it may be on another host)
            var blamed = Member(found.Blamed) ?? members[found.Rank];
            throw new PeerFailedException(blamed.Rank, blamed.Address, $"shared-memory collective aborted by {Name(found.Rank)}: {found.Reason}");
        }
    }

    private PeerFailedException Blame(int r, string message) => new(members[r].Rank, members[r].Address, message);

    private RingMember? Member(int rank) => RingMember.Find(world, rank);

    private string Name(int r) => members[r].ToString();

    /// <summary>
    /// Fails this group: a collective in progress here and on the host's other ranks throws at its next wait
    /// (within <see cref="SleepMilliseconds"/>), naming <paramref name="blamedRank"/> (a rank of the generation, −1: none).
    /// </summary>
    public void Abort(string reason, int blamedRank = -1)
    {
        lock (life)
        {
            if (abortReason is not null)
                return;
            abortBlamed = Member(blamedRank);
            abortReason = reason;
            if (segment is { } s && !disposed)
                s.Abort(local, reason, blamedRank);
        }
    }

    /// <summary>Closes this rank's side: the others see it left; the mapping goes (and the file, if it was never unlinked).</summary>
    public void Dispose()
    {
        lock (life)
        {
            if (disposed)
                return;
            disposed = true;
        }
        if (segment is { } s)
        {
            s.Leave(local);
            s.Dispose();
        }
        else if (local == 0 && File.Exists(path))
        {
            // never attached: nothing of this group should remain
            try { File.Delete(path); } catch (IOException) { }
        }
    }
}
