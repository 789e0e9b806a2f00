using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using EcsNet.AllReduce.Wire;
using Grpc.Core;

namespace EcsNet.AllReduce.Ring;

/// <summary>
/// One message of the ring's Pull stream: a collective's header, a piece of tensor data, or an abort.
/// Sent frames point at the sender's buffer (or a rented fp16 copy); received frames own a rented buffer
/// that <see cref="Release"/> hands back once the receiver has reduced it.
/// </summary>
internal sealed class RingFrame
{
    private byte[]? rented;

    /// <summary>Collective sequence number: every rank issues collectives in the same order.</summary>
    public long Op { get; init; }

    /// <summary>-1: the header that opens a collective (no data). 0 .. 2(n-1)-1: reduce-scatter, then all-gather.</summary>
    public int Phase { get; init; }

    public int Segment { get; init; }

    public int Piece { get; init; }

    /// <summary>Element count of the whole tensor on the sender.</summary>
    public long TotalElements { get; init; }

    public DType Dtype { get; init; }

    /// <summary>Encoding of <see cref="Data"/>: float32, float64 or float16 (compressed wire).</summary>
    public DType Wire { get; init; }

    /// <summary>Non-empty: the sender gave up on the ring (this text says why).</summary>
    public string Abort { get; init; } = "";

    /// <summary>With <see cref="Abort"/>: the rank held responsible (-1 when unknown).</summary>
    public int BlamedRank { get; init; } = -1;

    public ReadOnlyMemory<byte> Data { get; init; }

    /// <summary>
    /// A received piece whose data the receiving collective already reduced straight from the transport's
    /// buffer (<see cref="IPieceSink"/>); <see cref="Data"/> is empty.
    /// </summary>
    public bool Consumed { get; init; }

    /// <summary>A received frame whose data lies in <paramref name="buffer"/> (rented from the shared pool).</summary>
    internal static RingFrame Received(RingFrame header, byte[]? buffer, int length) => new()
    {
        Op = header.Op, Phase = header.Phase, Segment = header.Segment, Piece = header.Piece,
        TotalElements = header.TotalElements, Dtype = header.Dtype, Wire = header.Wire,
        Abort = header.Abort, BlamedRank = header.BlamedRank,
        Data = buffer is null ? ReadOnlyMemory<byte>.Empty : buffer.AsMemory(0, length),
        rented = buffer,
    };

    /// <summary>Returns a received frame's buffer to the pool; <see cref="Data"/> must not be read afterwards.</summary>
    public void Release()
    {
        var b = Interlocked.Exchange(ref rented, null);
        if (b is not null)
            ArrayPool<byte>.Shared.Return(b);
    }
}

/// <summary>
/// Where a receiver reduces an expected piece while gRPC still holds the received message, so that the data
/// is read once, from the transport's buffer, instead of being copied out first.
/// </summary>
internal interface IPieceSink
{
    /// <summary>
    /// Takes <paramref name="data"/> if <paramref name="header"/> is the piece the receiver waits for (false:
    /// the frame is kept as it is, and the receiver's order checks report what came instead).
    /// </summary>
    bool TryConsume(RingFrame header, ReadOnlySpan<byte> data);
}

/// <summary>
/// The Pull method of the ring, defined by hand with a contextual marshaller (grpc-dotnet's
/// <c>Marshallers.Create</c> with <see cref="SerializationContext"/> / <see cref="DeserializationContext"/>,
/// see the grpc-dotnet docs on custom marshallers): the sender writes a fixed header and the tensor bytes
/// straight into the response's buffer writer, and the receiver reduces the data straight from the received
/// message (<see cref="IPieceSink"/>), where protobuf's <c>bytes</c> field cost a serialise copy, a zeroed
/// ByteString and a parse copy per chunk. The request stays protobuf. The layout is documented in
/// protos/allreduce/ring.proto.
/// </summary>
internal static class RingWire
{
    public const string ServiceName = "ecsnet.allreduce.RingPeer";

    public const byte Version = 1;

    /// <summary>
    /// Fixed header, little-endian: version, dtype, wire, reserved (1 byte each), op (8), phase, segment,
    /// piece (4 each), total elements (8), blamed rank, abort length, data length (4 each).
    /// </summary>
    public const int HeaderBytes = 4 + 8 + 4 + 4 + 4 + 8 + 4 + 4 + 4;

    public static readonly Marshaller<RingFrame> FrameMarshaller = Marshallers.Create<RingFrame>(Serialize, Deserialize);

    public static readonly Marshaller<PullRequest> RequestMarshaller = Marshallers.Create(
        (PullRequest request, SerializationContext context) =>
        {
            context.SetPayloadLength(request.CalculateSize());
            Google.Protobuf.MessageExtensions.WriteTo(request, context.GetBufferWriter());
            context.Complete();
        },
        context => PullRequest.Parser.ParseFrom(context.PayloadAsReadOnlySequence()));

    public static readonly Method<PullRequest, RingFrame> Pull = new(MethodType.ServerStreaming, ServiceName, "Pull", RequestMarshaller, FrameMarshaller);

    /// <summary>
    /// Opens the Pull stream of <paramref name="request"/> on <paramref name="invoker"/>; received pieces go to
    /// <paramref name="sink"/> first when it expects them.
    /// </summary>
    public static AsyncServerStreamingCall<RingFrame> OpenPull(CallInvoker invoker, PullRequest request, IPieceSink? sink = null, CancellationToken cancellationToken = default)
    {
        var method = sink is null
            ? Pull
            : new Method<PullRequest, RingFrame>(MethodType.ServerStreaming, ServiceName, "Pull", RequestMarshaller,
                Marshallers.Create<RingFrame>(Serialize, context => Deserialize(context, sink)));
        return invoker.AsyncServerStreamingCall(method, null, new CallOptions(cancellationToken: cancellationToken), request);
    }

