using Akka.Cluster.Sharding;
using EcsNet.Labels.Jobs;

namespace EcsNet.Cluster.Jobs;

/// <summary>Registry key of the crf stage's shard region (or proxy): <see cref="CrfLabelJob"/>s.</summary>
public sealed class CrfLabelRegion;

/// <summary>Registry key of the aff stage's la/ha shard region (or proxy): <see cref="AffinityMapsJob"/>s.</summary>
public sealed class AffinityMapsRegion;

/// <summary>Registry key of the rw stage's shard region (or proxy): <see cref="PropagationJob"/>s.</summary>
public sealed class PropagationRegion;

/// <summary>
/// The three shard regions of per-image jobs, one per stage (entity id = image id), hosted by nodes with the
/// <see cref="ClusterRoles.Preprocess"/> role and reached through proxies from every other node.
/// </summary>
public static class JobRegions
{
    public const string CrfLabels = "crf-labels";
    public const string AffinityMaps = "affinity-maps";
    public const string Propagation = "propagation";

    /// <summary>The region type name a job goes to.</summary>
    public static string For(IImageJob job) => job switch
    {
        CrfLabelJob => CrfLabels,
        AffinityMapsJob => AffinityMaps,
        PropagationJob => Propagation,
        _ => throw new ArgumentException($"{job.GetType().Name} (image {job.ImageId}) has no shard region", nameof(job)),
    };
}

/// <summary>
/// Entity id = the request's image id; shards by its hash (Akka.NET docs, "Cluster Sharding": about ten times as
/// many shards as the most nodes planned). Anything else is not routed (sharding logs and drops it).
/// </summary>
public sealed class ImageJobExtractor : HashCodeMessageExtractor
{
    public ImageJobExtractor(int shards) : base(shards)
    {
    }

    public override string? EntityId(object message) =>
        JobMessages.Key(message) is { ImageId: { Length: > 0 } id } ? id : null;
}
