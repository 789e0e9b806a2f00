using System.Diagnostics;
using System.Text.Json;
using EcsNet.Testing;

namespace EcsNet.Host.Tests.Control;

/// <summary>The control API from a client not written here: Python's grpcio (Debian's python3-grpcio) with stubs compiled from control.proto.</summary>
[Collection(ControlCollection.Name)]
public sealed class PythonClientTests
{
    private const string Python = "/usr/bin/python3";

    [Fact]
    public async Task A_python_grpcio_client_submits_watches_and_stops_a_run_with_the_token()
    {
        DebianPackages.Require("/usr/lib/python3/dist-packages/grpc_tools/protoc.py", "python3-grpcio", "python3-grpc-tools");
        using var dir = new TempDir();
        await using var host = await ControlHost.StartAsync(dir.File("runs"));
        var protos = Path.Combine(RepoRoot(), "protos");
        var start = new ProcessStartInfo(Python)
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "Control", "python_client.py"), protos, host.Endpoints.ControlUrl.Replace("http://", "") },
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        start.Environment["ECSNET_TOKEN"] = ControlHost.Token;
        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        try
        {
            await p.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"the Python client did not finish in 4 minutes:\n{await stdout}\n{await stderr}");
        }
        Assert.True(p.ExitCode == 0, $"python exited {p.ExitCode}:\n{await stdout}\n{await stderr}");
        var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        string Event(int i) => lines[i].GetProperty("event").GetString()!;
        Assert.Equal(new[] { "refused", "submitted", "step", "stop", "ended" }, lines.Select((_, i) => Event(i)));
        Assert.Equal("UNAUTHENTICATED", lines[0].GetProperty("code").GetString());
        Assert.StartsWith("from-python-", lines[1].GetProperty("run").GetString());
        Assert.True(lines[2].GetProperty("step").GetInt32() >= 1);
        Assert.Equal("RUN_STATE_STOPPED", lines[4].GetProperty("state").GetString());
        Assert.True(lines[4].GetProperty("step").GetInt32() < 100, "the run was stopped before its last step");
    }

    private static string RepoRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "EcsNet.Cluster.sln")))
            d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("the repository root (EcsNet.Cluster.sln) is not above the test's folder");
    }
}
