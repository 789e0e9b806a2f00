using System.IO.MemoryMappedFiles;
using System.Text;

namespace EcsNet.AllReduce.SharedMemory;

/// <summary>
/// One memory-mapped file shared by the ranks of one host in one generation: a header, a control block per
/// rank and two data slots per rank (double buffering: a rank fills the next slot while its peers still read
/// the last). The file lives in <see cref="Folder"/> (tmpfs on Linux) only while the ranks attach: the last
/// one to map it unlinks it, so a crash afterwards leaves nothing behind; the pages live until the last
/// mapping goes. The creator reserves every page up front (posix_fallocate through FileStream's preallocation),
/// so a full /dev/shm is an error at attach time rather than a SIGBUS in the middle of a copy.
/// </summary>
internal sealed unsafe class SharedMemorySegment : IDisposable
{
    /// <summary>Where segments are made: /dev/shm where it exists, else the temp folder.</summary>
    public static readonly string Folder = Directory.Exists("/dev/shm") ? "/dev/shm" : System.IO.Path.GetTempPath();

    public const string Prefix = "ecsnet-";
    public const string Suffix = ".shm";

    private const ulong Magic = 0x314D_4853_5445_4E43; // "CNETSHM1"
    private const int HeaderBytes = 4096;
    private const int ControlBytes = 4096;
    private const int MaxAbortBytes = ControlBytes - 256;

    // header fields
    private const int MagicAt = 0, SizeAt = 8, GenerationAt = 16, SlotBytesAt = 24, CreatorPidAt = 32, AttachedAt = 36, BellAt = 64, WaitersAt = 128;

    // control block fields (one per rank, at HeaderBytes + rank * ControlBytes)
    private const int PidAt = 0, ProgressAt = 64, OpAt = 128, ElementsAt = 136, TypeAt = 144, DescriptionBytes = 24, AbortAt = 192, BlamedAt = 196, AbortLengthAt = 200, LeftAt = 204, AbortTextAt = 256;

    private readonly MemoryMappedFile file;
    private readonly MemoryMappedViewAccessor view;
    private readonly byte* start;
    private string? linkedPath;

