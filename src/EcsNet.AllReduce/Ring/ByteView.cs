using System.Buffers;
using System.Runtime.InteropServices;

namespace EcsNet.AllReduce.Ring;

/// <summary>
/// The bytes of a <see cref="Memory{T}"/> of numbers, as <see cref="Memory{T}"/> of bytes, without copying:
/// lets a wire frame point at a slice of the caller's buffer (<see cref="RingFrame.Data"/>).
/// </summary>
internal sealed class ByteView<T> : MemoryManager<byte> where T : unmanaged
{
    private readonly Memory<T> source;

    public ByteView(Memory<T> source) => this.source = source;

    public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(source.Span);

    public override unsafe MemoryHandle Pin(int elementIndex = 0)
    {
        var handle = source.Pin();
        return new MemoryHandle((byte*)handle.Pointer + elementIndex, default, new Unpinner(handle));
    }

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }

    /// <summary>Releases the pin taken by <see cref="Pin"/> when the caller disposes its handle.</summary>
    private sealed class Unpinner(MemoryHandle inner) : IPinnable
    {
        private MemoryHandle inner = inner;
        public MemoryHandle Pin(int elementIndex) => throw new NotSupportedException();
        public void Unpin() => inner.Dispose();
    }
}
