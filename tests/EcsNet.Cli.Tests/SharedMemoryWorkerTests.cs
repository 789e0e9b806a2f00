using System.Diagnostics;
using System.Text;
using EcsNet.AllReduce.Rendezvous;

namespace EcsNet.Cli.Tests;

/// <summary>`ecsnet worker --transport shm`: real processes sharing memory, one of them killed.</summary>
[Collection(CliCollection.Name)]
public sealed class SharedMemoryWorkerTests
{
    [Fact]
    public async Task A_rank_killed_mid_collective_is_named_by_the_others_and_no_segment_is_left_behind()
    {
        var folder = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        string[] Segments() => Directory.GetFiles(folder, "ecsnet-*.shm");
        var before = Segments();
        await using var coordinator = await CoordinatorHost.StartAsync(new CoordinatorOptions { WorldSize = 3, LeaseTimeout = TimeSpan.FromSeconds(30) });
        // a benchmark that would run for hours: the ranks are inside shared-memory all-reduces when rank 2 dies
        var workers = Enumerable.Range(0, 3).Select(r => Child.Start("worker", "--coordinator", coordinator.Address, "--rank", r.ToString(), "--world", "3",
            "--transport", "shm", "--shm-slot-kib", "64", "--bench-sizes", "4", "--runs", "1000000", "--warmup", "0", "--peer-timeout", "120")).ToArray();
        try
        {
            var clock = Stopwatch.StartNew();
            while (coordinator.Status().Current?.WorldSize != 3)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the three workers did not form a generation: " + string.Join("\n", workers.Select(w => w.Log)));
                await Task.Delay(100);
            }
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.All(workers, w => Assert.False(w.Process.HasExited, w.Log));

            workers[2].Process.Kill();
            clock.Restart();
            foreach (var survivor in workers.Take(2))
            {
                // well before the 120 s peer timeout: the dead process is noticed, not waited out
                await survivor.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
                survivor.Process.WaitForExit();
                Assert.NotEqual(0, survivor.Process.ExitCode);
                Assert.Contains("rank 2", survivor.Log);
            }
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the survivors took {clock.Elapsed} to notice");
            Assert.Contains(coordinator.Status().Lost, l => l.Rank == 2);
        }
        finally
        {
            foreach (var w in workers)
                w.Dispose();
        }
        Assert.Empty(Segments().Except(before));
    }

    [Theory]
    [InlineData("--transport", "tcp")]
    [InlineData("--shm-slot-kib", "1")]
    public async Task Bad_data_plane_options_are_named(string option, string value)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await EcsNetCli.RunAsync(["bench", "allreduce", option, value], CliIo.ToWriters(output, error));
        Assert.Equal(EcsNetCli.ExitBadInput, code);
        Assert.StartsWith("error: " + option, error.ToString().Trim());
    }

    /// <summary>A child `ecsnet` (dotnet ecsnet.dll from the test's output folder) with its output kept.</summary>
    private sealed class Child : IDisposable
    {
        private readonly StringBuilder log = new();

        private Child(Process process) => Process = process;

        public Process Process { get; }

        public string Log { get { lock (log) return log.ToString(); } }

        public static Child Start(params string[] args)
        {
            var info = new ProcessStartInfo(Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ecsnet.dll"));
            foreach (var a in args)
                info.ArgumentList.Add(a);
            var child = new Child(new Process { StartInfo = info });
            child.Process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (child.log) child.log.AppendLine(e.Data); };
            child.Process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (child.log) child.log.AppendLine(e.Data); };
            child.Process.Start();
            child.Process.BeginOutputReadLine();
            child.Process.BeginErrorReadLine();
            return child;
        }

        public void Dispose()
        {
            try
            {
                if (!Process.HasExited)
                    Process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException) { }
            Process.Dispose();
        }
    }
}
