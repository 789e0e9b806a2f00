using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using EcsNet.Cli;

namespace EcsNet.Cluster.Tests;

/// <summary>
/// A child `ecsnet node` process on 127.0.0.1 (`dotnet ecsnet.dll` from this test's output folder, as the CLI's
/// own child workers run). Its output is kept for failure messages; it is killed on dispose.
/// </summary>
internal sealed partial class NodeProcess : IDisposable
{
    private readonly Process process;
    private readonly StringBuilder log = new();
    private readonly TaskCompletionSource<string> started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private NodeProcess(IEnumerable<string> args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "ecsnet.dll");
        var info = new ProcessStartInfo(Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var a in args)
            info.ArgumentList.Add(a);
        process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _ = process.WaitForExitAsync().ContinueWith(_ => started.TrySetException(new InvalidOperationException($"node exited with {process.ExitCode}:\n{Log}")),
            TaskScheduler.Default);
    }

    /// <summary>The node's Akka address, once started.</summary>
    public string Address { get; private set; } = "";

    public int Pid => process.Id;

    public bool HasExited => process.HasExited;

    public string Log
    {
        get { lock (log) return log.ToString(); }
    }

    /// <summary>Starts `ecsnet node` with these arguments and waits for its "node started" line.</summary>
    public static async Task<NodeProcess> StartAsync(params string[] args)
    {
        var node = new NodeProcess(new[] { "node" }.Concat(args));
        try
        {
            node.Address = await node.started.Task.WaitAsync(TimeSpan.FromSeconds(90));
            return node;
        }
        catch
        {
            node.Dispose();
            throw;
        }
    }

    /// <summary>
    /// SIGKILL: no graceful leave, no flushing; as a crashed machine. It does not wait for the process to end (a
    /// caller on an actor's thread must not block); <see cref="WaitForExitAsync"/> does.
    /// </summary>
    public void Kill() => process.Kill();

    /// <summary>SIGTERM, as a service manager or Kubernetes stops a process.</summary>
    public void Terminate()
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-TERM {Pid}") { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    /// <summary>The exit code, once the process has ended and its output is read.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        await process.WaitForExitAsync().WaitAsync(timeout);
        process.WaitForExit();
        return process.ExitCode;
    }

    /// <summary>Shared libraries the process has mapped (/proc/PID/maps), one path each.</summary>
    public IReadOnlyList<string> MappedLibraries() =>
        File.ReadAllLines($"/proc/{Pid}/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6 && f[5].Contains(".so", StringComparison.Ordinal)).Select(f => f[5]).Distinct().ToList();

    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
        }
        process.Dispose();
    }

    private void Line(string? line)
    {
        if (line is null)
            return;
        lock (log) log.AppendLine(line);
        if (line.StartsWith(NodeCommand.StartedPrefix, StringComparison.Ordinal) && StartedLine().Match(line) is { Success: true } m)
            started.TrySetResult(m.Groups[1].Value);
    }

    [GeneratedRegex(@"^node started: (\S+) ")]
    private static partial Regex StartedLine();
}
