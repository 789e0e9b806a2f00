using System.Text;
using System.Text.Json;
using EcsNet.Data;

namespace EcsNet.Core;

/// <summary>
/// Saved CAMs, one pair of files per image: <c>&lt;id&gt;.npy</c> — NumPy float16 array [K, H, W] of the present
/// classes' maps (compact: absent classes are not stored; numpy.load reads it) — and <c>&lt;id&gt;.json</c>
/// with <c>{"classes": [...], "height": H, "width": W}</c> giving the VOC class index of each of the K maps.
/// </summary>
public static class CamStore
{
    public static void Write(string dir, string id, CamMaps cams)
    {
        Directory.CreateDirectory(dir);
        int k = cams.Classes.Count, n = cams.Height * cams.Width;
        var header = $"{{'descr': '<f2', 'fortran_order': False, 'shape': ({k}, {cams.Height}, {cams.Width}), }}";
        int total = 10 + header.Length + 1;
        int pad = (64 - total % 64) % 64;
        header = header + new string(' ', pad) + "\n";
        var npy = Path.Combine(dir, id + ".npy");
        using (var fs = File.Create(npy))
        using (var w = new BinaryWriter(fs))
        {
            w.Write(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 });
            w.Write((ushort)header.Length);
            w.Write(Encoding.ASCII.GetBytes(header));
            var buf = new byte[n * 2];
            for (int c = 0; c < k; c++)
            {
                var map = cams.Maps[c];
                for (int i = 0; i < n; i++)
                    BitConverter.TryWriteBytes(buf.AsSpan(i * 2), (Half)map[i]);
                w.Write(buf);
            }
        }
        File.WriteAllText(Path.Combine(dir, id + ".json"),
            JsonSerializer.Serialize(new CamHeader(cams.Classes.ToArray(), cams.Height, cams.Width), Json));
    }

    public static CamMaps Read(string dir, string id)
    {
        var npy = Path.Combine(dir, id + ".npy");
        var json = Path.Combine(dir, id + ".json");
        if (!File.Exists(npy)) throw new BadInputException(npy, "CAM file is missing");
        if (!File.Exists(json)) throw new BadInputException(json, "CAM class list is missing");
        CamHeader meta;
        try
        {
            meta = JsonSerializer.Deserialize<CamHeader>(File.ReadAllText(json), Json) ?? throw new InvalidDataException("empty");
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            throw new BadInputException(json, $"unreadable CAM class list ({e.Message})");
        }
        var bytes = File.ReadAllBytes(npy);
        if (bytes.Length < 10 || bytes[0] != 0x93 || bytes[1] != (byte)'N')
            throw new BadInputException(npy, "not a NumPy .npy file");
        int headerLen = BitConverter.ToUInt16(bytes, 8);
        var header = Encoding.ASCII.GetString(bytes, 10, headerLen);
        int k = meta.Classes.Length, n = meta.Height * meta.Width;
        bool half = header.Contains("'<f2'");
        bool single = header.Contains("'<f4'");
        if (!half && !single)
            throw new BadInputException(npy, $"expected float16 or float32 data, header says {header.Trim()}");
        if (!header.Contains($"({k}, {meta.Height}, {meta.Width})"))
            throw new BadInputException(npy, $"shape does not match {json}: expected ({k}, {meta.Height}, {meta.Width}), header says {header.Trim()}");
        int offset = 10 + headerLen, width = half ? 2 : 4;
        if (bytes.Length < offset + (long)k * n * width)
            throw new BadInputException(npy, "file is truncated");
        var maps = new float[k][];
        for (int c = 0; c < k; c++)
        {
            var m = maps[c] = new float[n];
            int baseOff = offset + c * n * width;
            for (int i = 0; i < n; i++)
                m[i] = half ? (float)BitConverter.ToHalf(bytes, baseOff + i * 2) : BitConverter.ToSingle(bytes, baseOff + i * 4);
        }
        return new CamMaps(meta.Height, meta.Width, meta.Classes, maps);
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private sealed record CamHeader(int[] Classes, int Height, int Width);
}
