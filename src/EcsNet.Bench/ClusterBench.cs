using System.Diagnostics;
using EcsNet.Cluster;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Training;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Data;
using EcsNet.Host;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Jobs;

namespace EcsNet.Bench;

/// <summary>Per-step time of the same CAM training alone and through the cluster's actors (one worker actor).</summary>
/// <param name="Steps">Steps timed in each run (after the first few, which warm up).</param>
public sealed record ActorOverheadResult(int Steps, IReadOnlyList<double> BareStepSeconds, IReadOnlyList<double> ClusterStepSeconds)
{
    public double Bare => Median(BareStepSeconds);
    public double Cluster => Median(ClusterStepSeconds);

    /// <summary>Cluster over bare, minus one (0.02 = 2 % slower).</summary>
    public double Overhead => Cluster / Bare - 1;

    internal static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted[sorted.Length / 2];
    }
}

/// <summary>CPU seconds per image of the crf stage's jobs in this process and through the job entities.</summary>
public sealed record ShardedCrfResult(int Images, int Size, IReadOnlyList<double> LocalCpuPerImage, IReadOnlyList<double> ShardedCpuPerImage)
{
    public double Local => ActorOverheadResult.Median(LocalCpuPerImage);
    public double Sharded => ActorOverheadResult.Median(ShardedCpuPerImage);
    public double Ratio => Sharded / Local;
}

/// <summary>
/// `ecsnet bench cluster`: what the actor layer costs. The same work runs alone and through the cluster in one
/// session, alternating, so the ratio is meaningful on a shared machine.
/// </summary>
public static class ClusterBench
{
    /// <summary>A synthetic set at <paramref name="size"/> px.</summary>
    public static SynthResult Data(string dir, int images, int size) =>
        SyntheticVoc.Generate(dir, new SynthOptions { TrainImages = images, ValImages = 1, Size = size, Seed = 7 });

    /// <summary>
    /// The CAM network of the CPU default (96-px crops, batch 8) trained for <paramref name="steps"/> steps, alone
    /// (<see cref="CamStage.Train"/>) and as a run of an embedded cluster with one worker actor, <paramref name="rounds"/>
    /// times each, alternating. Time per step is measured between the root's step reports, after
    /// <paramref name="warmup"/> steps; the cluster's include pulling samples from the sample entities and the
    /// coordinator's bookkeeping.
    /// </summary>
    public static async Task<ActorOverheadResult> ActorOverheadAsync(string dir, int steps, int warmup, int rounds, CancellationToken ct)
    {
        var synth = Data(Path.Combine(dir, "data"), 48, 128);
        var config = ExperimentConfig.SmallCpu with
        {
            CamTraining = ExperimentConfig.SmallCpu.CamTraining with
            {
                Crop = 96, BatchSize = 8, Epochs = (warmup + steps + 5) / 6 + 1, StopAfterSteps = warmup + steps, CheckpointEvery = 100_000,
            },
            Augment = ExperimentConfig.SmallCpu.Augment with { LongEdgeMin = 96, LongEdgeMax = 128 },
        };
        var dataset = VocDataset.Open(synth.Root, "train");
        var bare = new List<double>();
        var cluster = new List<double>();
        await using var node = await EmbeddedNode.StartAsync(1, ct: ct);
        for (int r = 0; r < rounds; r++)
        {
            var times = new List<(int Step, double At)>();
            var clock = Stopwatch.StartNew();
            CamStage.Train(config, dataset, Path.Combine(dir, $"bare-{r}"), new TrainingCallbacks(OnStep: s => times.Add((s.Step, clock.Elapsed.TotalSeconds))), ct);
            bare.Add(PerStep(times, warmup));

            var runDir = Path.Combine(dir, $"cluster-{r}");
            Directory.CreateDirectory(runDir);
            var experiment = Path.Combine(runDir, CamStage.ConfigFileName);
            ExperimentJson.Write(experiment, config);
            var spec = new RunSpec
            {
                Run = $"overhead-{r}", Workers = 1, RunDir = runDir,
                Training = TrainingMessages.ToSpec(new TrainingJob
                {
                    Stage = CamStage.StageName, ExperimentFile = experiment, VocRoot = synth.Root, Split = "train", RunDir = runDir,
                }),
            };
            var seen = new List<(int Step, double At)>();
            clock.Restart();
            var status = await node.RunAsync(spec, s =>
            {
                lock (seen)
                    if (s.Stage == CamStage.StageName && s.Step > 0 && (seen.Count == 0 || seen[^1].Step != s.Step))
                        seen.Add((s.Step, clock.Elapsed.TotalSeconds));
            }, ct);
            if (status.State != RunStatus.Types.State.Completed)
                throw new InvalidOperationException($"the cluster run ended {status.State}: {status.Error}");
            lock (seen)
                cluster.Add(PerStep(seen, warmup));
        }
        return new ActorOverheadResult(steps, bare, cluster);
    }

