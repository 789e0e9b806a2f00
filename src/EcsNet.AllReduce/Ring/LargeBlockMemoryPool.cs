using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace EcsNet.AllReduce.Ring;

/// <summary>
/// Kestrel's default pool hands out 4 KiB blocks, and its socket transport reads at most one block per
/// receive call: bulk tensor streams then cost one syscall and one pipe segment per 4 KiB. This pool's
/// 256 KiB pinned blocks let each receive take up to 256 KiB (fewer syscalls, fewer segments to copy across).
/// </summary>
internal sealed class LargeBlockMemoryPool : MemoryPool<byte>
{
    public const int BlockSize = 256 << 10;

    private readonly ConcurrentBag<byte[]> free = new();

    public override int MaxBufferSize => BlockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > BlockSize)
            return new Owner(null, GC.AllocateUninitializedArray<byte>(minBufferSize, pinned: true));
        return new Owner(this, free.TryTake(out var block) ? block : GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true));
    }

    protected override void Dispose(bool disposing) => free.Clear();

    private sealed class Owner(LargeBlockMemoryPool? pool, byte[] block) : IMemoryOwner<byte>
    {
        private byte[]? block = block;

        public Memory<byte> Memory => block ?? throw new ObjectDisposedException(nameof(Owner));

        public void Dispose()
        {
            var b = Interlocked.Exchange(ref block, null);
            if (b is not null && pool is not null)
                pool.free.Add(b);
        }
    }

    /// <summary>What Kestrel asks for its pools (one per transport and per connection type).</summary>
    internal sealed class Factory : IMemoryPoolFactory<byte>
    {
        public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool();
    }
}
