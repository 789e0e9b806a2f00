using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using EcsNet.Data;
using static TorchSharp.torch;

namespace EcsNet.Core.Weights;

/// <summary>
/// Reader for PyTorch's legacy (pre-1.6, non-zip) <c>torch.save</c> format, which PSA/SEAM-era checkpoints and
/// converted ResNet-38 weights use (PyTorch 0.4). TorchSharp.PyBridge reads only the zip format. The file is a
/// run of pickles: the magic number 0x1950a86a20f9469cfc6c, the protocol version 1001, a sys-info dict, the
/// state dict (tensors stand in as <c>_rebuild_tensor_v2(storage, offset, size, stride, …)</c> whose storages
/// are persistent ids <c>('storage', type, key, location, numel, view)</c>), the list of storage keys, then
/// each storage's raw data after an int64 element count. A small pickle machine covers the opcodes
/// <c>torch.save</c> emits (protocols 2–4); any other callable becomes an opaque value and is ignored.
/// </summary>
public static class TorchLegacyFormat
{
    /// <summary>
    /// True when the bytes start like a pickle of protocol 2–5 (<c>torch.save</c>'s default is 2). The magic number
    /// inside is checked by <see cref="Read"/>; callers test the other formats first.
    /// </summary>
    public static bool LooksLike(ReadOnlySpan<byte> head) => head.Length >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5;

