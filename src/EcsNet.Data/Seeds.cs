namespace EcsNet.Data;

/// <summary>
/// Seeds derived from a run's seed: a training step's randomness (batch order, each sample's augmentation,
/// dropout) is a pure function of (seed, step, position), so resuming at any step, or splitting a batch over
/// data-parallel ranks, replays exactly what one uninterrupted process does.
/// </summary>
public static class Seeds
{
    /// <summary>A deterministic, well-mixed non-negative seed from (seed, a, b) (FNV-1a over the three, with an extra shift-xor).</summary>
    public static int Mix(int seed, int a, int b)
    {
        unchecked
        {
            ulong h = 1469598103934665603UL;
            foreach (var v in new[] { seed, a, b })
            {
                h ^= (uint)v;
                h *= 1099511628211UL;
                h ^= h >> 29;
            }
            return (int)(h & 0x7fffffff);
        }
    }
}