    public static void Serialize(RingFrame frame, SerializationContext context)
    {
        var abortBytes = frame.Abort.Length == 0 ? 0 : Encoding.UTF8.GetByteCount(frame.Abort);
        var data = frame.Data.Span;
        context.SetPayloadLength(checked(HeaderBytes + abortBytes + data.Length));
        var writer = context.GetBufferWriter();
        var head = writer.GetSpan(HeaderBytes + abortBytes);
        head[0] = Version;
        head[1] = (byte)frame.Dtype;
        head[2] = (byte)frame.Wire;
        head[3] = 0;
        BinaryPrimitives.WriteInt64LittleEndian(head[4..], frame.Op);
        BinaryPrimitives.WriteInt32LittleEndian(head[12..], frame.Phase);
        BinaryPrimitives.WriteInt32LittleEndian(head[16..], frame.Segment);
        BinaryPrimitives.WriteInt32LittleEndian(head[20..], frame.Piece);
        BinaryPrimitives.WriteInt64LittleEndian(head[24..], frame.TotalElements);
        BinaryPrimitives.WriteInt32LittleEndian(head[32..], frame.BlamedRank);
        BinaryPrimitives.WriteInt32LittleEndian(head[36..], abortBytes);
        BinaryPrimitives.WriteInt32LittleEndian(head[40..], data.Length);
        if (abortBytes > 0)
            Encoding.UTF8.GetBytes(frame.Abort, head.Slice(HeaderBytes, abortBytes));
        writer.Advance(HeaderBytes + abortBytes);
        // the tensor bytes go straight from the caller's buffer into the transport's, block by block
        while (!data.IsEmpty)
        {
            var block = writer.GetSpan();
            var n = Math.Min(block.Length, data.Length);
            data[..n].CopyTo(block);
            writer.Advance(n);
            data = data[n..];
        }
        context.Complete();
    }

    /// <summary>Reads a frame; a truncated or inconsistent one throws <see cref="InvalidDataException"/> saying what is wrong.</summary>
    public static RingFrame Deserialize(DeserializationContext context) => Deserialize(context, null);

    internal static RingFrame Deserialize(DeserializationContext context, IPieceSink? sink)
    {
        var payload = context.PayloadAsReadOnlySequence();
        if (payload.Length < HeaderBytes)
            throw new InvalidDataException($"ring frame truncated: {payload.Length} bytes, the header alone is {HeaderBytes}");
        Span<byte> head = stackalloc byte[HeaderBytes];
        payload.Slice(0, HeaderBytes).CopyTo(head);
        if (head[0] != Version)
            throw new InvalidDataException($"ring frame version {head[0]}, this rank reads version {Version}");
        var dtype = ReadType(head[1], "dtype");
        var wire = ReadType(head[2], "wire");
        var abortBytes = BinaryPrimitives.ReadInt32LittleEndian(head[36..]);
        var dataBytes = BinaryPrimitives.ReadInt32LittleEndian(head[40..]);
        if (abortBytes < 0 || dataBytes < 0 || HeaderBytes + (long)abortBytes + dataBytes != payload.Length)
            throw new InvalidDataException(
                $"ring frame of {payload.Length} bytes declares {abortBytes} abort bytes and {dataBytes} data bytes " +
                $"after its {HeaderBytes}-byte header (truncated or corrupt)");
        var abort = abortBytes == 0 ? "" : Encoding.UTF8.GetString(payload.Slice(HeaderBytes, abortBytes));
        var header = new RingFrame
        {
            Op = BinaryPrimitives.ReadInt64LittleEndian(head[4..]),
            Phase = BinaryPrimitives.ReadInt32LittleEndian(head[12..]),
            Segment = BinaryPrimitives.ReadInt32LittleEndian(head[16..]),
            Piece = BinaryPrimitives.ReadInt32LittleEndian(head[20..]),
            TotalElements = BinaryPrimitives.ReadInt64LittleEndian(head[24..]),
            BlamedRank = BinaryPrimitives.ReadInt32LittleEndian(head[32..]),
            Dtype = dtype,
            Wire = wire,
            Abort = abort,
        };
        if (dataBytes == 0)
            return header;
        // The payload is only valid during this call (the client returns its buffer to the pool after it). The
        // receiver waiting for exactly this piece reduces it from here; otherwise one copy into a pooled,
        // unzeroed buffer that the reduce step reads and then releases.
        var data = payload.Slice(HeaderBytes + abortBytes);
        if (sink is not null && data.IsSingleSegment && sink.TryConsume(header, data.FirstSpan))
            return new RingFrame
            {
                Op = header.Op, Phase = header.Phase, Segment = header.Segment, Piece = header.Piece,
                TotalElements = header.TotalElements, Dtype = header.Dtype, Wire = header.Wire, Consumed = true,
            };
        var buffer = ArrayPool<byte>.Shared.Rent(dataBytes);
        payload.Slice(HeaderBytes + abortBytes).CopyTo(buffer);
        return RingFrame.Received(header, buffer, dataBytes);
    }

    private static DType ReadType(byte value, string field) =>
        value is (byte)DType.Float32 or (byte)DType.Float16 or (byte)DType.Float64 or (byte)DType.Unspecified
            ? (DType)value
            : throw new InvalidDataException($"ring frame has unknown {field} {value}");
}
