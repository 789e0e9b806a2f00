using System.Security.Cryptography;
using System.Text;

namespace EcsNet.AllReduce.SharedMemory;

/// <summary>
/// Which ranks can share memory: the same machine (host name and boot id) and the same shared-memory mount.
/// Two containers on one node have different host names or different <c>/dev/shm</c> mounts (unless they
/// share the host's IPC namespace), so they get different ids and talk over gRPC, which is what they can do.
/// Operators may set the id themselves (<c>--host-id</c>, e.g. the Kubernetes node name for pods with a
/// shared <c>/dev/shm</c>).
/// </summary>
public static class HostIdentity
{
    private static readonly Lazy<string> Cached = new(Compute);

    /// <summary>This process's host id: <c>name/hash</c>, the hash over the boot id and the shared-memory mount.</summary>
    public static string Current => Cached.Value;

    private static string Compute()
    {
        var name = Environment.MachineName;
        var boot = ReadOrEmpty("/proc/sys/kernel/random/boot_id").Trim();
        var mount = ShmMount();
        if (boot.Length == 0 && mount.Length == 0)
            return name;
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{boot}|{mount}"));
        return $"{name}/{Convert.ToHexStringLower(hash.AsSpan(0, 6))}";
    }

    /// <summary>
    /// The device number of the mount that holds <see cref="SharedMemorySegment.Folder"/>, from
    /// /proc/self/mountinfo (the last entry for that mount point is the visible one); empty when unknown.
    /// </summary>
    private static string ShmMount()
    {
        var folder = SharedMemorySegment.Folder.TrimEnd('/');
        var found = "";
        foreach (var line in ReadOrEmpty("/proc/self/mountinfo").Split('\n'))
        {
            // fields: mount id, parent id, major:minor, root, mount point, ...
            var fields = line.Split(' ');
            if (fields.Length > 4 && fields[4] == folder)
                found = fields[2];
        }
        return found;
    }

    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : "";
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }
}
