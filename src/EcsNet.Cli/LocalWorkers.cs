using System.Diagnostics;
using System.Text;

namespace EcsNet.Cli;

/// <summary>
/// Child `ecsnet` processes on this machine (for `bench allreduce`, `bench dataparallel`, `train-cam --workers`): the same
/// executable when running as the `ecsnet` app host, otherwise `dotnet ecsnet.dll` next to this assembly.
/// Output is captured; every child is killed (by its own handle) if the run fails or is cancelled.
/// </summary>
internal sealed class LocalWorkers : IDisposable
{
    private readonly List<(Process Process, StringBuilder Out, StringBuilder Err)> children = new();

    public static (string FileName, string[] Prefix) Executable()
    {
        var path = Environment.ProcessPath;
        if (path is not null && Path.GetFileNameWithoutExtension(path) == "ecsnet")
            return (path, Array.Empty<string>());
        var dll = Path.Combine(AppContext.BaseDirectory, "ecsnet.dll");
        if (!File.Exists(dll))
            dll = typeof(LocalWorkers).Assembly.Location;
        var dotnet = path is not null && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";
        return (dotnet, new[] { dll });
    }

    /// <param name="onOutputLine">Called with each stdout line as it arrives (on a pool thread), besides capturing it.</param>
    public void Start(IEnumerable<string> arguments, Action<string>? onOutputLine = null)
    {
        var (file, prefix) = Executable();
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in prefix.Concat(arguments))
            info.ArgumentList.Add(a);
        var process = new Process { StartInfo = info };
        var output = new StringBuilder();
        var error = new StringBuilder();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
                return;
            lock (output) output.AppendLine(e.Data);
            onOutputLine?.Invoke(e.Data);
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (error) error.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        children.Add((process, output, error));
    }

    public int Count => children.Count;

    /// <summary>Waits for every child; false if the time ran out (they are then killed).</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await Task.WhenAll(children.Select(c => c.Process.WaitForExitAsync(limit.Token)));
            foreach (var c in children)
                c.Process.WaitForExit(); // flushes the redirected output
            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            KillAll();
            return false;
        }
    }

    /// <summary>Completes when child <paramref name="i"/> has exited and its output is flushed.</summary>
    public async Task WaitForExitAsync(int i, CancellationToken cancellationToken)
    {
        await children[i].Process.WaitForExitAsync(cancellationToken);
        children[i].Process.WaitForExit();
    }

    public bool HasExited(int i) => children[i].Process.HasExited;

    public int Pid(int i) => children[i].Process.Id;

    /// <summary>Sends a POSIX signal to child <paramref name="i"/> (KILL: a crash; STOP: a frozen process that keeps its connections open).</summary>
    public void Signal(int i, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-" + signal, Pid(i).ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false })!;
        kill.WaitForExit();
        if (kill.ExitCode != 0)
            throw new InvalidOperationException($"kill -{signal} {Pid(i)} failed with exit code {kill.ExitCode}");
    }

    public int ExitCode(int i) => children[i].Process.HasExited ? children[i].Process.ExitCode : -1;

    public string Output(int i) { lock (children[i].Out) return children[i].Out.ToString(); }

    public string Error(int i) { lock (children[i].Err) return children[i].Err.ToString(); }

    /// <summary>Kills every child still running (by its own handle).</summary>
    public void KillAll()
    {
        foreach (var (process, _, _) in children)
            try
            {
                if (!process.HasExited)
                    process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException) { }
    }

    public void Dispose()
    {
        KillAll();
        foreach (var (process, _, _) in children)
            process.Dispose();
    }
}
