using EcsNet.Cluster.Messages;
using EcsNet.Data;
using EcsNet.Labels.Crf;
using EcsNet.Labels.Jobs;
using EcsNet.Labels.Propagation;
using Google.Protobuf;

namespace EcsNet.Cluster.Jobs;

/// <summary>
/// Job records ↔ their protobuf requests, and the requests' common view. The records stay the one definition of
/// a job (EcsNet.Labels); the messages only carry them, field for field.
/// </summary>
public static class JobMessages
{
    /// <summary>The request that carries <paramref name="job"/> (its <paramref name="attempt"/>-th send).</summary>
    public static IMessage ToMessage(IImageJob job, int attempt) => job switch
    {
        CrfLabelJob j => new CrfLabelJobRequest
        {
            ImageId = j.ImageId, Attempt = attempt, ImagePath = j.ImagePath, CamDir = j.CamDir, OutputPath = j.OutputPath,
            BackgroundThreshold = j.BackgroundThreshold, Crf = ToSettings(j.Crf),
        },
        AffinityMapsJob j => new AffinityMapsJobRequest
        {
            ImageId = j.ImageId, Attempt = attempt, ImagePath = j.ImagePath, CamDir = j.CamDir, OutputPath = j.OutputPath,
            Labels = ToSettings(j.Labels), Crf = ToSettings(j.Crf),
        },
        PropagationJob j => new PropagationJobRequest
        {
            ImageId = j.ImageId, Attempt = attempt, FeaturesPath = j.FeaturesPath, CamDir = j.CamDir, Height = j.Height,
            Width = j.Width, OutputPath = j.OutputPath, Walk = ToSettings(j.Walk),
        },
        _ => throw new ArgumentException($"{job.GetType().Name} (image {job.ImageId}) has no cluster message; add one to protos/cluster/jobs.proto", nameof(job)),
    };

    /// <summary>The job a request carries. Missing option blocks become null and fail the job's own Validate, naming the field.</summary>
    public static IImageJob ToJob(IMessage request) => request switch
    {
        CrfLabelJobRequest m => new CrfLabelJob(m.ImageId, m.ImagePath, m.CamDir, m.OutputPath, m.BackgroundThreshold,
            m.Crf is null ? null! : ToOptions(m.Crf)),
        AffinityMapsJobRequest m => new AffinityMapsJob(m.ImageId, m.ImagePath, m.CamDir, m.OutputPath,
            m.Labels is null ? null! : ToOptions(m.Labels), m.Crf is null ? null! : ToOptions(m.Crf)),
        PropagationJobRequest m => new PropagationJob(m.ImageId, m.FeaturesPath, m.CamDir, m.Height, m.Width, m.OutputPath,
            m.Walk is null ? null! : ToOptions(m.Walk)),
        _ => throw new BadInputException("job message", $"{request.Descriptor.FullName} is not a job request"),
    };

    /// <summary>(image id, attempt) of a job request, or null for any other message.</summary>
    public static (string ImageId, int Attempt)? Key(object message) => message switch
    {
        CrfLabelJobRequest m => (m.ImageId, m.Attempt),
        AffinityMapsJobRequest m => (m.ImageId, m.Attempt),
        PropagationJobRequest m => (m.ImageId, m.Attempt),
        _ => null,
    };

    public static DenseCrfSettings ToSettings(DenseCrfOptions o) => new()
    {
        Iterations = o.Iterations, GaussianSxy = o.GaussianSxy, GaussianCompat = o.GaussianCompat, BilateralSxy = o.BilateralSxy,
        BilateralSrgb = o.BilateralSrgb, BilateralCompat = o.BilateralCompat, ProbabilityFloor = o.ProbabilityFloor,
        ReuseSmoothnessKernel = o.ReuseSmoothnessKernel, MaxDegreeOfParallelism = o.MaxDegreeOfParallelism,
    };

    public static DenseCrfOptions ToOptions(DenseCrfSettings s) => new()
    {
        Iterations = s.Iterations, GaussianSxy = s.GaussianSxy, GaussianCompat = s.GaussianCompat, BilateralSxy = s.BilateralSxy,
        BilateralSrgb = s.BilateralSrgb, BilateralCompat = s.BilateralCompat, ProbabilityFloor = s.ProbabilityFloor,
        ReuseSmoothnessKernel = s.ReuseSmoothnessKernel, MaxDegreeOfParallelism = s.MaxDegreeOfParallelism,
    };

    public static AffinityLabelSettings ToSettings(AffinityLabelOptions o) => new()
    {
        AlphaLow = o.AlphaLow, AlphaHigh = o.AlphaHigh, Stride = o.Stride, NoScoreThreshold = o.NoScoreThreshold,
    };

    public static AffinityLabelOptions ToOptions(AffinityLabelSettings s) => new()
    {
        AlphaLow = s.AlphaLow, AlphaHigh = s.AlphaHigh, Stride = s.Stride, NoScoreThreshold = s.NoScoreThreshold,
    };

    public static RandomWalkSettings ToSettings(RandomWalkOptions o) => new()
    {
        Beta = o.Beta, LogT = o.LogT, Radius = o.Radius, Alpha = o.Alpha, Stride = o.Stride, Threads = o.Threads,
    };

    public static RandomWalkOptions ToOptions(RandomWalkSettings s) => new()
    {
        Beta = s.Beta, LogT = s.LogT, Radius = s.Radius, Alpha = s.Alpha, Stride = s.Stride, Threads = s.Threads,
    };
}
