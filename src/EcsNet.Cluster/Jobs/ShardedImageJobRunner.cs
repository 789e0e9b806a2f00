using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using EcsNet.Data;
using EcsNet.Labels.Jobs;

namespace EcsNet.Cluster.Jobs;

/// <summary>How the sharded runner waits and retries (from the node's options).</summary>
/// <param name="MaxInFlight">Jobs sent and not yet answered, at most; the rest wait here, not in the nodes' queues.</param>
/// <param name="MaxTries">Sends of one job before the run fails naming it (a lost node, an error, a timeout each count).</param>
/// <param name="AcceptTimeout">A send that no entity accepted within this is sent again (no preprocess node reachable).</param>
/// <param name="JobTimeout">An accepted job with no answer within this is sent again (its node hung).</param>
/// <param name="NodeWaitTimeout">How long a run waits for a first node with the preprocess role to be up.</param>
public sealed record ShardedJobRunnerSettings(int MaxInFlight, int MaxTries, TimeSpan AcceptTimeout, TimeSpan JobTimeout, TimeSpan NodeWaitTimeout);

/// <summary>
/// Runs a stage's jobs on the cluster: each job goes to its stage's shard region, to the entity of its image on
/// some node with the <see cref="ClusterRoles.Preprocess"/> role. A run waits for every answer; a job whose node
/// is removed from the cluster (crashed and downed, or left) is sent again at once — jobs are idempotent, so a
/// second run writes the same file — and so is one that timed out or failed on its node with an error that is not
/// bad input. After <see cref="ShardedJobRunnerSettings.MaxTries"/> sends the run fails naming the image and the
/// node. Results carry the node that wrote each file.
/// </summary>
public sealed class ShardedImageJobRunner : IImageJobRunner
{
    private static int runs;
    private readonly ActorSystem system;
    private readonly ShardedJobRunnerSettings settings;

    public ShardedImageJobRunner(ActorSystem system, ShardedJobRunnerSettings settings)
    {
        this.system = system;
        this.settings = settings;
    }

    public async Task<IReadOnlyList<ImageJobResult>> RunAsync(IReadOnlyList<IImageJob> jobs, ImageJobProgress? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (jobs.Count == 0)
            return Array.Empty<ImageJobResult>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var job in jobs)
        {
            // answers name only the image, so one run holds one job per image (a stage's run does)
            if (!ids.Add(job.ImageId ?? ""))
                throw new BadInputException($"image {job.ImageId}", "has two jobs in one run; run them one after the other");
            try
            {
                job.Validate();
            }
            catch (BadInputException e)
            {
                throw new BadInputException($"image {job.ImageId}", e.Message, e);
            }
            if (!Path.IsPathRooted(job.OutputPath))
                throw new BadInputException($"image {job.ImageId}",
                    $"output path '{job.OutputPath}' is relative; a job that runs on another node needs paths every node sees (absolute, on a shared volume)");
        }
        var registry = ActorRegistry.For(system);
        var regions = new Dictionary<string, IActorRef>();
        foreach (var name in jobs.Select(JobRegions.For).Distinct())
            regions[name] = name switch
            {
                JobRegions.CrfLabels => await registry.GetAsync<CrfLabelRegion>(cancellationToken).ConfigureAwait(false),
                JobRegions.AffinityMaps => await registry.GetAsync<AffinityMapsRegion>(cancellationToken).ConfigureAwait(false),
                _ => await registry.GetAsync<PropagationRegion>(cancellationToken).ConfigureAwait(false),
            };
        await WaitForPreprocessNode(cancellationToken).ConfigureAwait(false);

        var done = new TaskCompletionSource<IReadOnlyList<ImageJobResult>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var batch = system.ActorOf(Props.Create(() => new JobBatch(jobs, regions, settings, progress, done)),
            $"image-jobs-{Interlocked.Increment(ref runs)}");
        using (cancellationToken.Register(() => batch.Tell(JobBatch.Cancel.Instance)))
            return await done.Task.ConfigureAwait(false);
    }

    private async Task WaitForPreprocessNode(CancellationToken cancellationToken)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        var deadline = DateTime.UtcNow + settings.NodeWaitTimeout;
        while (!cluster.State.Members.Any(m => m.Status == MemberStatus.Up && m.HasRole(ClusterRoles.Preprocess)))
        {
            if (DateTime.UtcNow > deadline)
            {
                var members = string.Join(", ", cluster.State.Members.Select(m => $"{m.Address} [{string.Join(",", m.Roles)}] {m.Status}"));
                throw new BadInputException($"cluster of {cluster.SelfAddress}",
                    $"no node with the '{ClusterRoles.Preprocess}' role is up after {settings.NodeWaitTimeout.TotalSeconds:0} s " +
                    $"(members: {(members.Length == 0 ? "none; this node has not joined" : members)}); start one with " +
                    $"`ecsnet node --roles {ClusterRoles.Preprocess} --seed {cluster.SelfAddress}`");
            }
            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }
    }
}
