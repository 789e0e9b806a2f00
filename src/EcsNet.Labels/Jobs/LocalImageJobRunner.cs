using EcsNet.Data;

namespace EcsNet.Labels.Jobs;

/// <summary>
/// Runs jobs in this process, several at once on the thread pool (what <c>ecsnet pipeline</c> does on one
/// machine). The first failing job stops the rest from starting and is reported naming its image.
/// </summary>
public sealed class LocalImageJobRunner : IImageJobRunner
{
    /// <summary>What <see cref="ImageJobResult.Node"/> says for jobs run here.</summary>
    public const string NodeName = "local";

    private readonly int maxDegreeOfParallelism;

    /// <param name="maxDegreeOfParallelism">Jobs at once; 0 runs one per core.</param>
    public LocalImageJobRunner(int maxDegreeOfParallelism = 0)
    {
        if (maxDegreeOfParallelism < 0)
            throw new BadInputException("local job runner", $"degree of parallelism must be ≥ 0, got {maxDegreeOfParallelism}");
        this.maxDegreeOfParallelism = maxDegreeOfParallelism == 0 ? Environment.ProcessorCount : maxDegreeOfParallelism;
    }

    /// <summary>One job per core.</summary>
    public static LocalImageJobRunner Default { get; } = new();

    public async Task<IReadOnlyList<ImageJobResult>> RunAsync(IReadOnlyList<IImageJob> jobs, ImageJobProgress? progress = null,
        CancellationToken cancellationToken = default)
    {
        var results = new ImageJobResult[jobs.Count];
        int done = 0;
        var options = new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism, CancellationToken = cancellationToken };
        await Parallel.ForEachAsync(Enumerable.Range(0, jobs.Count), options, (i, ct) =>
        {
            var result = RunOne(jobs[i], ct) with { Node = NodeName };
            results[i] = result;
            progress?.Invoke(Interlocked.Increment(ref done), jobs.Count, result);
            return ValueTask.CompletedTask;
        }).ConfigureAwait(false);
        return results;
    }

    /// <summary>Runs one job, turning its failure into an error that names the image (as a cluster runner's does).</summary>
    public static ImageJobResult RunOne(IImageJob job, CancellationToken cancellationToken = default)
    {
        try
        {
            return job.Run(cancellationToken);
        }
        catch (BadInputException e)
        {
            throw new BadInputException($"image {job.ImageId}", e.Message, e);
        }
        catch (Exception e) when (e is not (BadInputException or OperationCanceledException or OutOfMemoryException))
        {
            throw new ImageJobFailedException(job.ImageId, NodeName, $"{e.GetType().Name}: {e.Message}", e);
        }
    }
}
