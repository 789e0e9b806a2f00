using System.Text.Json;
using EcsNet.Data;
using EcsNet.Labels.Propagation;

namespace EcsNet.Cli.Tests;

public class BenchRandomWalkCommandTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await EcsNetCli.RunAsync(args, CliIo.ToWriters(output, error));
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task JsonReportsTheProblemAndPositiveTimings()
    {
        var (code, output, error) = await Run("bench", "random-walk", "--grid", "12", "--channels", "16", "--logt", "3",
            "--runs", "3", "--warmup", "0", "--json");
        Assert.True(code == 0, error);
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        Assert.Equal(144, r.GetProperty("Nodes").GetInt32());
        Assert.Equal(8, r.GetProperty("Steps").GetInt64());
        Assert.Equal(AffinityPairs.Create(5, 12, 12).PairCount, r.GetProperty("Pairs").GetInt32());
        Assert.Equal(3, r.GetProperty("Runs").GetInt32());
        Assert.True(r.GetProperty("MedianMs").GetDouble() > 0);
        Assert.True(r.GetProperty("MinMs").GetDouble() <= r.GetProperty("MaxMs").GetDouble());
        Assert.True(r.GetProperty("AllocatedBytesPerRun").GetInt64() > 0);
        Assert.True(r.GetProperty("PeakWorkingSetBytes").GetInt64() > 0);
        // rows of P sum to 1, so the walk preserves each node-average only approximately, but the total stays
        // within the range of the uniform inputs: 21 channels × 144 nodes × [0, 1)
        double sum = r.GetProperty("OutputChecksum").GetDouble();
        Assert.InRange(sum, 0.1 * 21 * 144, 21 * 144);
    }

    [Fact]
    public async Task InputsFolderIsWalkedAndTheOutputSaved()
    {
        var dir = Directory.CreateTempSubdirectory("rw-bench-").FullName;
        try
        {
            const int grid = 10, channels = 6, k = 21, n = grid * grid;
            var rng = new Random(4);
            var f = Enumerable.Range(0, channels * n).Select(_ => rng.NextSingle()).ToArray();
            var cam = Enumerable.Range(0, k * n).Select(_ => rng.NextSingle()).ToArray();
            NpyFile.Write(Path.Combine(dir, "features.npy"), f, channels, n);
            NpyFile.Write(Path.Combine(dir, "cam.npy"), cam, k, n);
            var outPath = Path.Combine(dir, "ours.npy");
            var (code, _, error) = await Run("bench", "random-walk", "--grid", "10", "--logt", "4", "--runs", "1",
                "--warmup", "0", "--inputs", dir, "--save-output", outPath, "--json");
            Assert.True(code == 0, error);
            var ours = NpyFile.Read(outPath);
            Assert.Equal(new[] { k, n }, ours.Shape);
            var options = new RandomWalkOptions { LogT = 4 };
            var expected = RandomWalkTransition.FromFeatures(f, channels, grid, grid, options).Propagate(cam, k, options.Steps);
            Assert.Equal(expected, ours.Data);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task MissingInputsIsOneClearLineAndExitTwo()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"no-such-{Guid.NewGuid():N}");
        var (code, _, error) = await Run("bench", "random-walk", "--inputs", dir);
        Assert.Equal(EcsNetCli.ExitBadInput, code);
        Assert.StartsWith("error: ", error);
        Assert.Contains("features.npy", error);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public async Task WrongShapeAndBadOptionsAreBadInput()
    {
        var (code, _, error) = await Run("bench", "random-walk", "--grid", "12", "--logt", "-2");
        Assert.Equal(EcsNetCli.ExitBadInput, code);
        Assert.Contains("logt", error);

        var dir = Directory.CreateTempSubdirectory("rw-bench-").FullName;
        try
        {
            NpyFile.Write(Path.Combine(dir, "features.npy"), new float[100], 2, 50);
            NpyFile.Write(Path.Combine(dir, "cam.npy"), new float[2100], 21, 100);
            (code, _, error) = await Run("bench", "random-walk", "--grid", "10", "--inputs", dir);
            Assert.Equal(EcsNetCli.ExitBadInput, code);
            Assert.Contains("(2, 50)", error);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task HelpDescribesEveryOption()
    {
        var (code, output, _) = await Run("bench", "random-walk", "--help");
        Assert.Equal(0, code);
        foreach (var option in new[] { "--grid", "--channels", "--cam-channels", "--radius", "--beta", "--logt", "--threads",
                     "--runs", "--warmup", "--inputs", "--save-output", "--json" })
            Assert.Contains(option, output);
    }
}
