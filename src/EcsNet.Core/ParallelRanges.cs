namespace EcsNet.Core;

/// <summary>Splits [0, count) into chunks and runs them on up to <c>degree</c> threads (inline when degree is 1).</summary>
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
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = degree }, c =>
        {
            int lo = c * chunk;
            body(lo, Math.Min(count, lo + chunk));
        });
    }
}
