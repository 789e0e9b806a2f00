using System.Text.Json;

namespace EcsNet.Cli.Tests;

/// <summary>`bench cluster` runs end to end and reports its figures (their values are for docs/BENCHMARKS.md, not asserted).</summary>
[Collection(CliCollection.Name)]
public sealed class BenchClusterCommandTests
{
    [Fact]
    public async Task Bench_cluster_reports_the_step_overhead_and_the_sharded_crf_cpu()
    {
        var r = await Ecsnet.Run("bench", "cluster", "--parts", "overhead,crf", "--steps", "10", "--rounds", "1", "--images", "4", "--json")
            .WaitAsync(TimeSpan.FromMinutes(5));
        Assert.True(r.Exit == 0, r.ToString());
        var json = JsonDocument.Parse(r.Out.Trim().Split('\n')[^1]).RootElement;
        var overhead = json.GetProperty("overhead");
        Assert.Equal(10, overhead.GetProperty("steps").GetInt32());
        Assert.True(overhead.GetProperty("bare_step_ms").GetDouble() > 0);
        Assert.True(overhead.GetProperty("cluster_step_ms").GetDouble() > 0);
        var crf = json.GetProperty("crf");
        Assert.Equal(4, crf.GetProperty("images").GetInt32());
        Assert.True(crf.GetProperty("local_cpu_s_per_image").GetDouble() > 0);
        Assert.True(crf.GetProperty("sharded_cpu_s_per_image").GetDouble() > 0);
        Assert.False(json.TryGetProperty("failover", out _));
    }

    [Theory]
    [InlineData("--parts", "overhead,bogus")]
    [InlineData("--steps", "3")]
    public async Task Bad_options_name_themselves(string option, string value)
    {
        var r = await Ecsnet.Run("bench", "cluster", option, value);
        Assert.Equal(EcsNetCli.ExitBadInput, r.Exit);
        Assert.Contains(option == "--parts" ? "--parts" : "bench cluster", r.Err);
    }
}
