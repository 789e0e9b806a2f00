using Akka.Actor;
using EcsNet.Cluster.Messages;
using EcsNet.Core.Stages;
using EcsNet.Labels.Jobs;

namespace EcsNet.Cluster.Training;

/// <summary>
/// Runs one run on the coordinator's node, on a thread of its own: the pipeline (Core's stages, their manifests and
/// reuse) with its per-image jobs on the preprocess nodes and its trainings on the workers, or a single training.
/// Inference steps of the stages (CAMs, features, segmentation) run here. It tells the coordinator what it does.
/// </summary>
internal static class RunDriver
{
    public static TrainingCoordinator.DriverFinished Drive(RunSpec spec, IActorRef coordinator, IImageJobRunner jobs, CancellationToken ct)
    {
        var training = new ActorTrainingRunner(coordinator, spec.Run);
        if (spec.Training is not null)
        {
            // a training alone may end before its last step by its own options (stopAfterSteps): that is its result
            var result = training.Train(TrainingMessages.ToJob(spec.Training), null, ct);
            return new TrainingCoordinator.DriverFinished(spec.Run, new[]
            {
                new StageSummary
                {
                    Stage = result.Task, Title = $"{result.Task} training", Note = $"{result.Steps}/{result.MaxSteps} steps; checkpoint {result.Checkpoint}",
                    Metrics = { ["steps"] = result.Steps, ["finalLoss"] = result.LastLoss },
                },
            }, null);
        }
        var config = ExperimentJson.Read(spec.ExperimentFile);
        var context = new PipelineContext(config, spec.VocRoot, spec.TrainSplit, spec.ValSplit, spec.RunDir)
        {
            Progress = (activity, done, total, text) =>
                coordinator.Tell(new TrainingCoordinator.DriverProgress(spec.Run, text.Length > 0 ? $"{activity} {text}" : activity, done, total)),
            Training = training,
            Jobs = jobs,
        };
        var outcomes = PipelineStages.Default().Run(context, spec.Stages.Where(s => s.Length > 0).ToArray(), spec.Force.ToArray(),
            o => coordinator.Tell(new TrainingCoordinator.StageFinished(spec.Run, Summary(o))), ct);
        return new TrainingCoordinator.DriverFinished(spec.Run, outcomes.Select(Summary).ToList(), null);
    }

    public static StageSummary Summary(StageOutcome o)
    {
        var s = new StageSummary { Stage = o.Stage, Title = o.Title, Reused = o.Reused, Note = o.Note, Seconds = o.Manifest.Seconds };
        foreach (var (k, v) in o.Manifest.Metrics)
            s.Metrics[k] = v;
        return s;
    }
}
