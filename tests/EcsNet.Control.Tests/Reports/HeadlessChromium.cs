using System.ComponentModel;
using System.Diagnostics;
using EcsNet.Testing;

namespace EcsNet.Control.Tests.Reports;

/// <summary>What a bounded process run left: its exit code (-1 when it was killed), output and errors.</summary>
internal sealed record ProcessResult(string Command, int Exit, string Out, string Err, bool TimedOut)
{
    public override string ToString() =>
        $"{Command}: {(TimedOut ? "killed after its timeout" : $"exit {Exit}")}\n--- stderr ---\n{Tail(Err)}\n--- stdout ---\n{Tail(Out)}";

    private static string Tail(string text) => text.Length <= 4000 ? text : "…" + text[^4000..];

    /// <summary>Runs <paramref name="file"/>, killing it and its children when it outlives <paramref name="timeout"/>.</summary>
    public static ProcessResult Run(string file, IReadOnlyList<string> args, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment = null)
    {
        var command = string.Join(' ', args.Prepend(file));
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (Win32Exception e)
        {
            return new ProcessResult(command, -1, "", $"could not start: {e.Message}", false);
        }
        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            bool exited = process.WaitForExit(timeout);
            if (!exited)
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                process.WaitForExit(10_000);
            }
            // the pipes close when the last child holding them ends; do not wait for that forever either
            Task.WaitAll(new Task[] { output, errors }, TimeSpan.FromSeconds(10));
            string Read(Task<string> t) => t.IsCompletedSuccessfully ? t.Result : "(still open)";
            return new ProcessResult(command, exited ? process.ExitCode : -1, Read(output), Read(errors), !exited);
        }
    }
}

/// <summary>
/// The Debian package <c>chromium</c> in headless mode: installed on first use when missing and this process is
/// root (<c>apt-get install -y chromium</c>, after <c>apt-get update</c> if that fails), else a failed test that says
/// to install it. Each render gets its own profile folder and HOME, and a timeout.
/// </summary>
internal static class HeadlessChromium
{
    public const string Binary = "/usr/bin/chromium";

    /// <summary>Installs Debian's chromium when missing (as root), else fails saying so.</summary>
    public static void Require() => DebianPackages.Require(Binary, "chromium");

    /// <summary>Loads <paramref name="page"/> (a file) with <paramref name="args"/> (e.g. --dump-dom) in a fresh profile under <paramref name="workDir"/>.</summary>
    public static ProcessResult Render(string page, string workDir, params string[] args)
    {
        Require();
        var home = Path.Combine(workDir, "chromium-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(home);
        var all = new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
            "--user-data-dir=" + Path.Combine(home, "profile"),
        }.Concat(args).Append(new Uri(Path.GetFullPath(page)).AbsoluteUri).ToList();
        return ProcessResult.Run(Binary, all, TimeSpan.FromSeconds(90), new Dictionary<string, string> { ["HOME"] = home });
    }
}
