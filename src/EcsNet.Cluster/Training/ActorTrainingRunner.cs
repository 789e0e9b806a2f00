using Akka.Actor;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;

namespace EcsNet.Cluster.Training;

/// <summary>
/// The pipeline's <see cref="ITrainingRunner"/> on the cluster: hands each training job to the training coordinator,
/// which trains it on the cluster's workers, and blocks the pipeline's thread until it is done. Step and generation
/// reports come back to the job's callbacks.
/// </summary>
public sealed class ActorTrainingRunner(IActorRef coordinator, string run) : ITrainingRunner
{
    public TrainingResult Train(TrainingJob job, TrainingCallbacks? callbacks, CancellationToken ct)
    {
        var done = new TaskCompletionSource<TrainingResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        coordinator.Tell(new TrainingCoordinator.BeginTraining(run, job, callbacks, done));
        using var _ = ct.Register(() => coordinator.Tell(new TrainingCoordinator.CancelTraining(run)));
        return done.Task.GetAwaiter().GetResult();
    }
}
