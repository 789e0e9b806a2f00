using EcsNet.Labels.Samples;

namespace EcsNet.Core.Training;

/// <summary>One sample of a step: which image, and the seed of its augmentation.</summary>
public readonly record struct SampleRequest(int Index, int Seed);

/// <summary>
/// Where the training loop gets its samples: made in this process (<see cref="LocalBatchSource"/>), or by
/// preprocessing actors on other nodes. A request fully determines its sample, so every source gives the
/// same samples.
/// </summary>
public interface IBatchSource : IDisposable
{
    /// <summary>Images in the training set (the step plan shuffles their indices).</summary>
    int Count { get; }

    /// <summary>
    /// The samples of <paramref name="now"/>, in order. <paramref name="next"/> are the requests of the
    /// following step, which a source may start making in the background (null at the last step).
    /// </summary>
    IReadOnlyList<TrainingSample> Take(IReadOnlyList<SampleRequest> now, IReadOnlyList<SampleRequest>? next, CancellationToken cancellationToken);
}

/// <summary>Makes the samples in this process, in order, when they are asked for.</summary>
public sealed class LocalBatchSource(ISampleSet samples) : IBatchSource
{
    public int Count => samples.Count;

    public IReadOnlyList<TrainingSample> Take(IReadOnlyList<SampleRequest> now, IReadOnlyList<SampleRequest>? next, CancellationToken cancellationToken)
    {
        var batch = new TrainingSample[now.Count];
        for (int i = 0; i < now.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            batch[i] = samples.Sample(now[i].Index, new Random(now[i].Seed));
        }
        return batch;
    }

    public void Dispose() { }
}
