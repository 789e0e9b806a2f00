using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Samples;
using EcsNet.Cluster.Training;
using EcsNet.Core.Stages;
using EcsNet.Data;
using EcsNet.Labels.Propagation;
using EcsNet.Labels.Samples;
using Google.Protobuf;

namespace EcsNet.Cluster.Tests.Serialization;

/// <summary>One message of every type of protos/cluster/training.proto, each with fields set away from their defaults.</summary>
internal static class TrainingMessageSamples
{
    private static readonly TrainingJobSpec Job = TrainingMessages.ToSpec(new TrainingJob
    {
        Stage = "aff", ExperimentFile = "/runs/r/experiment.json", VocRoot = "/data/VOC2012", Split = "train_aug",
        Voc = new VocOptions { OnBadSample = OnBadSample.Skip, VerifyImages = false }, RunDir = "/runs/r/aff/run",
        CamRun = "/runs/r/cam/run", MapsDir = "/runs/r/aff/maps",
    });

    private static readonly SampleSetSettings Set = SampleMessages.ToSettings(new AffinitySampleSpec
    {
        VocRoot = "/data/VOC2012", Split = "train", CacheImages = true, MapsDir = "/runs/r/aff/maps", Crop = 448,
        Jitter = new AugmentOptions { LongEdgeMin = 448, LongEdgeMax = 448, CropSize = 448, FlipProbability = 0 },
        Labels = new AffinityLabelOptions { AlphaLow = 3 },
    });

    private static readonly GenerationJoined Generation = new()
    {
        Training = "r/cam/1", Generation = 3, Rank = 1, WorldSize = 2, ResumedStep = 57, StateFrom = 0, AbandonedStep = 57, Reason = "lost rank 2",
    };

    private static readonly LossValue Loss = new() { Name = "Total", Value = 0.42 };

    public static readonly IMessage[] All =
    {
        new WorkerHello { Device = "cuda:1", Training = "r/cam/1" },
        SampleMessages.ToSettings(new VocOptions { OnBadSample = OnBadSample.Skip }),
        Job,
        TrainingMessages.ToSettings(new DataParallelTraining { BucketBytes = 1 << 20, PeerTimeout = TimeSpan.FromSeconds(30) }),
        new StartTraining { Run = "r", Training = "r/cam/1", Job = Job, Rendezvous = "http://10.0.0.5:41234", Settings = new DataParallelSettings { BucketBytes = 7 } },
        new LeaveTraining { Training = "r/cam/1", Reason = "scaled to 1" },
        new StopTraining { Training = "r/cam/1" },
        new TrainingJoined { Training = "r/cam/1", RendezvousWorker = "w3" },
        Loss,
        new TrainingProgress { Training = "r/cam/1", Step = 12, MaxSteps = 240, Epoch = 1, LearningRate = 0.05, Terms = { Loss }, Generation = 2, Rank = 0, WorldSize = 2, Seconds = 0.3, AllreduceBytes = 4096, AllreduceSeconds = 0.001 },
        Generation,
        new TrainingEnded { Training = "r/cam/1", Outcome = TrainingEnded.Types.Outcome.Left, Steps = 12, MaxSteps = 240, Checkpoint = "/runs/r/cam/run/checkpoints/step-000012", LastTerms = { Loss } },
        SampleMessages.ToSettings(new AugmentOptions()),
        Set,
        new CamSamples { Augment = SampleMessages.ToSettings(new AugmentOptions()) },
        new SegSamples { LabelDir = "/runs/r/rw/labels", Classes = 21 },
        Set.Affinity,
        new SampleRequest { Entity = "abcd/3", Set = Set, Index = 19, Seed = 12345 },
        new SampleReply { Index = 19, Seed = 12345, Image = { 0.5f, -1.25f }, Target = ByteString.CopyFrom(1, 0, 255), Error = "", BadInput = false },
        new RunSpec { Run = "r", ExperimentFile = "/runs/r/experiment.json", VocRoot = "/data", TrainSplit = "train", ValSplit = "val", RunDir = "/runs/r", Stages = { "cam" }, Workers = 4 },
        new SubmitRun { Spec = new RunSpec { Run = "r", Workers = 1 } },
        new RunAccepted { Run = "r" },
        new RunRejected { Run = "r", Reason = "workers: 0 must be at least 1" },
        new WatchRun { Run = "r" },
        new ScaleRun { Run = "r", Workers = 3 },
        new StopRun { Run = "r" },
        new GetRunStatus { Run = "r" },
        new StageSummary { Stage = "crf", Title = "CAM + dense CRF", Note = "new", Seconds = 5, Metrics = { ["mIoU"] = 0.306 } },
        new RunStatus
        {
            Run = "r", State = RunStatus.Types.State.Running, Stage = "cam", Step = 3, MaxSteps = 240, Generations = { Generation }, BadInput = true,
            Epoch = 1, LearningRate = 0.01, StepSeconds = 0.25, AllreduceBytes = 1 << 20, AllreduceSeconds = 0.002,
        },
        new GetCoordinatorInfo(),
        new CoordinatorInfo { Address = "akka.tcp://ecsnet@10.0.0.5:4053", Workers = 4, BusyWorkers = 2, ActiveRuns = { "r" }, QueuedRuns = { "q" } },
    };
}
