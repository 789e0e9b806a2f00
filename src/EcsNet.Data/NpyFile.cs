using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace EcsNet.Data;

/// <summary>An n-dimensional array read from a .npy file, as float32 in C order.</summary>
public sealed record NpyArray(int[] Shape, float[] Data)
{
    public long Count => Data.LongLength;
}

/// <summary>
/// Minimal NumPy .npy (format 1.0/2.0/3.0) reader and writer: little-endian float32, float64 (read as float32)
/// and uint8 arrays in C order — what CAM files and CRF inputs need, readable by <c>numpy.load</c>.
/// </summary>
public static partial class NpyFile
{
    private static readonly byte[] Magic = { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y' };

    /// <summary>Reads a float32/float64/uint8 array; values become float32. Errors name the file.</summary>
    public static NpyArray Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException(path, $"cannot read .npy file ({e.Message})", e);
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses .npy bytes; <paramref name="subject"/> names the source in errors.</summary>
    public static NpyArray Parse(ReadOnlySpan<byte> bytes, string subject)
    {
        if (bytes.Length < 10 || !bytes[..6].SequenceEqual(Magic))
            throw new BadInputException(subject, "not a .npy file (bad magic)");
        int major = bytes[6];
        int headerLength, start;
        if (major == 1)
        {
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..]);
            start = 10;
        }
        else if (major is 2 or 3)
        {
            if (bytes.Length < 12) throw new BadInputException(subject, "truncated .npy header");
            headerLength = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]));
            start = 12;
        }
        else
            throw new BadInputException(subject, $"unsupported .npy format version {major}");
        if (start + headerLength > bytes.Length)
            throw new BadInputException(subject, "truncated .npy header");
        string header = Encoding.Latin1.GetString(bytes.Slice(start, headerLength));

        var descr = DescrPattern().Match(header);
        var order = FortranPattern().Match(header);
        var shapeMatch = ShapePattern().Match(header);
        if (!descr.Success || !order.Success || !shapeMatch.Success)
            throw new BadInputException(subject, $"unreadable .npy header '{header.Trim()}'");
        if (order.Groups[1].Value == "True")
            throw new BadInputException(subject, "Fortran-ordered arrays are not supported; save with numpy.ascontiguousarray");
        var shape = shapeMatch.Groups[1].Value
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var payload = bytes[(start + headerLength)..];
        string type = descr.Groups[1].Value;
        int size = type switch { "<f4" => 4, "<f8" => 8, "<f2" => 2, "|u1" or "<u1" => 1, _ => 0 };
        if (size == 0)
            throw new BadInputException(subject, $"unsupported dtype '{type}' (expected float16, float32, float64 or uint8, little-endian)");
        if (payload.Length < count * size)
            throw new BadInputException(subject, $"holds {payload.Length} data bytes, shape ({string.Join(", ", shape)}) of '{type}' needs {count * size}");
        if (count > Array.MaxLength)
            throw new BadInputException(subject, "array too large");

        var data = new float[count];
        switch (size)
        {
            case 4:
                MemoryMarshal.Cast<byte, float>(payload[..(int)(count * 4)]).CopyTo(data);
                break;
            case 2:
                var halves = MemoryMarshal.Cast<byte, Half>(payload[..(int)(count * 2)]);
                for (int i = 0; i < data.Length; i++) data[i] = (float)halves[i];
                break;
            case 8:
                var doubles = MemoryMarshal.Cast<byte, double>(payload[..(int)(count * 8)]);
                for (int i = 0; i < data.Length; i++) data[i] = (float)doubles[i];
                break;
            default:
                for (int i = 0; i < data.Length; i++) data[i] = payload[i];
                break;
        }
        return new NpyArray(shape, data);
    }

    /// <summary>Writes a float32 array of the given shape.</summary>
    public static void Write(string path, ReadOnlySpan<float> data, params int[] shape) =>
        WriteRaw(path, "<f4", MemoryMarshal.AsBytes(data), data.Length, shape);

    /// <summary>Writes a float16 array of the given shape (half the size of float32; for stored CAMs).</summary>
    public static void WriteHalf(string path, ReadOnlySpan<float> data, params int[] shape)
    {
        var halves = new Half[data.Length];
        for (int i = 0; i < data.Length; i++) halves[i] = (Half)data[i];
        WriteRaw(path, "<f2", MemoryMarshal.AsBytes(halves.AsSpan()), data.Length, shape);
    }

    /// <summary>Writes a uint8 array of the given shape.</summary>
    public static void Write(string path, ReadOnlySpan<byte> data, params int[] shape) =>
        WriteRaw(path, "|u1", data, data.Length, shape);

    /// <summary>Writes a float32 array of the given shape to a stream (an <see cref="AtomicFile"/>, an .npz entry).</summary>
    public static void Write(Stream stream, ReadOnlySpan<float> data, params int[] shape) =>
        WriteRaw(stream, "<f4", MemoryMarshal.AsBytes(data), data.Length, shape);

    /// <summary>Writes a uint8 array of the given shape to a stream.</summary>
    public static void Write(Stream stream, ReadOnlySpan<byte> data, params int[] shape) =>
        WriteRaw(stream, "|u1", data, data.Length, shape);

    private static void WriteRaw(string path, string descr, ReadOnlySpan<byte> payload, long count, int[] shape)
    {
        using var stream = File.Create(path);
        WriteRaw(stream, descr, payload, count, shape);
    }

    private static void WriteRaw(Stream stream, string descr, ReadOnlySpan<byte> payload, long count, int[] shape)
    {
        if (shape.Aggregate(1L, (a, b) => a * b) != count)
            throw new ArgumentException($"shape ({string.Join(", ", shape)}) does not hold {count} values", nameof(shape));
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        string header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = 10 + header.Length + 1;
        header += new string(' ', (64 - total % 64) % 64) + "\n";
        stream.Write(Magic);
        stream.Write(new byte[] { 1, 0 });
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, checked((ushort)header.Length));
        stream.Write(len);
        stream.Write(Encoding.Latin1.GetBytes(header));
        stream.Write(payload);
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
