namespace EcsNet.AllReduce.DataParallel;

/// <summary>
/// Timings of one synchronised backward: <see cref="BackwardSeconds"/> is <c>loss.backward()</c> (with the
/// overlapped communication running beside it), <see cref="WaitSeconds"/> the communication still left
/// after backward returned (the part not hidden), <see cref="CommunicationSeconds"/> the summed duration
/// of the bucket all-reduces.
/// </summary>
public sealed record DataParallelStats(
    double BackwardSeconds,
    double WaitSeconds,
    double CommunicationSeconds,
    int Buckets,
    int BucketsStartedDuringBackward)
{
    /// <summary>Gradient bytes all-reduced (every bucket's floats).</summary>
    public long Bytes { get; init; }
}