    private SharedMemorySegment(MemoryMappedFile file, string path, int size, long slotBytes)
    {
        this.file = file;
        view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.ReadWrite);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        start = p + view.PointerOffset;
        linkedPath = path;
        Path = path;
        Size = size;
        SlotBytes = slotBytes;
    }

    public string Path { get; }

    /// <summary>Ranks sharing the segment.</summary>
    public int Size { get; }

    /// <summary>Bytes of one data slot (each rank has two).</summary>
    public long SlotBytes { get; }

    public static long Capacity(int size, long slotBytes) => DataOffset(size) + size * 2 * slotBytes;

    private static long DataOffset(int size) => HeaderBytes + (long)size * ControlBytes;

    /// <summary>Makes the segment (the host's first rank). An older file of the same name whose creator is gone is replaced.</summary>
    public static SharedMemorySegment Create(string path, int size, long generation, long slotBytes)
    {
        var capacity = Capacity(size, slotBytes);
        FileStream stream;
        try
        {
            stream = OpenNew(path, capacity);
        }
        catch (IOException) when (File.Exists(path) && !CreatorAlive(path))
        {
            File.Delete(path);
            stream = OpenNew(path, capacity);
        }
        MemoryMappedFile mapped;
        try
        {
            mapped = MemoryMappedFile.CreateFromFile(stream, null, capacity, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
        }
        catch
        {
            stream.Dispose();
            TryDelete(path);
            throw;
        }
        var segment = new SharedMemorySegment(mapped, path, size, slotBytes);
        var p = segment.start;
        *(int*)(p + SizeAt) = size;
        *(long*)(p + GenerationAt) = generation;
        *(long*)(p + SlotBytesAt) = slotBytes;
        *(int*)(p + CreatorPidAt) = Environment.ProcessId;
        // the magic last: a rank that sees it sees a complete header
        Volatile.Write(ref *(ulong*)(p + MagicAt), Magic);
        return segment;
    }

    private static FileStream OpenNew(string path, long capacity)
    {
        try
        {
            return new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.ReadWrite,
                Share = FileShare.ReadWrite | FileShare.Delete,
                PreallocationSize = capacity,
            });
        }
        catch (IOException e) when (!File.Exists(path) || e.Message.Contains("space", StringComparison.OrdinalIgnoreCase))
        {
            TryDelete(path);
            throw new IOException($"cannot reserve {capacity >> 20} MiB of shared memory for {path}: {e.Message} " +
                                  $"(make {Folder} larger, lower the shared-memory slot size, or use --transport grpc)", e);
        }
    }

    /// <summary>
    /// Maps the segment another rank made, once it is complete; null while it is not there yet. Throws when the
    /// file is there but does not match (another job's segment, or a generation mismatch).
    /// </summary>
    public static SharedMemorySegment? TryOpen(string path, int size, long generation, long slotBytes)
    {
        var capacity = Capacity(size, slotBytes);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        if (stream.Length < capacity)
        {
            // still being sized by its creator
            stream.Dispose();
            return null;
        }
        var mapped = MemoryMappedFile.CreateFromFile(stream, null, capacity, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
        var segment = new SharedMemorySegment(mapped, path, size, slotBytes);
        var p = segment.start;
        if (Volatile.Read(ref *(ulong*)(p + MagicAt)) != Magic)
        {
            segment.Dispose(unlink: false);
            return null;
        }
        if (*(int*)(p + SizeAt) != size || *(long*)(p + GenerationAt) != generation || *(long*)(p + SlotBytesAt) != slotBytes)
        {
            var found = $"{*(int*)(p + SizeAt)} ranks, generation {*(long*)(p + GenerationAt)}, slots of {*(long*)(p + SlotBytesAt)} bytes";
            segment.Dispose(unlink: false);
            throw new InvalidDataException($"shared memory segment {path} holds {found}; this rank expects {size} ranks, generation {generation}, " +
                                           $"slots of {slotBytes} bytes (do the ranks of this host run with different settings?)");
        }
        return segment;
    }

    /// <summary>Counts this rank in; true for the last of <see cref="Size"/> ranks.</summary>
    public bool Attach(int rank)
    {
        Volatile.Write(ref *(int*)(Control(rank) + PidAt), Environment.ProcessId);
        var attached = Interlocked.Increment(ref *(int*)(start + AttachedAt));
        Ring();
        return attached == Size;
    }

    public int Attached => Volatile.Read(ref *(int*)(start + AttachedAt));

    public int PidOf(int rank) => Volatile.Read(ref *(int*)(Control(rank) + PidAt));

    /// <summary>Removes the file's name (the mapping stays). Idempotent.</summary>
    public void Unlink()
    {
        var path = Interlocked.Exchange(ref linkedPath, null);
        if (path is not null)
            TryDelete(path);
    }

    public long ProgressOf(int rank) => Volatile.Read(ref *(long*)(Control(rank) + ProgressAt));

    /// <summary>Advances <paramref name="rank"/>'s progress counter and wakes the sleepers.</summary>
    public void Advance(int rank)
    {
        Interlocked.Increment(ref *(long*)(Control(rank) + ProgressAt));
        Ring();
    }

    /// <summary>The word every waiter sleeps on: any progress, attach, abort or departure changes it.</summary>
    private int* Bell => (int*)(start + BellAt);

    /// <summary>How many ranks sleep on <see cref="Bell"/>: a rank that rings it makes the wake call only when some do.</summary>
    private int* Waiters => (int*)(start + WaitersAt);

    /// <summary>
    /// Sleeps on the bell (at most <paramref name="milliseconds"/>, may wake early) unless <paramref name="ready"/>
    /// says there is nothing to wait for; returns what it said. The rank counts itself a waiter before it reads
    /// the bell and asks, so a change made after the question either wakes it or makes the futex return at once.
    /// <paramref name="ready"/> may throw (an abort seen while asking).
    /// </summary>
    public bool SleepUnless(Func<bool> ready, int milliseconds)
    {
        Interlocked.Increment(ref *Waiters);
        try
        {
            var bell = Volatile.Read(ref *Bell);
            if (ready())
                return true;
            NativeWait.Wait(Bell, bell, milliseconds);
            return false;
        }
        finally
        {
            Interlocked.Decrement(ref *Waiters);
        }
    }

    private void Ring()
    {
        Interlocked.Increment(ref *Bell);
        if (Volatile.Read(ref *Waiters) > 0)
            NativeWait.WakeAll(Bell);
    }

    /// <summary>
    /// Writes what collective <paramref name="rank"/> runs as op <paramref name="op"/>. Two places, by the op's
    /// parity: a rank can be one op ahead of a peer that has not read its description yet, never two.
    /// </summary>
    public void Describe(int rank, long op, long elements, int type)
    {
        var c = Control(rank) + (op & 1) * DescriptionBytes;
        *(long*)(c + OpAt) = op;
        *(long*)(c + ElementsAt) = elements;
        *(int*)(c + TypeAt) = type;
    }

    public (long Op, long Elements, int Type) DescriptionOf(int rank, long op)
    {
        var c = Control(rank) + (op & 1) * DescriptionBytes;
        return (*(long*)(c + OpAt), *(long*)(c + ElementsAt), *(int*)(c + TypeAt));
    }

    /// <summary>Publishes that <paramref name="rank"/> gave up, and whom it blames (a rank of the generation, −1: none).</summary>
    public void Abort(int rank, string reason, int blamed)
    {
        var c = Control(rank);
        if (Volatile.Read(ref *(int*)(c + AbortAt)) != 0)
            return;
        var bytes = Encoding.UTF8.GetBytes(reason);
        var length = Math.Min(bytes.Length, MaxAbortBytes);
        bytes.AsSpan(0, length).CopyTo(new Span<byte>(c + AbortTextAt, MaxAbortBytes));
        *(int*)(c + AbortLengthAt) = length;
        *(int*)(c + BlamedAt) = blamed;
        Volatile.Write(ref *(int*)(c + AbortAt), 1);
        Ring();
    }

    /// <summary>The first rank's abort, if any: (local rank, blamed rank of the generation, text).</summary>
    public (int Rank, int Blamed, string Reason)? FindAbort()
    {
        for (var r = 0; r < Size; r++)
        {
            var c = Control(r);
            if (Volatile.Read(ref *(int*)(c + AbortAt)) == 0)
                continue;
            var length = Math.Clamp(*(int*)(c + AbortLengthAt), 0, MaxAbortBytes);
            return (r, *(int*)(c + BlamedAt), Encoding.UTF8.GetString(new ReadOnlySpan<byte>(c + AbortTextAt, length)));
        }
        return null;
    }

    /// <summary>Marks <paramref name="rank"/> as gone from the group on purpose (closed its side).</summary>
    public void Leave(int rank)
    {
        Volatile.Write(ref *(int*)(Control(rank) + LeftAt), 1);
        Ring();
    }

    public bool HasLeft(int rank) => Volatile.Read(ref *(int*)(Control(rank) + LeftAt)) != 0;

    /// <summary>The two data slots of <paramref name="rank"/>: <paramref name="half"/> 0 or 1.</summary>
    public Span<T> Slot<T>(int rank, int half, int offset, int length) where T : unmanaged
    {
        var slot = start + DataOffset(Size) + ((long)rank * 2 + half) * SlotBytes;
        return new Span<T>((T*)slot + offset, length);
    }

    private byte* Control(int rank) => start + HeaderBytes + (long)rank * ControlBytes;

    /// <summary>Deletes segments in <see cref="Folder"/> left by processes that are gone (a crash before every rank attached).</summary>
    public static int SweepStale()
    {
        var removed = 0;
        string[] files;
        try
        {
            files = Directory.GetFiles(Folder, Prefix + "*" + Suffix);
        }
        catch (IOException)
        {
            return 0;
        }
        foreach (var path in files)
            if (!CreatorAlive(path) && TryDelete(path))
                removed++;
        return removed;
    }

    /// <summary>Whether the process that made <paramref name="path"/> still runs (true when that cannot be read yet).</summary>
    private static bool CreatorAlive(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            Span<byte> header = stackalloc byte[CreatorPidAt + 4];
            if (stream.Length < HeaderBytes || stream.Read(header) < header.Length)
                return File.GetLastWriteTimeUtc(path) > DateTime.UtcNow.AddMinutes(-1);
            if (BitConverter.ToUInt64(header[..8]) != Magic)
                return File.GetLastWriteTimeUtc(path) > DateTime.UtcNow.AddMinutes(-1);
            return NativeWait.IsAlive(BitConverter.ToInt32(header[CreatorPidAt..]));
        }
        catch (IOException)
        {
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }
    }

    private static bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    public void Dispose() => Dispose(unlink: true);

    /// <summary>Unmaps; with <paramref name="unlink"/>, also removes the name if this process still holds it.</summary>
    public void Dispose(bool unlink)
    {
        if (unlink)
            Unlink();
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        file.Dispose();
    }
}
