using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;

namespace EcsNet.Data;

/// <summary>
/// A float32 array in NumPy's .npy format (version 1/2/3 header, little-endian, C order), so that inputs and
/// outputs can be exchanged with the Python peers. float64 files are read and narrowed to float32.
/// </summary>
public sealed record NpyArray(long[] Shape, float[] Data)
{
    private static readonly byte[] Magic = { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y' };

    public static NpyArray Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException(path, $"cannot read: {e.Message}", e);
        }
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
            throw new BadInputException(path, "not a .npy file (no \\x93NUMPY magic)");
        int major = bytes[6];
        int headerLength, start;
        if (major == 1)
        {
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
            start = 10;
        }
        else if (major is 2 or 3)
        {
            if (bytes.Length < 12)
                throw new BadInputException(path, "truncated .npy header");
            headerLength = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
            start = 12;
        }
        else
            throw new BadInputException(path, $".npy format version {major} is not supported");
        if (start + headerLength > bytes.Length)
            throw new BadInputException(path, "truncated .npy header");
        string header = Encoding.Latin1.GetString(bytes, start, headerLength);
        var descr = Regex.Match(header, @"'descr'\s*:\s*'([^']*)'").Groups[1].Value;
        var fortran = Regex.Match(header, @"'fortran_order'\s*:\s*(True|False)").Groups[1].Value;
        var shapeText = Regex.Match(header, @"'shape'\s*:\s*\(([^)]*)\)");
        if (descr.Length == 0 || fortran.Length == 0 || !shapeText.Success)
            throw new BadInputException(path, $"unreadable .npy header: {header.Trim()}");
        if (fortran == "True")
            throw new BadInputException(path, "Fortran-order arrays are not supported; save with np.ascontiguousarray");
        var shape = shapeText.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(long.Parse).ToArray();
        long count = shape.Aggregate(1L, (a, b) => a * b);
        int offset = start + headerLength;
        int itemSize = descr switch { "<f4" => 4, "<f8" => 8, _ => 0 };
        if (itemSize == 0)
            throw new BadInputException(path, $"dtype '{descr}' is not supported (float32 '<f4' or float64 '<f8')");
        if (bytes.Length - offset != count * itemSize)
            throw new BadInputException(path,
                $"holds {bytes.Length - offset} data bytes, shape ({string.Join(", ", shape)}) of {descr} needs {count * itemSize}");
        var data = new float[count];
        if (itemSize == 4)
            Buffer.BlockCopy(bytes, offset, data, 0, checked((int)(count * 4)));
        else
            for (long i = 0; i < count; i++)
                data[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(offset + (int)(i * 8)));
        return new NpyArray(shape, data);
    }

    public void Write(string path)
    {
        string shapeText = Shape.Length == 1 ? $"({Shape[0]},)" : $"({string.Join(", ", Shape)})";
        string dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shapeText}, }}";
        // header (magic 6 + version 2 + length 2 + dict + '\n') padded with spaces to a multiple of 64 bytes
        int total = 10 + dict.Length + 1;
        int padded = (total + 63) / 64 * 64;
        string header = dict + new string(' ', padded - total) + "\n";
        using var stream = File.Create(path);
        stream.Write(Magic);
        stream.WriteByte(1);
        stream.WriteByte(0);
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
        stream.Write(len);
        stream.Write(Encoding.Latin1.GetBytes(header));
        var raw = new byte[Data.Length * 4];
        Buffer.BlockCopy(Data, 0, raw, 0, raw.Length);
        stream.Write(raw);
    }
}
