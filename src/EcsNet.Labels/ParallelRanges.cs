using System.Runtime.ExceptionServices;
using EcsNet.Data;

namespace EcsNet.Labels;

/// <summary>
/// Splits [0, count) into chunks and runs them on up to <c>degree</c> threads (inline when degree is 1). Bad input
/// found on a worker (and cancellation) surfaces as the original exception, not wrapped in an AggregateException.
/// </summary>
internal static class ParallelRanges
{
    public static void For(int count, int chunk, int degree, Action<int, int> body)
    {
        if (count <= 0) return;
        if (degree <= 1 || count <= chunk)
        {
            body(0, count);
            return;
        }
        int chunks = (count + chunk - 1) / chunk;
        Tasks(chunks, degree, c =>
        {
            int lo = c * chunk;
            body(lo, Math.Min(count, lo + chunk));
        });
    }

    /// <summary>Runs body(0..count−1) on up to <paramref name="degree"/> threads.</summary>
    public static void Tasks(int count, int degree, Action<int> body)
    {
        if (degree <= 1 || count <= 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        try
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = degree }, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is BadInputException or OperationCanceledException) is { } bad)
        {
            ExceptionDispatchInfo.Throw(bad);
        }
    }
}
