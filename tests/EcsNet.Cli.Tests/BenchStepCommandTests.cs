using System.Text.Json;

namespace EcsNet.Cli.Tests;

public class BenchStepCommandTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await EcsNetCli.RunAsync(args, CliIo.ToWriters(output, error));
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task JsonReportsTheWorkloadItRan()
    {
        var (code, output, error) = await Run("bench", "step", "--size", "64", "--batch", "2", "--steps", "2", "--warmup", "1", "--threads", "1", "--json");
        Assert.True(code == 0, error);
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        Assert.Equal(11_268_672L, r.GetProperty("parameters").GetInt64());
        Assert.Equal(1, r.GetProperty("threads").GetInt32());
        Assert.Equal(2, r.GetProperty("batch").GetInt32());
        Assert.Equal(new long[] { 512, 2, 2 }, r.GetProperty("featureShape").EnumerateArray().Select(e => e.GetInt64()).ToArray());
        var step = r.GetProperty("step");
        Assert.InRange(step.GetProperty("medianMs").GetDouble(), step.GetProperty("minMs").GetDouble(), step.GetProperty("maxMs").GetDouble());
        Assert.True(r.GetProperty("backwardMs").GetDouble() > 0);
        Assert.True(r.GetProperty("evalForward").GetProperty("medianMs").GetDouble() > 0);
    }

    [Fact]
    public async Task TableNamesEachPhase()
    {
        var (code, output, error) = await Run("bench", "step", "--size", "64", "--batch", "2", "--steps", "1", "--warmup", "0", "--threads", "1");
        Assert.True(code == 0, error);
        foreach (var phase in new[] { "train step", "forward+loss", "backward", "sgd step", "eval forward", "params 11268672" })
            Assert.Contains(phase, output);
    }

    [Fact]
    public async Task BadBatchIsOneLineAndExitTwo()
    {
        var (code, output, error) = await Run("bench", "step", "--batch", "0");
        Assert.Equal(EcsNetCli.ExitBadInput, code);
        Assert.Equal("error: bench step: --batch must be at least 1, got 0", error.Trim());
        Assert.Equal("", output);
    }

    [Fact]
    public async Task HelpDescribesEveryOption()
    {
        var (code, output, _) = await Run("bench", "step", "--help");
        Assert.Equal(0, code);
        foreach (var option in new[] { "--threads", "--batch", "--size", "--steps", "--warmup", "--json" })
            Assert.Contains(option, output);
        Assert.Contains("set_num_threads", output);
    }
}
