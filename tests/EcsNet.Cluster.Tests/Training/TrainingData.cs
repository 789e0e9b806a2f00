using Akka.Actor;
using Akka.Hosting;
using EcsNet.Cluster.Hosting;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Training;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Core.Weights;
using EcsNet.Data;
using EcsNet.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace EcsNet.Cluster.Tests.Training;

/// <summary>
/// A small synthetic set and a CAM training on it whose result does not depend on how its global batch is split
/// (fixed BatchNorm statistics, per-position dropout and augmentation): any number of workers, joining or leaving,
/// must end with the weights of one process.
/// </summary>
internal sealed class TrainingData : IDisposable
{
    private readonly TempDir dir = new();

    /// <param name="epochs">8 images, batch 4: two steps an epoch.</param>
    public TrainingData(int epochs = 10)
    {
        Synth = SyntheticVoc.Generate(dir.File("voc"), new SynthOptions { TrainImages = 8, ValImages = 1, Size = 48, Seed = 4 });
        Config = ExperimentConfig.SmallCpu with
        {
            // Eq 6 starts after these short runs (as in the CPU default, at step 120): its thresholds (θ, the argmax of
            // L') turn float rounding into different labels, which compares trajectories, not the sync
            Cam = ExperimentConfig.SmallCpu.Cam with { OverlayRates = new[] { 1, 2 }, HeadDropout = 0.5 },
            CamTraining = ExperimentConfig.SmallCpu.CamTraining with
            {
                Epochs = epochs, BatchSize = 4, Crop = 32, WarmupSteps = 2, BatchNormMode = BatchNormMode.Eval, CheckpointEvery = 4, Threads = 1,
            },
            Augment = ExperimentConfig.SmallCpu.Augment with { LongEdgeMin = 32, LongEdgeMax = 40 },
        };
        Directory.CreateDirectory(dir.File("runs"));
        ExperimentFile = dir.File("runs/experiment.json");
        ExperimentJson.Write(ExperimentFile, Config);
    }

    public SynthResult Synth { get; }
    public ExperimentConfig Config { get; }
    public string ExperimentFile { get; }
    public int MaxSteps => Config.CamTraining.Epochs * 2;

    public string Run(string name) => dir.File(Path.Combine("runs", name));

    /// <summary>A run of one CAM training on <paramref name="workers"/> workers.</summary>
    public RunSpec Spec(string name, int workers, DataParallelTraining? settings = null) => new()
    {
        Run = name, Workers = workers, RunDir = Run(name),
        Settings = TrainingMessages.ToSettings(settings ?? new DataParallelTraining { BucketBytes = 16 << 10, PeerTimeout = TimeSpan.FromSeconds(60) }),
        Training = TrainingMessages.ToSpec(new TrainingJob
        {
            Stage = CamStage.StageName, ExperimentFile = ExperimentFile, VocRoot = Synth.Root, Split = "train", RunDir = Run(name),
        }),
    };

    /// <summary>The same training in this process, alone (the reference).</summary>
    public float[] SingleProcess(string name = "single")
    {
        var result = CamStage.Train(Config, VocDataset.Open(Synth.Root, "train"), Run(name));
        Assert.True(result.Completed);
        return Weights(Run(name));
    }

    /// <summary>The weights of a run's latest checkpoint.</summary>
    public float[] Weights(string runDir)
    {
        using var model = CamStage.CreateModel(Config);
        Checkpoints.LoadWeights(model, runDir);
        return model.parameters().SelectMany(p => p.detach().contiguous().data<float>().ToArray()).ToArray();
    }

    public static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        return a.Zip(b).Max(p => Math.Abs((double)p.First - p.Second));
    }

    /// <summary>The training coordinator of a node (its proxy off a coordinator node).</summary>
    public static Task<IActorRef> Coordinator(InProcessNode node) =>
        node.Host.Services.GetRequiredService<IRequiredActor<TrainingCoordinatorKey>>().GetAsync();

    public void Dispose() => dir.Dispose();
}
