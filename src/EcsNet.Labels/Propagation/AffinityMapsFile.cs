using System.IO.Compression;
using EcsNet.Data;

namespace EcsNet.Labels.Propagation;

/// <summary>
/// The la/ha maps of one image on disk: a NumPy <c>.npz</c> (an uncompressed zip; <c>numpy.load</c> reads it)
/// holding <c>la.npy</c> and <c>ha.npy</c>, float32 <c>[K, H, W]</c>, and <c>classes.npy</c>, uint8 <c>[K]</c>
/// (channel 0 background, then the image's VOC classes).
/// <para>
/// float32, not float16: the maps are read back bit for bit, so AffinityNet trains on exactly the numbers the
/// CRF produced — the same numbers whether the maps were computed in process or on another node, and the same
/// as before the maps were written to disk at all. PSA stores these maps as float32 too (infer_cls.py saves the
/// pydensecrf output dicts with <c>np.save</c>). float16 would halve the disk (4.5 MB → 2.25 MB for a
/// 500×375 image with two classes, about 48 → 24 GB for VOC's 10,582 train_aug images) but round every score
/// to about three significant digits, so training would no longer see the numbers it sees today.
/// </para>
/// One file per image, written atomically, so a reader never sees half of it.
/// </summary>
public static class AffinityMapsFile
{
    public const string Extension = ".npz";

    private const string LaEntry = "la.npy";
    private const string HaEntry = "ha.npy";
    private const string ClassesEntry = "classes.npy";

    public static void Write(string path, AffinityScoreMaps maps)
    {
        int k = maps.Classes.Count, n = maps.Width * maps.Height;
        if (k < 1 || maps.La.Length != k * n || maps.Ha.Length != k * n)
            throw new ArgumentException($"maps hold {maps.La.Length} and {maps.Ha.Length} values, expected {k} x {maps.Height}x{maps.Width}");
        var classes = new byte[k];
        for (int c = 0; c < k; c++)
            classes[c] = checked((byte)maps.Classes[c]);
        AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            Entry(zip, LaEntry, s => NpyFile.Write(s, maps.La, k, maps.Height, maps.Width));
            Entry(zip, HaEntry, s => NpyFile.Write(s, maps.Ha, k, maps.Height, maps.Width));
            Entry(zip, ClassesEntry, s => NpyFile.Write(s, classes, k));
        });
    }

    /// <summary>Reads a file written by <see cref="Write"/>; any defect is a <see cref="BadInputException"/> naming the file.</summary>
    public static AffinityScoreMaps Read(string path)
    {
        if (!File.Exists(path))
            throw new BadInputException(path, "affinity maps file is missing");
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var la = Array(zip, path, LaEntry);
            var ha = Array(zip, path, HaEntry);
            var classes = Array(zip, path, ClassesEntry);
            if (la.Shape.Length != 3 || !la.Shape.SequenceEqual(ha.Shape) || classes.Shape.Length != 1 || classes.Shape[0] != la.Shape[0])
                throw new BadInputException(path, $"la ({string.Join(", ", la.Shape)}), ha ({string.Join(", ", ha.Shape)}) and classes ({string.Join(", ", classes.Shape)}) do not agree");
            return new AffinityScoreMaps(la.Shape[2], la.Shape[1], classes.Data.Select(c => (int)c).ToArray(), la.Data, ha.Data);
        }
        catch (InvalidDataException e)
        {
            throw new BadInputException(path, $"not an affinity maps .npz ({e.Message})", e);
        }
        catch (IOException e)
        {
            throw new BadInputException(path, $"cannot read the affinity maps ({e.Message})", e);
        }
    }

    /// <summary>
    /// The time stamped on every entry: a fixed one, not the clock's, so that the same maps make the same bytes
    /// whenever and wherever they are written (a job run twice, on two nodes, writes one file).
    /// </summary>
    internal static readonly DateTimeOffset EntryTime = new(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static void Entry(ZipArchive zip, string name, Action<Stream> write)
    {
        var entry = zip.CreateEntry(name, CompressionLevel.NoCompression);
        entry.LastWriteTime = EntryTime;
        using var stream = entry.Open();
        write(stream);
    }

    private static NpyArray Array(ZipArchive zip, string path, string name)
    {
        var entry = zip.GetEntry(name) ?? throw new BadInputException(path, $"has no {name}");
        using var stream = entry.Open();
        using var bytes = new MemoryStream();
        stream.CopyTo(bytes);
        return NpyFile.Parse(bytes.GetBuffer().AsSpan(0, (int)bytes.Length), $"{path}:{name}");
    }
}
