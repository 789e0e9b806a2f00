using System.Buffers.Binary;
using EcsNet.Data;
using Google.Protobuf;

namespace EcsNet.Core.Tests.Training;

/// <summary>One value of a summary event: a scalar, or an image with its encoded bytes.</summary>
internal sealed record TensorBoardValue(string File, long Step, string Tag, float? Scalar, TensorBoardImage? Image);

internal sealed record TensorBoardImage(int Height, int Width, int Colorspace, byte[] Encoded);

/// <summary>
/// Reads TensorBoard event files without TorchSharp's generated types, so that the writers are checked against the
/// formats themselves: TensorFlow's record framing (length, masked CRC-32C of the length, data, masked CRC-32C of the
/// data; both CRCs are verified) and the fields of tensorboard's event.proto and summary.proto decoded by number
/// (Event: 2 step, 5 summary; Summary: 1 value; Value: 1 tag, 2 simple_value, 4 image; Image: 1 height, 2 width,
/// 3 colorspace, 4 encoded_image_string).
/// </summary>
internal static class TensorBoardReader
{
    /// <summary>Every summary value of every <c>*tfevents*</c> file in <paramref name="logDir"/>.</summary>
    public static List<TensorBoardValue> ReadFolder(string logDir) =>
        Directory.EnumerateFiles(logDir, "*tfevents*").Order(StringComparer.Ordinal).SelectMany(ReadFile).ToList();

    public static IEnumerable<TensorBoardValue> ReadFile(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var values = new List<TensorBoardValue>();
        int at = 0;
        while (at < bytes.Length)
        {
            Assert.True(bytes.Length - at >= 16, $"{path}: a truncated record at byte {at}");
            var lengthBytes = bytes.AsSpan(at, 8);
            Assert.Equal(Crc32C.Masked(lengthBytes), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8)));
            int length = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes));
            var data = bytes.AsSpan(at + 12, length);
            Assert.Equal(Crc32C.Masked(data), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + length)));
            values.AddRange(Event(Path.GetFileName(path), data.ToArray()));
            at += 12 + length + 4;
        }
        return values;
    }

    private static List<TensorBoardValue> Event(string file, byte[] data)
    {
        long step = 0;
        var summaries = new List<ByteString>();
        var input = new CodedInputStream(data);
        for (uint tag; (tag = input.ReadTag()) != 0;)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 2: step = input.ReadInt64(); break;
                case 5: summaries.Add(input.ReadBytes()); break;
                default: input.SkipLastField(); break;
            }
        }
        var values = new List<TensorBoardValue>();
        foreach (var summary in summaries)
        {
            var s = summary.CreateCodedInput();
            for (uint tag; (tag = s.ReadTag()) != 0;)
            {
                if (WireFormat.GetTagFieldNumber(tag) == 1)
                    values.Add(Value(file, step, s.ReadBytes()));
                else
                    s.SkipLastField();
            }
        }
        return values;
    }

    private static TensorBoardValue Value(string file, long step, ByteString bytes)
    {
        string tag = "";
        float? scalar = null;
        TensorBoardImage? image = null;
        var input = bytes.CreateCodedInput();
        for (uint t; (t = input.ReadTag()) != 0;)
        {
            switch (WireFormat.GetTagFieldNumber(t))
            {
                case 1: tag = input.ReadString(); break;
                case 2: scalar = input.ReadFloat(); break;
                case 4: image = Image(input.ReadBytes()); break;
                default: input.SkipLastField(); break;
            }
        }
        return new TensorBoardValue(file, step, tag, scalar, image);
    }

    private static TensorBoardImage Image(ByteString bytes)
    {
        int height = 0, width = 0, colorspace = 0;
        byte[] encoded = Array.Empty<byte>();
        var input = bytes.CreateCodedInput();
        for (uint t; (t = input.ReadTag()) != 0;)
        {
            switch (WireFormat.GetTagFieldNumber(t))
            {
                case 1: height = input.ReadInt32(); break;
                case 2: width = input.ReadInt32(); break;
                case 3: colorspace = input.ReadInt32(); break;
                case 4: encoded = input.ReadBytes().ToByteArray(); break;
                default: input.SkipLastField(); break;
            }
        }
        return new TensorBoardImage(height, width, colorspace, encoded);
    }
}
