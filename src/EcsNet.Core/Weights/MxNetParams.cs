using System.Text;
using EcsNet.Data;
using static TorchSharp.torch;

namespace EcsNet.Core.Weights;

/// <summary>
/// Reader for MXNet's <c>mx.nd.save</c> files (<c>.params</c>), the format of the ResNet-38 ImageNet weights PSA and
/// SEAM start from (ademxapp's <c>ilsvrc-cls_rna-a1_cls1000_ep-0001.params</c>), so those users need neither
/// MXNet nor a conversion step. Layout (MXNet <c>src/ndarray/ndarray.cc</c>), all little-endian:
/// u64 0x112, u64 reserved, u64 array count, the arrays, u64 name count, names as (u64 length, bytes).
/// Each array: u32 magic — 0xF993FAC9 (v2: i32 storage type, then a u32-ndim + i64-dims shape),
/// 0xF993FAC8 (v1: the same shape, no storage type), anything else is the ndim of a legacy shape of u32 dims —
/// then (unless ndim is 0) i32 device type, i32 device id, i32 type flag and the dense data.
/// </summary>
public static class MxNetParams
{
    public const ulong ListMagic = 0x112;
    private const uint V1Magic = 0xF993FAC8, V2Magic = 0xF993FAC9;

    /// <summary>Reads every array with its name (<c>arg:</c>/<c>aux:</c> prefixes kept; see
    /// <see cref="WeightNameMaps.MxNetResNet38"/>).</summary>
    public static Dictionary<string, Tensor> Read(string path)
    {
        using var stream = File.OpenRead(path);
        using var r = new BinaryReader(stream, Encoding.UTF8, leaveOpen: false);
        long length = stream.Length;
        var arrays = new List<Tensor?>();
        try
        {
            if (r.ReadUInt64() != ListMagic) throw new BadInputException(path, "not an MXNet NDArray list (bad magic)");
            r.ReadUInt64(); // reserved
            ulong count = r.ReadUInt64();
            if (count > 1_000_000) throw new BadInputException(path, $"MXNet file claims {count} arrays");
            for (ulong i = 0; i < count; i++)
                arrays.Add(ReadArray(r, path, length));
            ulong nameCount = r.ReadUInt64();
            if (nameCount != count)
                throw new BadInputException(path, $"MXNet file has {count} arrays but {nameCount} names (unnamed lists are not weight files)");
            var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            for (ulong i = 0; i < nameCount; i++)
            {
                ulong len = r.ReadUInt64();
                if (len > 4096) throw new BadInputException(path, $"MXNet array name {i} claims {len} bytes");
                var name = Encoding.UTF8.GetString(r.ReadBytes((int)len));
                if (arrays[(int)i] is { } t && !result.TryAdd(name, t))
                    throw new BadInputException(path, $"MXNet array name '{name}' appears twice");
                arrays[(int)i] = null;
            }
            return result;
        }
        catch (EndOfStreamException)
        {
            throw new BadInputException(path, "MXNet file is truncated");
        }
        finally
        {
            foreach (var t in arrays) t?.Dispose();
        }
    }

    private static Tensor? ReadArray(BinaryReader r, string path, long fileLength)
    {
        uint magic = r.ReadUInt32();
        long[] shape;
        if (magic is V1Magic or V2Magic)
        {
            if (magic == V2Magic)
            {
                int storage = r.ReadInt32();
                if (storage != 0) throw new BadInputException(path, $"sparse MXNet arrays (storage type {storage}) are not supported");
            }
            uint ndim = r.ReadUInt32();
            CheckNdim(ndim, path);
            shape = new long[ndim];
            for (int d = 0; d < ndim; d++) shape[d] = r.ReadInt64();
        }
        else
        {
            CheckNdim(magic, path);
            shape = new long[magic];
            for (int d = 0; d < magic; d++) shape[d] = r.ReadUInt32();
        }
        if (shape.Length == 0) return null;
        r.ReadInt32(); // device type
        r.ReadInt32(); // device id
        int typeFlag = r.ReadInt32();
        var dtype = typeFlag switch
        {
            0 => ScalarType.Float32,
            1 => ScalarType.Float64,
            2 => ScalarType.Float16,
            3 => ScalarType.Byte,
            4 => ScalarType.Int32,
            5 => ScalarType.Int8,
            6 => ScalarType.Int64,
            _ => throw new BadInputException(path, $"MXNet type flag {typeFlag} is not supported"),
        };
        long numel = shape.Aggregate(1L, (a, b) => a * b);
        long bytes = numel * (dtype switch { ScalarType.Float64 or ScalarType.Int64 => 8, ScalarType.Float32 or ScalarType.Int32 => 4, ScalarType.Float16 => 2, _ => 1 });
        if (shape.Any(d => d < 0) || bytes > int.MaxValue)
            throw new BadInputException(path, $"MXNet array has an impossible shape [{string.Join(", ", shape)}]");
        long left = fileLength - r.BaseStream.Position;
        if (bytes > left)
            throw new BadInputException(path, $"MXNet file is truncated (an array of shape [{string.Join(", ", shape)}] needs {bytes} bytes, {left} left)");
        var data = r.ReadBytes((int)bytes);
        if (data.Length != bytes) throw new EndOfStreamException();
        var tensor = empty(shape, dtype);
        if (data.Length > 0) tensor.bytes = data;
        return tensor;
    }

    private static void CheckNdim(uint ndim, string path)
    {
        if (ndim > 32) throw new BadInputException(path, $"MXNet array claims {ndim} dimensions (corrupt file?)");
    }
}
