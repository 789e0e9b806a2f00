using System.Buffers.Binary;
using EcsNet.Data;
using Google.Protobuf;
using Tensorboard;

namespace EcsNet.Core.Training;

/// <summary>
/// A TensorBoard event file of its own in a log folder, for what TorchSharp's SummaryWriter does not write as is:
/// scalars added after training (a stage's score) and PNG files as image summaries, their bytes unchanged (TorchSharp
/// re-encodes images through SkiaSharp). Each record is TensorFlow's record framing: the event's length as 8
/// little-endian bytes, the masked CRC-32C of those bytes, the serialized <c>tensorboard.Event</c> (TorchSharp's
/// generated type) and its masked CRC-32C (TensorFlow, core/lib/io/record_writer.cc). TensorBoard reads every
/// <c>*tfevents*</c> file of a folder, so these sit beside the training's.
/// </summary>
public sealed class TensorBoardEventFile
{
    private static int files;

    /// <summary>A new file in <paramref name="logDir"/> (created if needed), its name ending in <paramref name="suffix"/>.</summary>
    public TensorBoardEventFile(string logDir, string suffix)
    {
        Directory.CreateDirectory(logDir);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        FilePath = Path.Combine(logDir,
            $"events.out.tfevents.{now}.{Environment.MachineName}.{Environment.ProcessId}.{Interlocked.Increment(ref files)}.{suffix}");
        Append(new Event { WallTime = WallTime(), FileVersion = "brain.Event:2" });
    }

    public string FilePath { get; }

    public void AddScalar(string tag, double value, int step) =>
        Append(SummaryEvent(step, new Summary.Types.Value { Tag = tag, SimpleValue = (float)value }));

    /// <summary>Adds the PNG <paramref name="png"/> as an image summary (its size and colour space read from its header).</summary>
    public void AddPng(string tag, byte[] png, int step)
    {
        var (width, height, colorspace) = PngHeader(png, tag);
        var image = new Summary.Types.Image
        {
            Width = width, Height = height, Colorspace = colorspace, EncodedImageString = ByteString.CopyFrom(png),
        };
        Append(SummaryEvent(step, new Summary.Types.Value { Tag = tag, Image = image }));
    }

    private static Event SummaryEvent(int step, Summary.Types.Value value)
    {
        var summary = new Summary();
        summary.Value.Add(value);
        return new Event { WallTime = WallTime(), Step = step, Summary = summary };
    }

    private static double WallTime() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    private void Append(Event e)
    {
        var data = e.ToByteArray();
        var record = new byte[8 + 4 + data.Length + 4];
        BinaryPrimitives.WriteUInt64LittleEndian(record, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(8), Crc32C.Masked(record.AsSpan(0, 8)));
        data.CopyTo(record, 12);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(12 + data.Length), Crc32C.Masked(data));
        using var file = new FileStream(FilePath, FileMode.Append, FileAccess.Write, FileShare.Read);
        file.Write(record);
    }

    /// <summary>
    /// Width, height and TensorBoard colour space (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA) from a PNG's IHDR chunk,
    /// which the format puts first (PNG specification §11.2.2).
    /// </summary>
    private static (int Width, int Height, int Colorspace) PngHeader(byte[] png, string tag)
    {
        ReadOnlySpan<byte> signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
        if (png.Length < 33 || !png.AsSpan(0, 8).SequenceEqual(signature) || !png.AsSpan(12, 4).SequenceEqual("IHDR"u8))
            throw new BadInputException(tag, "not a PNG file");
        int width = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(16));
        int height = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(20));
        int colorspace = png[25] switch
        {
            0 => 1,
            4 => 2,
            6 => 4,
            _ => 3,   // RGB, and a palette decodes to RGB
        };
        return (width, height, colorspace);
    }
}
