using System.Text.Json;
using EcsNet.Core.Stages;
using EcsNet.Core.Weights;
using EcsNet.Testing;

namespace EcsNet.Cli.Tests;

/// <summary>`train-cam --workers N` (worker actors of an embedded cluster) and `bench train-cam`: data-parallel CAM training.</summary>
[Collection(CliCollection.Name)]
public sealed class TrainCamWorkersTests
{
    // 8 images, global batch 2, crop 32: 4 steps an epoch, 16 steps in all, a checkpoint every 5
    private static readonly string[] Tiny =
    {
        "--method", "cam", "--threads", "1", "--set", "camTraining.epochs=4", "camTraining.batchSize=2", "camTraining.crop=32",
        "camTraining.warmupSteps=2", "camTraining.batchNormMode=eval", "camTraining.checkpointEvery=5",
        "augment.longEdgeMin=32", "augment.longEdgeMax=40", "cam.overlayRates=[1,2]",
    };

    private static async Task<TempDir> Synth()
    {
        var dir = new TempDir();
        var r = await Ecsnet.Run("data", "synth", "--out", dir.Path, "--images", "8", "--val", "1", "--size", "48", "--seed", "4");
        Assert.True(r.Exit == 0, r.ToString());
        return dir;
    }

    private static float[] Weights(string run)
    {
        var config = CamStage.LoadRunConfig(run);
        using var model = CamStage.CreateModel(config);
        Checkpoints.LoadWeights(model, run);
        return model.parameters().SelectMany(p => p.detach().contiguous().data<float>().ToArray()).ToArray();
    }

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        return a.Zip(b).Max(p => Math.Abs((double)p.First - p.Second));
    }

    [Fact]
    public async Task Bench_train_cam_workers_match_one_process_for_cam_and_ecs()
    {
        var r = await Ecsnet.Run("bench", "train-cam", "--workers", "2", "--steps", "3", "--batch", "4", "--crop", "32", "--images", "8", "--methods", "cam,ecs", "--json");
        Assert.True(r.Exit == 0, r.ToString());
        var rows = JsonDocument.Parse(r.Out).RootElement.EnumerateArray().ToArray();
        Assert.Equal(new[] { "cam", "ecs" }, rows.Select(x => x.GetProperty("method").GetString()));
        Assert.All(rows, x =>
        {
            Assert.Equal(2, x.GetProperty("workers").GetInt32());
            Assert.InRange(x.GetProperty("max_abs_weight_diff").GetDouble(), 0, 1e-5);
            Assert.True(x.GetProperty("max_abs_weight_change").GetDouble() > 1e-4, "the weights moved");
        });
    }

    [Fact]
    public async Task Worker_actors_of_the_embedded_cluster_stop_resume_and_end_like_one_process()
    {
        using var dir = await Synth();
        var voc = dir.File("VOC2012");
        var run = dir.File("dp");
        var args = new[] { "train-cam", "--voc", voc, "--out", run, "--workers", "2" }.Concat(Tiny).ToArray();

        // stop after 7 steps (rank 0 leaves a checkpoint there), then the same command goes on to the end
        var first = await Ecsnet.Run(args.Append("camTraining.stopAfterSteps=7").ToArray()).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.True(first.Exit == 0, first.ToString());
        Assert.Contains("trained on 2 worker actors: 7/16 steps", first.Out);
        Assert.Equal("step-000007", File.ReadAllText(Path.Combine(run, "checkpoints", "latest")).Trim());
        Assert.Equal(7, File.ReadAllLines(Path.Combine(run, "train-log.jsonl")).Length);

        var resumed = await Ecsnet.Run(args).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.True(resumed.Exit == 0, resumed.ToString());
        Assert.Contains("trained on 2 worker actors: 16/16 steps", resumed.Out);
        var single = await Ecsnet.Run(new[] { "train-cam", "--voc", voc, "--out", dir.File("single") }.Concat(Tiny).ToArray());
        Assert.True(single.Exit == 0, single.ToString());
        Assert.InRange(MaxAbsDiff(Weights(dir.File("single")), Weights(run)), 0, 1e-5);
    }

    [Theory]
    [InlineData("--workers", new[] { "--workers", "0" })]
    [InlineData("--workers", new[] { "--workers", "3" })]                              // more workers than the batch of 2
    [InlineData("--workers", new[] { "--workers", "2", "--coordinator", "http://127.0.0.1:1", "--world", "2" })]
    [InlineData("--world", new[] { "--coordinator", "http://127.0.0.1:1" })]
    [InlineData("--world", new[] { "--world", "2" })]
    [InlineData("--coordinator", new[] { "--coordinator", "ftp://x", "--world", "2" })]
    [InlineData("--rank", new[] { "--coordinator", "http://127.0.0.1:1", "--world", "2", "--rank", "2" })]
    [InlineData("--test-kill", new[] { "--workers", "2", "--test-kill", "x" })]
    public async Task Bad_cluster_options_give_one_clear_line_and_exit_2(string named, string[] extra)
    {
        using var dir = await Synth();
        var r = await Ecsnet.Run(new[] { "train-cam", "--voc", dir.File("VOC2012"), "--out", dir.File("run") }.Concat(extra).Concat(Tiny).ToArray());
        Assert.Equal(EcsNetCli.ExitBadInput, r.Exit);
        Assert.StartsWith("error: " + named, r.Err.Trim());
        Assert.Single(r.Err.Trim().Split('\n'));
    }

    [Fact]
    public async Task A_rank_without_a_coordinator_fails_within_its_timeout()
    {
        using var dir = await Synth();
        var r = await Ecsnet.Run(new[] { "train-cam", "--voc", dir.File("VOC2012"), "--out", dir.File("run"), "--coordinator", "http://127.0.0.1:9", "--world", "2", "--join-timeout", "3" }
            .Concat(Tiny).ToArray()).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(EcsNetCli.ExitFailure, r.Exit);
        Assert.Contains("127.0.0.1:9", r.Err);
    }

    [Fact]
    public async Task Train_cam_help_shows_the_cluster_options()
    {
        var r = await Ecsnet.Run("train-cam", "--help");
        Assert.Equal(0, r.Exit);
        foreach (var option in new[] { "--workers", "--coordinator", "--world", "--peer-timeout" })
            Assert.Contains(option, r.Out);
        Assert.DoesNotContain("--test-kill", r.Out);
    }
}
