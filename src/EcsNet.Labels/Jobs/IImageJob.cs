namespace EcsNet.Labels.Jobs;

/// <summary>
/// The per-image work of a pipeline stage as a value: everything it needs (paths, options) and a
/// <see cref="Run"/> that writes one output file. Jobs are torch-free, so a node without LibTorch runs them.
/// <para>
/// <see cref="Run"/> must be idempotent: it writes its output through <see cref="EcsNet.Data.AtomicFile"/>
/// (temporary file + rename), so running it again — a job redelivered after the node that had it was lost —
/// writes the same bytes to the same file and never leaves a torn one.
/// </para>
/// </summary>
public interface IImageJob
{
    /// <summary>The image the job is about (the VOC id); names it in errors and shards it in a cluster.</summary>
    string ImageId { get; }

    /// <summary>The file the job writes.</summary>
    string OutputPath { get; }

    /// <summary>Checks every field; throws <see cref="EcsNet.Data.BadInputException"/> naming the job's image and the field.</summary>
    void Validate();

    /// <summary>Computes and writes the output; returns what was written and how long it took.</summary>
    ImageJobResult Run(CancellationToken cancellationToken = default);
}

/// <summary>What a finished job reports: its image, the file it wrote, the seconds it took and where it ran.</summary>
/// <param name="Node">Where the job ran: <see cref="LocalImageJobRunner.NodeName"/> in process, a cluster node's
/// address otherwise; empty until a runner fills it in.</param>
public sealed record ImageJobResult(string ImageId, string OutputPath, double Seconds, string Node = "");

/// <summary>Reports each finished job: how many are done out of how many, and the one that just finished.</summary>
public delegate void ImageJobProgress(int done, int total, ImageJobResult finished);

/// <summary>
/// Runs a stage's jobs: in process (<see cref="LocalImageJobRunner"/>) or spread over a cluster's nodes (the
/// sharded runner of EcsNet.Cluster). Either way every job's output is written once the returned task completes,
/// and local and cluster runs of the same jobs write the same bytes.
/// </summary>
public interface IImageJobRunner
{
    /// <summary>
    /// Runs every job and returns their results in the order of <paramref name="jobs"/>. Fails with the first job
    /// that could not be done, naming its image (and node): a <see cref="EcsNet.Data.BadInputException"/> for bad
    /// input, an <see cref="ImageJobFailedException"/> otherwise.
    /// </summary>
    Task<IReadOnlyList<ImageJobResult>> RunAsync(IReadOnlyList<IImageJob> jobs, ImageJobProgress? progress = null,
        CancellationToken cancellationToken = default);
}
