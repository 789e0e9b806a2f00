
namespace EcsNet.Data.Tests;

public sealed class NpyFileTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), "ecsnet-npy-" + Guid.NewGuid().ToString("N"));

    public NpyFileTests() => Directory.CreateDirectory(dir);

    public void Dispose()
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void FloatAndByteArraysRoundTrip()
    {
        string f = Path.Combine(dir, "f.npy"), b = Path.Combine(dir, "b.npy");
        var values = new[] { 0f, -1.5f, 3.25f, float.MaxValue, 1e-7f, 2f };
        NpyFile.Write(f, values, 2, 3);
        NpyFile.Write(b, new byte[] { 0, 7, 255 }, 3);
        var rf = NpyFile.Read(f);
        var rb = NpyFile.Read(b);
        Assert.Equal(new[] { 2, 3 }, rf.Shape);
        Assert.Equal(values, rf.Data);
        Assert.Equal(new[] { 3 }, rb.Shape);
        Assert.Equal(new[] { 0f, 7f, 255f }, rb.Data);
        // The header is padded so that the data starts on a 64-byte boundary, as numpy writes it.
        Assert.Equal(0, (new FileInfo(f).Length - 6 * 4) % 64);
    }

    [Fact]
    public void Float64IsReadAsFloat32()
    {
        // A numpy-written header: np.save of np.array([[1.5, -2.0]]) (float64).
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }";
        header = header.PadRight(64 - 10 - 1) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0 };
        bytes.AddRange(System.Text.Encoding.ASCII.GetBytes(header));
        bytes.AddRange(BitConverter.GetBytes(1.5));
        bytes.AddRange(BitConverter.GetBytes(-2.0));
        var array = NpyFile.Parse(bytes.ToArray(), "x.npy");
        Assert.Equal(new[] { 1, 2 }, array.Shape);
        Assert.Equal(new[] { 1.5f, -2f }, array.Data);
    }

    [Fact]
    public void BadFilesNameTheFileAndTheProblem()
    {
        string path = Path.Combine(dir, "bad.npy");
        File.WriteAllText(path, "not numpy at all");
        var e = Assert.Throws<BadInputException>(() => NpyFile.Read(path));
        Assert.Equal($"{path}: not a .npy file (bad magic)", e.Message);

        NpyFile.Write(path, new float[6], 2, 3);
        var bytes = File.ReadAllBytes(path);
        e = Assert.Throws<BadInputException>(() => NpyFile.Parse(bytes.AsSpan(0, bytes.Length - 4), "cut.npy"));
        Assert.Contains("cut.npy: holds 20 data bytes", e.Message);

        var text = System.Text.Encoding.Latin1.GetString(bytes).Replace("<f4", "<i8");
        e = Assert.Throws<BadInputException>(() => NpyFile.Parse(System.Text.Encoding.Latin1.GetBytes(text), "int.npy"));
        Assert.Contains("unsupported dtype '<i8'", e.Message);

        e = Assert.Throws<BadInputException>(() => NpyFile.Read(Path.Combine(dir, "missing.npy")));
        Assert.Contains("cannot read .npy file", e.Message);
    }
}