    /// <summary>Reads the tensors of a legacy state dict (a nested <c>state_dict</c>/<c>model</c> entry is unwrapped).</summary>
    public static Dictionary<string, Tensor> Read(string path)
    {
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream);
        try
        {
            var magic = new PickleMachine(reader).Load();
            if (magic is not BigInteger m || m != BigInteger.Parse("119547037146038801333356"))
                throw new BadInputException(path, "not a legacy PyTorch file (bad magic number)");
            var version = new PickleMachine(reader).Load();
            if (version is not BigInteger v || v != 1001)
                throw new BadInputException(path, $"unsupported legacy PyTorch protocol version {version}");
            if (new PickleMachine(reader).Load() is Dictionary<object, object?> sysInfo
                && sysInfo.TryGetValue("little_endian", out var le) && le is false)
                throw new BadInputException(path, "saved on a big-endian machine; not supported");

            var machine = new PickleMachine(reader);
            var root = machine.Load();
            if (new PickleMachine(reader).Load() is not List<object?> keys)
                throw new BadInputException(path, "legacy PyTorch file has no storage key list");

            // Storage data follows in key order: int64 element count, then the elements.
            var data = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            try
            {
                foreach (var keyObj in keys)
                {
                    var key = keyObj as string ?? throw new BadInputException(path, "storage key is not a string");
                    if (!machine.Storages.TryGetValue(key, out var storage))
                        throw new BadInputException(path, $"storage '{key}' is listed but never used");
                    long numel = reader.ReadInt64();
                    var bytes = reader.ReadBytes(checked((int)(numel * ElementSize(storage.DType))));
                    if (bytes.Length != numel * ElementSize(storage.DType)) throw new EndOfStreamException();
                    var flat = empty(numel, storage.DType);
                    if (bytes.Length > 0) flat.bytes = bytes;
                    data[key] = flat;
                }

                var dict = Unwrap(root) ?? throw new BadInputException(path, "does not hold a state dict (a dict of tensors)");
                var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                foreach (var (k, value) in dict)
                {
                    if (k is not string name || value is not TensorRef t) continue;
                    if (!data.TryGetValue(t.Storage.Key, out var flat))
                        throw new BadInputException(path, $"tensor '{name}' refers to missing storage '{t.Storage.Key}'");
                    using var view = flat.as_strided(t.Size, t.Stride, t.Storage.Offset + t.Offset);
                    result[name] = view.clone();
                }
                if (result.Count == 0)
                    throw new BadInputException(path, "holds no tensors (expected torch.save(model.state_dict(), ...))");
                return result;
            }
            finally
            {
                foreach (var t in data.Values) t.Dispose();
            }
        }
        catch (EndOfStreamException)
        {
            throw new BadInputException(path, "legacy PyTorch file is truncated");
        }
        catch (InvalidDataException e)
        {
            throw new BadInputException(path, $"legacy PyTorch file is malformed ({e.Message})");
        }
    }

    private static Dictionary<object, object?>? Unwrap(object? root)
    {
        if (root is not Dictionary<object, object?> dict) return null;
        foreach (var key in new[] { "state_dict", "model", "model_state_dict", "net" })
            if (dict.TryGetValue(key, out var inner) && inner is Dictionary<object, object?> d)
                return d;
        return dict;
    }

    private static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    private static ScalarType StorageType(string name) => name switch
    {
        "FloatStorage" => ScalarType.Float32,
        "DoubleStorage" => ScalarType.Float64,
        "HalfStorage" => ScalarType.Float16,
        "BFloat16Storage" => ScalarType.BFloat16,
        "LongStorage" => ScalarType.Int64,
        "IntStorage" => ScalarType.Int32,
        "ShortStorage" => ScalarType.Int16,
        "CharStorage" => ScalarType.Int8,
        "ByteStorage" => ScalarType.Byte,
        "BoolStorage" => ScalarType.Bool,
        _ => throw new InvalidDataException($"unsupported storage type '{name}'"),
    };

    private sealed record Global(string Module, string Name);
    private sealed record Opaque(string Kind);
    private sealed record StorageRef(string Key, ScalarType DType, long Offset);
    private sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride);

    /// <summary>The subset of the pickle virtual machine that <c>torch.save</c> output needs.</summary>
    private sealed class PickleMachine
    {
        private static readonly object Mark = new();
        private readonly BinaryReader r;
        private readonly List<object?> stack = new();
        private readonly Dictionary<long, object?> memo = new();

        public PickleMachine(BinaryReader reader) => r = reader;

        /// <summary>Storages met through persistent ids, by key (shared by the tensors that view them).</summary>
        public Dictionary<string, StorageRef> Storages { get; } = new(StringComparer.Ordinal);

        public object? Load()
        {
            while (true)
            {
                byte op = r.ReadByte();
                switch (op)
                {
                    case 0x80: r.ReadByte(); break; // PROTO
                    case 0x95: r.ReadUInt64(); break; // FRAME
                    case (byte)'.': return Pop(); // STOP
                    case (byte)'(': stack.Add(Mark); break;
                    case (byte)'0': Pop(); break;
                    case (byte)'1': PopToMark(); break;
                    case (byte)'2': stack.Add(stack[^1]); break;
                    case (byte)'N': stack.Add(null); break;
                    case 0x88: stack.Add(true); break;
                    case 0x89: stack.Add(false); break;
                    case (byte)'J': stack.Add(new BigInteger(r.ReadInt32())); break;
                    case (byte)'K': stack.Add(new BigInteger(r.ReadByte())); break;
                    case (byte)'M': stack.Add(new BigInteger(r.ReadUInt16())); break;
                    case 0x8A: stack.Add(new BigInteger(r.ReadBytes(r.ReadByte()), isUnsigned: false, isBigEndian: false)); break;
                    case 0x8B: stack.Add(new BigInteger(r.ReadBytes(checked((int)r.ReadUInt32())), isUnsigned: false, isBigEndian: false)); break;
                    case (byte)'I': stack.Add(ParseIntLine(ReadLine())); break;
                    case (byte)'G':
                        stack.Add(BinaryPrimitives.ReadDoubleBigEndian(r.ReadBytes(8)));
                        break;
                    case (byte)'X': stack.Add(Utf8(checked((int)r.ReadUInt32()))); break;
                    case 0x8C: stack.Add(Utf8(r.ReadByte())); break;
                    case 0x8D: stack.Add(Utf8(checked((int)r.ReadUInt64()))); break;
                    case (byte)'T': stack.Add(Latin1(checked((int)r.ReadUInt32()))); break;
                    case (byte)'U': stack.Add(Latin1(r.ReadByte())); break;
                    case (byte)'B': stack.Add(r.ReadBytes(checked((int)r.ReadUInt32()))); break;
                    case (byte)'C': stack.Add(r.ReadBytes(r.ReadByte())); break;
                    case (byte)'}': stack.Add(new Dictionary<object, object?>()); break;
                    case (byte)']': stack.Add(new List<object?>()); break;
                    case (byte)')': stack.Add(Array.Empty<object?>()); break;
                    case (byte)'d': stack.Add(ToDict(PopToMark())); break;
                    case (byte)'l': stack.Add(PopToMark()); break;
                    case (byte)'t': stack.Add(PopToMark().ToArray()); break;
                    case 0x85: stack.Add(new[] { Pop() }); break;
                    case 0x86: { var b = Pop(); var a = Pop(); stack.Add(new[] { a, b }); break; }
                    case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); stack.Add(new[] { a, b, c }); break; }
                    case (byte)'q': memo[r.ReadByte()] = stack[^1]; break;
                    case (byte)'r': memo[r.ReadUInt32()] = stack[^1]; break;
                    case (byte)'p': memo[long.Parse(ReadLine())] = stack[^1]; break;
                    case 0x94: memo[memo.Count] = stack[^1]; break;
                    case (byte)'h': stack.Add(Memo(r.ReadByte())); break;
                    case (byte)'j': stack.Add(Memo(r.ReadUInt32())); break;
                    case (byte)'g': stack.Add(Memo(long.Parse(ReadLine()))); break;
                    case (byte)'c': { var module = ReadLine(); stack.Add(new Global(module, ReadLine())); break; }
                    case 0x93: { var name = (string)Pop()!; stack.Add(new Global((string)Pop()!, name)); break; }
                    case (byte)'R': { var args = Pop(); stack.Add(Reduce(Pop(), args as object?[] ?? Array.Empty<object?>())); break; }
                    case 0x81: { Pop(); var cls = Pop(); stack.Add(new Opaque(cls is Global g ? $"{g.Module}.{g.Name}" : "object")); break; }
                    case (byte)'b': Pop(); break; // BUILD: attribute state (e.g. OrderedDict._metadata) is not needed
                    case (byte)'Q': stack.Add(PersistentLoad(Pop())); break;
                    case (byte)'s': { var value = Pop(); var key = Pop(); SetItem(stack[^1], key, value); break; }
                    case (byte)'u':
                    {
                        var items = PopToMark();
                        for (int i = 0; i + 1 < items.Count; i += 2) SetItem(stack[^1], items[i], items[i + 1]);
                        break;
                    }
                    case (byte)'a': { var value = Pop(); (stack[^1] as List<object?>)?.Add(value); break; }
                    case (byte)'e': { var items = PopToMark(); (stack[^1] as List<object?>)?.AddRange(items); break; }
                    default: throw new InvalidDataException($"unsupported pickle opcode 0x{op:X2}");
                }
            }
        }

        private object? Reduce(object? callable, object?[] args)
        {
            if (callable is not Global g) return new Opaque("call");
            switch ($"{g.Module}.{g.Name}")
            {
                case "collections.OrderedDict":
                    return new Dictionary<object, object?>();
                case "torch._utils._rebuild_tensor":
                case "torch._utils._rebuild_tensor_v2":
                    if (args.Length < 4 || args[0] is not StorageRef storage)
                        throw new InvalidDataException("tensor without a storage");
                    return new TensorRef(storage, ToLong(args[1]), ToLongs(args[2]), ToLongs(args[3]));
                case "torch._utils._rebuild_parameter":
                    return args.Length > 0 ? args[0] : null;
                default:
                    return new Opaque($"{g.Module}.{g.Name}");
            }
        }

        private StorageRef PersistentLoad(object? pid)
        {
            // ('storage', storage_type, key, location, numel, view_metadata)
            if (pid is not object?[] t || t.Length < 5 || t[0] as string != "storage" || t[1] is not Global type || t[2] is not string key)
                throw new InvalidDataException("unknown persistent id");
            var root = Storages.TryGetValue(key, out var known) ? known : new StorageRef(key, StorageType(type.Name), 0);
            Storages[key] = root;
            // Old files may store a view of a larger storage: (view_key, offset, size).
            if (t.Length > 5 && t[5] is object?[] view && view.Length >= 2)
                return root with { Offset = ToLong(view[1]) };
            return root;
        }

        private static void SetItem(object? target, object? key, object? value)
        {
            if (target is Dictionary<object, object?> d && key is not null) d[key] = value;
        }

        private static Dictionary<object, object?> ToDict(List<object?> items)
        {
            var d = new Dictionary<object, object?>();
            for (int i = 0; i + 1 < items.Count; i += 2)
                if (items[i] is { } k) d[k] = items[i + 1];
            return d;
        }

        private object? Pop()
        {
            if (stack.Count == 0) throw new InvalidDataException("pickle stack underflow");
            var top = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return top;
        }

        private List<object?> PopToMark()
        {
            int i = stack.LastIndexOf(Mark);
            if (i < 0) throw new InvalidDataException("pickle mark missing");
            var items = stack.GetRange(i + 1, stack.Count - i - 1);
            stack.RemoveRange(i, stack.Count - i);
            return items;
        }

        private object? Memo(long index) =>
            memo.TryGetValue(index, out var v) ? v : throw new InvalidDataException($"pickle memo {index} missing");

        private string Utf8(int length) => Encoding.UTF8.GetString(r.ReadBytes(length));
        private string Latin1(int length) => Encoding.Latin1.GetString(r.ReadBytes(length));

        private string ReadLine()
        {
            var sb = new StringBuilder();
            for (byte b = r.ReadByte(); b != (byte)'\n'; b = r.ReadByte()) sb.Append((char)b);
            return sb.ToString();
        }

        private static object ParseIntLine(string line) => line switch
        {
            "01" => true,
            "00" => false,
            _ => BigInteger.Parse(line),
        };

        private static long ToLong(object? o) => o is BigInteger b ? (long)b : throw new InvalidDataException("expected an integer");

        private static long[] ToLongs(object? o) =>
            o is object?[] items ? items.Select(ToLong).ToArray() : throw new InvalidDataException("expected a tuple of integers");
    }
}
