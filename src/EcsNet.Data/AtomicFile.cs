namespace EcsNet.Data;

/// <summary>
/// Writes a file so that readers see either no file or the whole new one: the bytes go to a temporary file
/// in the same folder, which is flushed to disk and then renamed over the target (rename within one file
/// system is atomic on POSIX, <c>rename(2)</c>). Two writers of the same bytes — a job redelivered after its
/// first node was lost while that node's write was still under way — therefore leave one complete file, never
/// a torn one. A write that fails removes its temporary file.
/// </summary>
public static class AtomicFile
{
    /// <summary>Suffix of the temporary files (hidden files named <c>.&lt;name&gt;.&lt;guid&gt;.tmp</c>); stage manifests skip them.</summary>
    public const string TempSuffix = ".tmp";

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically, creating its folder.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, stream => stream.Write(bytes));

    /// <summary>Lets <paramref name="write"/> fill a temporary file, then renames it to <paramref name="path"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        // A unique name per writer: concurrent writers of one target never share a temporary file.
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            Directory.CreateDirectory(dir);
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new BadInputException(full, $"cannot write the file ({e.Message})", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static void TryDelete(string temp)
    {
        try
        {
            File.Delete(temp);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // the original failure is the one to report
        }
    }
}
