using System.Buffers;
using System.Buffers.Binary;
using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.Wire;
using Grpc.Core;

namespace EcsNet.AllReduce.Tests.Ring;

/// <summary>The hand-written marshaller of the ring's Pull stream: round trips, aborts, and frames it must refuse.</summary>
public sealed class RingFrameTests
{
    [Fact]
    public void A_data_frame_round_trips_header_and_bytes()
    {
        var data = Enumerable.Range(0, 1000).Select(i => (byte)(i * 7)).ToArray();
        var sent = new RingFrame
        {
            Op = 1L << 40, Phase = 3, Segment = 2, Piece = 17, TotalElements = 5_000_000_000L,
            Dtype = DType.Float32, Wire = DType.Float16, Data = data,
        };
        var bytes = Write(sent);
        Assert.Equal(RingWire.HeaderBytes + data.Length, bytes.Length);

        // split across segments, as the transport may hand it over
        var got = RingWire.Deserialize(new Reading(bytes, split: 10));
        Assert.Equal(sent.Op, got.Op);
        Assert.Equal(3, got.Phase);
        Assert.Equal(2, got.Segment);
        Assert.Equal(17, got.Piece);
        Assert.Equal(sent.TotalElements, got.TotalElements);
        Assert.Equal(DType.Float32, got.Dtype);
        Assert.Equal(DType.Float16, got.Wire);
        Assert.Equal("", got.Abort);
        Assert.Equal(data, got.Data.ToArray());
        got.Release();
    }

    [Fact]
    public void An_expected_piece_is_reduced_from_the_message_and_anything_else_is_copied_out()
    {
        var data = Enumerable.Range(0, 64).Select(i => (byte)i).ToArray();
        var bytes = Write(new RingFrame { Op = 5, Phase = 1, Segment = 0, Piece = 2, TotalElements = 16, Dtype = DType.Float32, Wire = DType.Float32, Data = data });
        var sink = new Sink { Piece = 2 };

        var consumed = RingWire.Deserialize(new Reading(bytes), sink);
        Assert.True(consumed.Consumed);
        Assert.True(consumed.Data.IsEmpty);
        Assert.Equal(2, consumed.Piece);
        Assert.Equal(data, sink.Taken);

        // not the piece the receiver waits for: kept whole, so that its order check names what came instead
        sink.Piece = 3;
        sink.Taken = null;
        var kept = RingWire.Deserialize(new Reading(bytes), sink);
        Assert.False(kept.Consumed);
        Assert.Equal(data, kept.Data.ToArray());
        Assert.Null(sink.Taken);
        kept.Release();
    }

    private sealed class Sink : IPieceSink
    {
        public int Piece { get; set; }

        public byte[]? Taken { get; set; }

        public bool TryConsume(RingFrame header, ReadOnlySpan<byte> data)
        {
            if (header.Piece != Piece)
                return false;
            Taken = data.ToArray();
            return true;
        }
    }

    [Fact]
    public void An_abort_frame_carries_its_text_and_blamed_rank()
    {
        var sent = new RingFrame { Op = -1, Phase = -1, Abort = "rank 2: peer 1 stalled — gave up", BlamedRank = 1 };
        var got = RingWire.Deserialize(new Reading(Write(sent)));
        Assert.Equal("rank 2: peer 1 stalled — gave up", got.Abort);
        Assert.Equal(1, got.BlamedRank);
        Assert.Equal(-1, got.Phase);
        Assert.True(got.Data.IsEmpty);
    }

    [Fact]
    public void A_truncated_frame_is_refused_saying_so()
    {
        var bytes = Write(new RingFrame { Op = 4, Phase = 0, Dtype = DType.Float32, Wire = DType.Float32, Data = new byte[64] });

        var cut = Assert.Throws<InvalidDataException>(() => RingWire.Deserialize(new Reading(bytes[..^1])));
        Assert.Contains("declares 0 abort bytes and 64 data bytes", cut.Message);
        Assert.Contains($"ring frame of {bytes.Length - 1} bytes", cut.Message);

        var headless = Assert.Throws<InvalidDataException>(() => RingWire.Deserialize(new Reading(bytes[..20])));
        Assert.Contains("truncated: 20 bytes", headless.Message);
    }

    [Fact]
    public void A_corrupt_header_is_refused_naming_the_field()
    {
        var bytes = Write(new RingFrame { Op = 4, Phase = 0, Dtype = DType.Float32, Wire = DType.Float32, Data = new byte[8] });

        var version = (byte[])bytes.Clone();
        version[0] = 9;
        Assert.Contains("version 9", Assert.Throws<InvalidDataException>(() => RingWire.Deserialize(new Reading(version))).Message);

        var wire = (byte[])bytes.Clone();
        wire[2] = 200;
        Assert.Contains("unknown wire 200", Assert.Throws<InvalidDataException>(() => RingWire.Deserialize(new Reading(wire))).Message);

        var length = (byte[])bytes.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(length.AsSpan(40), -5);
        Assert.Contains("-5 data bytes", Assert.Throws<InvalidDataException>(() => RingWire.Deserialize(new Reading(length))).Message);
    }

    private static byte[] Write(RingFrame frame)
    {
        var context = new Writing();
        RingWire.Serialize(frame, context);
        Assert.True(context.Completed);
        Assert.Equal(context.DeclaredLength, context.Buffer.WrittenCount);
        return context.Buffer.WrittenSpan.ToArray();
    }

    /// <summary>What gRPC hands a serializer, reduced to a growing buffer.</summary>
    private sealed class Writing : SerializationContext
    {
        public ArrayBufferWriter<byte> Buffer { get; } = new(16);

        public int DeclaredLength { get; private set; } = -1;

        public bool Completed { get; private set; }

        public override void SetPayloadLength(int payloadLength) => DeclaredLength = payloadLength;

        public override IBufferWriter<byte> GetBufferWriter() => Buffer;

        public override void Complete() => Completed = true;
    }

    /// <summary>What gRPC hands a deserializer: the payload, optionally cut into two segments.</summary>
    private sealed class Reading(byte[] payload, int split = 0) : DeserializationContext
    {
        public override int PayloadLength => payload.Length;

        public override byte[] PayloadAsNewBuffer() => (byte[])payload.Clone();

        public override ReadOnlySequence<byte> PayloadAsReadOnlySequence()
        {
            if (split <= 0 || split >= payload.Length)
                return new ReadOnlySequence<byte>(payload);
            var first = new Segment(payload.AsMemory(0, split), 0);
            var last = first.Append(payload.AsMemory(split));
            return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
        }
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
