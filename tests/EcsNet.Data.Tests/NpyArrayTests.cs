using System.Text;

namespace EcsNet.Data.Tests;

public class NpyArrayTests
{
    [Fact]
    public void WriteThenReadRoundTripsShapeAndValues()
    {
        var path = Path.Combine(Path.GetTempPath(), $"npy-{Guid.NewGuid():N}.npy");
        try
        {
            var a = new NpyArray(new long[] { 2, 3 }, new float[] { 1, -2.5f, 3, float.MaxValue, 0, 1e-7f });
            a.Write(path);
            var bytes = File.ReadAllBytes(path);
            // numpy's layout: magic, version 1.0, little-endian header length, header padded to 64 bytes
            Assert.Equal(0x93, bytes[0]);
            Assert.Equal("NUMPY", Encoding.ASCII.GetString(bytes, 1, 5));
            int headerEnd = 10 + BitConverter.ToUInt16(bytes, 8);
            Assert.Equal(0, headerEnd % 64);
            Assert.Contains("'shape': (2, 3)", Encoding.ASCII.GetString(bytes, 10, headerEnd - 10));
            Assert.Equal(headerEnd + 6 * 4, bytes.Length);
            var b = NpyArray.Read(path);
            Assert.Equal(a.Shape, b.Shape);
            Assert.Equal(a.Data, b.Data);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ReadsFloat64AndOneDimensionalShapes()
    {
        var path = Path.Combine(Path.GetTempPath(), $"npy-{Guid.NewGuid():N}.npy");
        try
        {
            // hand-built float64 file as np.save writes it: shape (3,)
            string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
            string header = dict + new string(' ', 128 - 10 - dict.Length - 1) + "\n";
            using (var s = File.Create(path))
            {
                s.Write(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 });
                s.Write(BitConverter.GetBytes((ushort)header.Length));
                s.Write(Encoding.ASCII.GetBytes(header));
                foreach (var v in new[] { 0.5, -1.25, 3.0 })
                    s.Write(BitConverter.GetBytes(v));
            }
            var a = NpyArray.Read(path);
            Assert.Equal(new long[] { 3 }, a.Shape);
            Assert.Equal(new float[] { 0.5f, -1.25f, 3f }, a.Data);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void BadFilesNameThePathAndTheProblem()
    {
        var path = Path.Combine(Path.GetTempPath(), $"npy-{Guid.NewGuid():N}.npy");
        try
        {
            File.WriteAllText(path, "not numpy at all");
            var e = Assert.Throws<BadInputException>(() => NpyArray.Read(path));
            Assert.Equal(path, e.Subject);
            Assert.Contains("magic", e.Problem);

            new NpyArray(new long[] { 4 }, new float[] { 1, 2, 3, 4 }).Write(path);
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..^4]);
            e = Assert.Throws<BadInputException>(() => NpyArray.Read(path));
            Assert.Contains("needs 16", e.Problem);

            e = Assert.Throws<BadInputException>(() => NpyArray.Read(path + ".missing"));
            Assert.Contains("cannot read", e.Problem);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
