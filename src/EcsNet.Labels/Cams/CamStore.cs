using System.Text.Json;
using EcsNet.Data;

namespace EcsNet.Labels.Cams;

/// <summary>
/// Saved CAMs, one pair of files per image: <c>&lt;id&gt;.npy</c> — NumPy float16 array [K, H, W] of the present
/// classes' maps (compact: absent classes are not stored; numpy.load reads it) — and <c>&lt;id&gt;.json</c>
/// with <c>{"classes": [...], "height": H, "width": W}</c> giving the VOC class index of each of the K maps.
/// <see cref="Read(string, string, IReadOnlySet{int}?)"/> also takes CAMs from other tools: an <c>&lt;id&gt;.npy</c>
/// float16/32/64 array [20, H, W] (channel c−1 = class c, normalised to [0, 1]) without a .json, for which
/// the image's classes must be given.
/// </summary>
public static class CamStore
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static void Write(string dir, string id, CamMaps cams)
    {
        Directory.CreateDirectory(dir);
        int n = cams.Height * cams.Width;
        var all = new float[cams.Classes.Count * n];
        for (int k = 0; k < cams.Classes.Count; k++)
            cams.Maps[k].AsSpan().CopyTo(all.AsSpan(k * n, n));
        NpyFile.WriteHalf(Path.Combine(dir, id + ".npy"), all, cams.Classes.Count, cams.Height, cams.Width);
        File.WriteAllText(Path.Combine(dir, id + ".json"),
            JsonSerializer.Serialize(new CamHeader(cams.Classes.ToArray(), cams.Height, cams.Width), Json));
    }

    /// <param name="classes">The image's classes, needed only for a 20-channel file without a .json.</param>
    public static CamMaps Read(string dir, string id, IReadOnlySet<int>? classes = null)
    {
        var npy = Path.Combine(dir, id + ".npy");
        var json = Path.Combine(dir, id + ".json");
        if (!File.Exists(npy)) throw new BadInputException(npy, "CAM file is missing");
        var array = NpyFile.Read(npy);
        if (!File.Exists(json))
        {
            if (classes is null)
                throw new BadInputException(json, "CAM class list is missing");
            if (array.Shape.Length != 3 || array.Shape[0] != VocClasses.Foreground)
                throw new BadInputException(npy, $"CAM shape ({string.Join(", ", array.Shape)}) is not (20, H, W) and there is no {id}.json class list");
            int plane = array.Shape[1] * array.Shape[2];
            var ordered = classes.Order().ToArray();
            return new CamMaps(array.Shape[1], array.Shape[2], ordered,
                ordered.Select(c => array.Data.AsSpan((c - 1) * plane, plane).ToArray()).ToArray());
        }
        CamHeader meta;
        try
        {
            meta = JsonSerializer.Deserialize<CamHeader>(File.ReadAllText(json), Json) ?? throw new InvalidDataException("empty");
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            throw new BadInputException(json, $"unreadable CAM class list ({e.Message})");
        }
        int k = meta.Classes.Length, n = meta.Height * meta.Width;
        if (array.Shape.Length != 3 || array.Shape[0] != k || array.Shape[1] != meta.Height || array.Shape[2] != meta.Width)
            throw new BadInputException(npy, $"shape ({string.Join(", ", array.Shape)}) does not match {json}: expected ({k}, {meta.Height}, {meta.Width})");
        var maps = new float[k][];
        for (int c = 0; c < k; c++)
            maps[c] = array.Data.AsSpan(c * n, n).ToArray();
        return new CamMaps(meta.Height, meta.Width, meta.Classes, maps);
    }

    private sealed record CamHeader(int[] Classes, int Height, int Width);
}
