using EcsNet.Testing;

namespace EcsNet.Data.Tests;

public sealed class AtomicFileTests
{
    [Fact]
    public void WritesTheBytesAndLeavesNoTemporaryFile()
    {
        using var dir = new TempDir();
        var path = dir.File("sub/a.bin");
        AtomicFile.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        AtomicFile.WriteAllBytes(path, new byte[] { 4, 5 });
        Assert.Equal(new byte[] { 4, 5 }, File.ReadAllBytes(path));
        Assert.Equal(new[] { "a.bin" }, Directory.GetFiles(dir.File("sub")).Select(Path.GetFileName));
    }

    [Fact]
    public void AFailedWriteKeepsTheOldFileAndRemovesItsTemporaryFile()
    {
        using var dir = new TempDir();
        var path = dir.File("a.bin");
        AtomicFile.WriteAllBytes(path, new byte[] { 1 });
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[] { 9, 9, 9 });
            throw new InvalidOperationException("encoder failed");
        }));
        Assert.Equal(new byte[] { 1 }, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void ConcurrentWritersOfOneTargetLeaveOneWholeFile()
    {
        // Two nodes finishing the same (redelivered) job at once: each writes its own temporary file and the
        // renames replace each other, so the target is always one writer's complete bytes.
        using var dir = new TempDir();
        var path = dir.File("label.png");
        var payload = Enumerable.Range(0, 1 << 16).Select(i => (byte)i).ToArray();
        Parallel.For(0, 16, _ => AtomicFile.WriteAllBytes(path, payload));
        Assert.Equal(payload, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void AnUnwritableFolderIsBadInputNamingTheFile()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("not-a-folder"), "x");
        var e = Assert.Throws<BadInputException>(() => AtomicFile.WriteAllBytes(dir.File("not-a-folder/a.bin"), new byte[] { 1 }));
        Assert.Contains("not-a-folder", e.Subject);
    }

    [Fact]
    public void ImageCodecWritesLabelsAtomically()
    {
        using var dir = new TempDir();
        var path = dir.File("l.png");
        var mask = new LabelMask(3, 2, new byte[] { 0, 1, 2, 3, 4, 255 });
        ImageCodec.WriteLabelPng(path, mask);
        Assert.Equal(ImageCodec.EncodeLabelPng(mask), File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }
}
