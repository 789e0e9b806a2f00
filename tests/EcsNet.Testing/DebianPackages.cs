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

    /// <summary>Makes sure <paramref name="probe"/> exists, installing <paramref name="packages"/> if it does not.</summary>
    public static void Require(string probe, params string[] packages)
    {
        lock (Gate)
        {
            if (File.Exists(probe) || Directory.Exists(probe))
                return;
            if (Environment.UserName != "root")
                throw new InvalidOperationException($"{probe} is missing: install the Debian package(s) {string.Join(" ", packages)} (apt-get install {string.Join(" ", packages)})");
            var log = AptGet("install -y -q " + string.Join(" ", packages));
            if (!File.Exists(probe) && !Directory.Exists(probe))
                log += AptGet("update -q") + AptGet("install -y -q " + string.Join(" ", packages));
            if (!File.Exists(probe) && !Directory.Exists(probe))
                throw new InvalidOperationException($"{probe} is still missing after apt-get install {string.Join(" ", packages)}:\n{Tail(log)}");
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

    private static string Tail(string text) => string.Join('\n', text.Split('\n').TakeLast(15));
}
