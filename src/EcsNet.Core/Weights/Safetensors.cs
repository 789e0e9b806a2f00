using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EcsNet.Data;
using static TorchSharp.torch;

namespace EcsNet.Core.Weights;

/// <summary>
/// Reader and writer for the safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes
/// of JSON mapping each tensor name to <c>{"dtype", "shape", "data_offsets": [begin, end]}</c> (offsets relative
/// to the end of the header; an optional <c>"__metadata__"</c> map of strings), then the raw little-endian data.
/// </summary>
public static class Safetensors
{
    /// <summary>Headers beyond this size are rejected as corrupt (the format's reference reader caps at 100 MB).</summary>
    private const long MaxHeaderBytes = 100L << 20;

    private static readonly Dictionary<string, ScalarType> DTypes = new()
    {
        ["F64"] = ScalarType.Float64,
        ["F32"] = ScalarType.Float32,
        ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16,
        ["I64"] = ScalarType.Int64,
        ["I32"] = ScalarType.Int32,
        ["I16"] = ScalarType.Int16,
        ["I8"] = ScalarType.Int8,
        ["U8"] = ScalarType.Byte,
        ["BOOL"] = ScalarType.Bool,
    };

    /// <summary>True when the file starts like a safetensors file (a plausible header length, then '{').</summary>
    public static bool LooksLike(ReadOnlySpan<byte> head, long fileLength)
    {
        if (head.Length < 9) return false;
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(head);
        return n > 1 && n <= MaxHeaderBytes && 8 + n <= fileLength && head[8] == (byte)'{';
    }

    /// <summary>Reads every tensor of a safetensors file (CPU, in the file's dtype).</summary>
    /// <exception cref="BadInputException">The file is missing, truncated or has a malformed header.</exception>
    public static Dictionary<string, Tensor> Read(string path)
    {
        using var stream = OpenOrThrow(path);
        long length = stream.Length;
        Span<byte> lenBytes = stackalloc byte[8];
        if (stream.Read(lenBytes) != 8)
            throw new BadInputException(path, "not a safetensors file (shorter than its 8-byte header length)");
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > length)
            throw new BadInputException(path, $"safetensors header length {headerLength} does not fit the file ({length} bytes)");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        JsonObject header;
        try
        {
            header = JsonNode.Parse(headerBytes)?.AsObject()
                ?? throw new BadInputException(path, "safetensors header is not a JSON object");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new BadInputException(path, $"safetensors header is not valid JSON ({e.Message})");
        }

        long dataStart = 8 + headerLength, dataLength = length - dataStart;
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, node) in header)
            {
                if (name == "__metadata__") continue;
                var entry = node as JsonObject
                    ?? throw new BadInputException(path, $"safetensors entry '{name}' is not an object");
                var dtypeName = entry["dtype"]?.GetValue<string>() ?? "";
                if (!DTypes.TryGetValue(dtypeName, out var dtype))
                    throw new BadInputException(path, $"tensor '{name}' has unsupported dtype '{dtypeName}' (supported: {string.Join(", ", DTypes.Keys)})");
                var shape = (entry["shape"] as JsonArray ?? throw new BadInputException(path, $"tensor '{name}' has no shape"))
                    .Select(d => d!.GetValue<long>()).ToArray();
                var offsets = entry["data_offsets"] as JsonArray;
                if (offsets is null || offsets.Count != 2)
                    throw new BadInputException(path, $"tensor '{name}' has no [begin, end] data_offsets");
                long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
                long elementSize = ElementSize(dtype);
                long count = shape.Aggregate(1L, (a, b) => a * b);
                if (shape.Any(d => d < 0) || begin < 0 || end > dataLength || end - begin != count * elementSize)
                    throw new BadInputException(path,
                        $"tensor '{name}' ({dtypeName} [{string.Join(", ", shape)}]) has data_offsets [{begin}, {end}] that do not fit its shape or the file");

                var bytes = new byte[end - begin];
                stream.Position = dataStart + begin;
                stream.ReadExactly(bytes);
                var tensor = empty(shape, dtype);
                if (bytes.Length > 0)
                    tensor.bytes = bytes;
                result.Add(name, tensor);
            }
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>Writes tensors (in the given order) to a safetensors file, data packed back to back.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var items = tensors.ToList();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }
        long offset = 0;
        foreach (var (name, t) in items)
        {
            long size = t.numel() * t.ElementSize;
            header[name] = new JsonObject
            {
                ["dtype"] = DTypeName(t.dtype, name),
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + size),
            };
            offset += size;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        // Pad the header with spaces to a multiple of 8 so the data that follows is aligned, as the format advises.
        int padded = (json.Length + 7) / 8 * 8;
        var headerBytes = new byte[padded];
        json.CopyTo(headerBytes, 0);
        headerBytes.AsSpan(json.Length).Fill((byte)' ');

        using var stream = File.Create(path);
        Span<byte> lenBytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(lenBytes, (ulong)padded);
        stream.Write(lenBytes);
        stream.Write(headerBytes);
        foreach (var (_, t) in items)
        {
            if (t.numel() == 0) continue;
            using var cpu = t.detach().cpu().contiguous();
            stream.Write(cpu.bytes);
        }
    }

    private static string DTypeName(ScalarType dtype, string name)
    {
        foreach (var (k, v) in DTypes)
            if (v == dtype) return k;
        throw new ArgumentException($"tensor '{name}': dtype {dtype} has no safetensors name", nameof(dtype));
    }

    private static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    private static FileStream OpenOrThrow(string path)
    {
        try
        {
            return File.OpenRead(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadInputException(path, e is FileNotFoundException or DirectoryNotFoundException
                ? "file not found" : $"cannot open ({e.Message})");
        }
    }
}