    /// <summary>Seconds per step between step <paramref name="warmup"/> and the last one seen.</summary>
    private static double PerStep(IReadOnlyList<(int Step, double At)> times, int warmup)
    {
        var from = times.First(t => t.Step >= warmup);
        var to = times[^1];
        return to.Step == from.Step ? double.NaN : (to.At - from.At) / (to.Step - from.Step);
    }

    /// <summary>
    /// The crf stage's jobs (dense CRF of 21-label-sized CAM stacks, PSA's settings scaled as the CPU default) for
    /// <paramref name="images"/> images of <paramref name="size"/> pixels a side, run by the in-process runner and by
    /// the job entities of an embedded node, <paramref name="rounds"/> times each, alternating, after one untimed
    /// round of each (JIT, first entity start); CPU seconds of this whole process per image.
    /// </summary>
    public static async Task<ShardedCrfResult> ShardedCrfAsync(string dir, int images, int size, int rounds, CancellationToken ct)
    {
        var synth = Data(Path.Combine(dir, "crf-data"), images, size);
        var camDir = Path.Combine(dir, "cams");
        var train = VocDataset.Open(synth.Root, "train", new VocOptions { Masks = MaskUse.Required });
        foreach (var sample in train.Samples)
        {
            var mask = ImageCodec.ReadLabelPng(sample.MaskPath!);
            var classes = sample.Labels.Order().ToArray();
            CamStore.Write(camDir, sample.Id, new CamMaps(mask.Height, mask.Width, classes, classes.Select(c => SoftMask(mask, c)).ToArray()));
        }
        var crf = ExperimentConfig.SmallCpu.Crf with { MaxDegreeOfParallelism = 1 };
        IReadOnlyList<IImageJob> Jobs(string outDir) => train.Samples.Select(s => (IImageJob)new CrfLabelJob(s.Id, Path.GetFullPath(s.ImagePath),
            Path.GetFullPath(camDir), Path.GetFullPath(Path.Combine(outDir, s.Id + ".png")), ExperimentConfig.SmallCpu.BackgroundThreshold, crf)).ToList();

        await using var node = await EmbeddedNode.StartAsync(0, roles: new[] { ClusterRoles.Coordinator, ClusterRoles.Preprocess }, ct: ct);
        var local = new List<double>();
        var sharded = new List<double>();
        await LocalImageJobRunner.Default.RunAsync(Jobs(Path.Combine(dir, "warmup-local")), cancellationToken: ct);
        await node.Jobs.RunAsync(Jobs(Path.Combine(dir, "warmup-sharded")), cancellationToken: ct);
        for (int r = 0; r < rounds; r++)
        {
            local.Add(await CpuPerImage(LocalImageJobRunner.Default, Jobs(Path.Combine(dir, $"local-{r}")), ct));
            sharded.Add(await CpuPerImage(node.Jobs, Jobs(Path.Combine(dir, $"sharded-{r}")), ct));
        }
        return new ShardedCrfResult(images, size, local, sharded);
    }

    private static async Task<double> CpuPerImage(IImageJobRunner runner, IReadOnlyList<IImageJob> jobs, CancellationToken ct)
    {
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var before = process.TotalProcessorTime;
        await runner.RunAsync(jobs, cancellationToken: ct);
        process.Refresh();
        return (process.TotalProcessorTime - before).TotalSeconds / jobs.Count;
    }

    /// <summary>A CAM-like map for class <paramref name="c"/>: its mask, blurred (3×3 box, 4 times) so the CRF has work to do.</summary>
    private static float[] SoftMask(LabelMask mask, int c)
    {
        int w = mask.Width, h = mask.Height;
        var map = mask.Labels.Select(l => l == c ? 1f : 0f).ToArray();
        for (int pass = 0; pass < 4; pass++)
        {
            var next = new float[map.Length];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    float sum = 0;
                    int n = 0;
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++)
                        {
                            int yy = y + dy, xx = x + dx;
                            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                            sum += map[yy * w + xx];
                            n++;
                        }
                    next[y * w + x] = sum / n;
                }
            map = next;
        }
        float max = map.Max();
        return max > 0 ? map.Select(v => v / max).ToArray() : map;
    }
}
