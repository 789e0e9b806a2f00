using System.Diagnostics;

namespace EcsNet.Testing;

/// <summary>
/// Debian packages a test needs (a database server, a browser, another language's gRPC): installed with apt-get
/// when missing and the tests run as root (as in CI, where .ci/run installs them first); otherwise the test fails
/// saying which package to install. Never a silent skip.
/// </summary>
public static class DebianPackages
{
    private static readonly object Gate = new();

    /// <summary>Makes sure the file or folder <paramref name="probe"/> exists, installing <paramref name="packages"/> if it does not.</summary>
    public static void Require(string probe, params string[] packages) =>
        Require(() => File.Exists(probe) || Directory.Exists(probe), probe, packages);

    /// <summary>Makes sure <paramref name="present"/> holds (what it checks: <paramref name="what"/>), installing <paramref name="packages"/> if not.</summary>
    public static void Require(Func<bool> present, string what, params string[] packages)
    {
        var list = string.Join(" ", packages);
        lock (Gate)
        {
            if (present())
                return;
            if (!Environment.IsPrivilegedProcess)
                throw new InvalidOperationException($"{what} is missing: install the Debian package(s) {list} (apt-get install {list}); the tests install them only as root");
            var log = AptGet("install -y -q " + list);
            if (!present())
                log += AptGet("update -q") + AptGet("install -y -q " + list);
            if (!present())
                throw new InvalidOperationException($"{what} is still missing after apt-get install {list}:\n{string.Join('\n', log.Split('\n').TakeLast(15))}");
        }
    }

    private static string AptGet(string arguments)
    {
        var start = new ProcessStartInfo("apt-get", arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            p.Kill(entireProcessTree: true);
            return stdout + "\napt-get " + arguments + ": timed out after 10 minutes";
        }
        return stdout + stderr.Result;
    }
}
