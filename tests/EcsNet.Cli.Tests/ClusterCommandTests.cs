using System.Text.Json;

namespace EcsNet.Cli.Tests;

/// <summary>`ecsnet coordinator|worker|bench allreduce|bench dataparallel`: real child processes on 127.0.0.1.</summary>
/// <remarks>
/// In the serial CLI collection: `bench dataparallel` seeds torch's process-wide generator for its in-process
/// reference, which in-process `train-cam` runs of other classes re-seed every step.
/// </remarks>
[Collection(CliCollection.Name)]
public sealed class ClusterCommandTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await EcsNetCli.RunAsync(args, CliIo.ToWriters(output, error)).WaitAsync(TimeSpan.FromMinutes(5));
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Bench_allreduce_runs_worker_processes_and_reports_bus_bandwidth()
    {
        var (code, stdout, stderr) = await Run("bench", "allreduce", "--world", "2", "--sizes", "1,2", "--runs", "1", "--warmup", "0", "--settle-mib", "2", "--json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal(2, json.RootElement.GetProperty("world").GetInt32());
        var sizes = json.RootElement.GetProperty("sizes").EnumerateArray().ToArray();
        Assert.Equal(new[] { 1, 2 }, sizes.Select(s => s.GetProperty("mib").GetInt32()));
        Assert.All(sizes, s =>
        {
            Assert.True(s.GetProperty("ok").GetBoolean());
            Assert.True(s.GetProperty("busbw_gbps").GetDouble() > 0);
            Assert.True(s.GetProperty("cpu_s_per_gb").GetDouble() > 0);
            Assert.Equal(64 / s.GetProperty("mib").GetInt32(), s.GetProperty("iters").GetInt32()); // max(1, min(101, 64/MiB))
        });
    }

    [Fact]
    public async Task Bench_reform_kills_a_rank_and_times_the_survivors_ring()
    {
        var (code, stdout, stderr) = await Run("bench", "reform", "--world", "3", "--kill-rank", "1", "--transport", "grpc", "--json");
        Assert.True(code == 0, stderr + stdout);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal(3, json.RootElement.GetProperty("world").GetInt32());
        Assert.Equal(2, json.RootElement.GetProperty("survivors").GetInt32());
        Assert.InRange(json.RootElement.GetProperty("reform_s").GetDouble(), 0, 60);
        Assert.Contains("watch stream closed", json.RootElement.GetProperty("lost_reason").GetString());
    }

    [Fact]
    public async Task Bench_allreduce_over_shared_memory_and_grpc_agree_and_say_which()
    {
        foreach (var (transport, plan) in new[] { ("shm", "shared memory"), ("grpc", "gRPC ring") })
        {
            var (code, stdout, stderr) = await Run("bench", "allreduce", "--world", "3", "--sizes", "1", "--runs", "1", "--warmup", "0", "--settle-mib", "1",
                "--transport", transport, "--json");
            Assert.True(code == 0, stderr);
            using var json = JsonDocument.Parse(stdout);
            Assert.Contains(plan, json.RootElement.GetProperty("transport").GetString());
            var size = json.RootElement.GetProperty("sizes")[0];
            Assert.True(size.GetProperty("ok").GetBoolean());
            Assert.True(size.GetProperty("tiny_us").GetDouble() > 0);
        }
    }

    [Fact]
    public async Task Bench_dataparallel_matches_single_process_training()
    {
        var (code, stdout, stderr) = await Run("bench", "dataparallel", "--world", "2", "--steps", "3", "--overlap-steps", "0", "--json");
        Assert.True(code == 0, stderr + stdout);
        using var json = JsonDocument.Parse(stdout);
        Assert.InRange(json.RootElement.GetProperty("max_abs_weight_diff").GetDouble(), 0, 1e-5);
    }

    [Theory]
    [InlineData("--sizes", new[] { "bench", "allreduce", "--sizes", "1,x" })]
    [InlineData("--sizes", new[] { "bench", "allreduce", "--sizes", "0" })]
    [InlineData("--world", new[] { "bench", "allreduce", "--world", "0" })]
    [InlineData("--chunk-kib", new[] { "bench", "allreduce", "--chunk-kib", "0" })]
    [InlineData("--world", new[] { "bench", "dataparallel", "--world", "5" })]
    [InlineData("--coordinator", new[] { "worker", "--coordinator", "ftp://127.0.0.1:1" })]
    [InlineData("--device", new[] { "worker", "--coordinator", "http://127.0.0.1:1", "--device", "gpu0" })]
    [InlineData("--bind", new[] { "worker", "--coordinator", "http://127.0.0.1:1", "--bind", "localhost.example" })]
    [InlineData("--listen", new[] { "coordinator", "--listen", "example.org:80" })]
    [InlineData("coordinator", new[] { "coordinator", "--listen", "127.0.0.1:0", "--world", "0" })]
    public async Task Bad_options_give_one_clear_line_and_exit_2(string named, string[] args)
    {
        var (code, _, stderr) = await Run(args);
        Assert.Equal(EcsNetCli.ExitBadInput, code);
        Assert.StartsWith("error: " + named, stderr.Trim());
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Theory]
    [InlineData("coordinator", "--listen")]
    [InlineData("worker", "--coordinator")]
    public async Task Verbs_have_help(string verb, string option)
    {
        var (code, stdout, _) = await Run(verb, "--help");
        Assert.Equal(0, code);
        Assert.Contains(option, stdout);
    }

    [Fact]
    public async Task Bench_verbs_have_help()
    {
        var (code, stdout, _) = await Run("bench", "allreduce", "--help");
        Assert.Equal(0, code);
        Assert.Contains("--sizes", stdout);
        Assert.Contains("--fp16", stdout);
    }
}
