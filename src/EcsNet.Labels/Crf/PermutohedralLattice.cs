using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using EcsNet.Data;

namespace EcsNet.Labels.Crf;

/// <summary>One (index, weight) pair of the sparse splat/slice matrices of a <see cref="PermutohedralLattice"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct LatticeEntry(int Index, float Weight);

/// <summary>
/// The permutohedral lattice of Adams, Baek &amp; Davis (2010), "Fast High-Dimensional Filtering Using the
/// Permutohedral Lattice", in the variant Krähenbühl &amp; Koltun (2011) use for the dense CRF: every point is
/// splatted with barycentric weights onto the d+1 vertices of its enclosing simplex, the vertex values are
/// blurred with [1/2, 1, 1/2] along each of the d+1 lattice axes (missing neighbours count as zero), and sliced
/// back with the same weights times α = 1/(1+2^-d). The result approximates Σ_j exp(-½‖f_i - f_j‖²) v_j up to
/// a constant factor, in O(N·d²) instead of O(N²).
/// </summary>
/// <remarks>
/// Built once per feature set; <see cref="Filter"/> can then be applied to any number of value channels.
/// The dense CRF drives the same structures (per-point simplex entries, blur neighbours) with label-vectorised
/// loops of its own; see <see cref="DenseCrf"/>.
/// </remarks>
public sealed class PermutohedralLattice
{
    /// <summary>Largest feature dimension supported: keys are packed as 16-bit coordinates into 128 bits.</summary>
    public const int MaxDimensions = 8;

    /// <summary>Remainder-0 coordinates are kept within ±30000 so that every key and blur neighbour fits its 16-bit field.</summary>
    private const int KeyLimit = 30000;

    /// <summary>log2 of the simplex cache size used while building (4096 simplices, about 200 KB for d = 5).</summary>
    private const int SimplexCacheBits = 12;

    private PermutohedralLattice(int points, int dimensions, int vertices, LatticeEntry[] slice, int[] blurNeighbours)
    {
        PointCount = points;
        Dimensions = dimensions;
        VertexCount = vertices;
        Slice = slice;
        BlurNeighbours = blurNeighbours;
    }

    /// <summary>Number of filtered points N.</summary>
    public int PointCount { get; }

    /// <summary>Feature dimension d.</summary>
    public int Dimensions { get; }

    /// <summary>Number of lattice vertices M touched by the points.</summary>
    public int VertexCount { get; }

    /// <summary>The slicing constant α = 1/(1+2^-d) of Krähenbühl's implementation (undoes the blur's gain).</summary>
    public float Alpha => 1f / (1f + MathF.Pow(2f, -Dimensions));

    /// <summary>
    /// Per point, its d+1 simplex vertices (vertex index, barycentric weight): [N][d+1]. Splatting scatters
    /// along these entries, slicing gathers along them.
    /// </summary>
    internal LatticeEntry[] Slice { get; }

    /// <summary>
    /// For axis j and vertex i, the two neighbours along the axis at [(j·M + i)·2] and [(j·M + i)·2 + 1];
    /// a missing neighbour is M, the index of an all-zero row kept after the real vertices.
    /// </summary>
    internal int[] BlurNeighbours { get; }

    /// <summary>
    /// Builds the lattice for N points with d features each, <paramref name="features"/> laid out [N][d]
    /// (already divided by the kernel's standard deviations).
    /// </summary>
    public static unsafe PermutohedralLattice Build(ReadOnlySpan<float> features, int points, int dimensions, bool parallel = false)
    {
        if (dimensions < 1 || dimensions > MaxDimensions)
            throw new BadInputException("permutohedral lattice", $"feature dimension {dimensions} is outside 1..{MaxDimensions}");
        if (points < 1)
            throw new BadInputException("permutohedral lattice", $"needs at least one point, got {points}");
        if (features.Length != (long)points * dimensions)
            throw new BadInputException("permutohedral lattice", $"features hold {features.Length} values, expected {points}×{dimensions} = {(long)points * dimensions}");

        int d = dimensions, d1 = d + 1;
        var slice = new LatticeEntry[points * d1];
        // Points are split into contiguous parts, each hashed into its own table (in parallel when asked), and
        // the tables merged. Vertex numbering then differs from a sequential build but nothing depends on it:
        // splatting still sums each vertex's contributions in point order.
        int parts = parallel ? Math.Clamp(points / 16384, 1, Environment.ProcessorCount) : 1;
        var tables = new LatticeHashTable[parts];
        fixed (float* featureBase = features)
        fixed (LatticeEntry* sliceBase = slice)
        {
            nint f = (nint)featureBase, sl = (nint)sliceBase;
            int Start(int t) => (int)((long)points * t / parts);
            if (parts == 1)
                tables[0] = BuildRange((float*)f, (LatticeEntry*)sl, d, 0, points);
            else
                ParallelRanges.Tasks(parts, parts, t => tables[t] = BuildRange((float*)f, (LatticeEntry*)sl, d, Start(t), Start(t + 1)));

            if (parts > 1)
            {
                var merged = tables[0];
                var remap = new int[parts][];
                for (int t = 1; t < parts; t++)
                {
                    remap[t] = new int[tables[t].Count];
                    for (int i = 0; i < remap[t].Length; i++)
                        remap[t][i] = merged.FindOrAdd(tables[t].KeyAt(i));
                }
                ParallelRanges.Tasks(parts, parts, t =>
                {
                    if (t == 0) return;
                    var map = remap[t];
                    var entries = (LatticeEntry*)sl;
                    for (long e = (long)Start(t) * d1, end = (long)Start(t + 1) * d1; e < end; e++)
                        entries[e] = new LatticeEntry(map[entries[e].Index], entries[e].Weight);
                });
                tables[0] = merged;
            }
        }

        var table = tables[0];
        int m = table.Count;
        var neighbours = BuildNeighbours(table, d, m, parallel);
        return new PermutohedralLattice(points, d, m, slice, neighbours);
    }

    /// <summary>Simplex vertices and barycentric weights of points [lo, hi), hashed into a new table.</summary>
    [SkipLocalsInit]
    private static unsafe LatticeHashTable BuildRange(float* featureBase, LatticeEntry* sliceBase, int d, int lo, int hi)
    {
        int d1 = d + 1;
        // Start small and grow: the table then stays about twice the vertex count (often far below N) and cache-resident.
        var table = new LatticeHashTable(Math.Min(hi - lo, 2048));
        float* scale = stackalloc float[MaxDimensions];
        float* rem0 = stackalloc float[MaxDimensions + 1];
        int* rank = stackalloc int[MaxDimensions + 1];
        float* geometry = stackalloc float[GeoRows * 8];
        int* byRank = stackalloc int[MaxDimensions + 1];
        float* bary = stackalloc float[MaxDimensions + 2];
        int* lastRem0 = stackalloc int[MaxDimensions + 1];
        int* lastRank = stackalloc int[MaxDimensions + 1];
        bool haveLast = false;
        var cacheKeys = new ulong[3 << SimplexCacheBits];
        var cacheIndices = new int[d1 << SimplexCacheBits];
        Array.Fill(cacheKeys, ulong.MaxValue, 2 << SimplexCacheBits, 1 << SimplexCacheBits); // no rank code is all ones

        // Adams et al. 2010 p.5-6: scale so that the lattice blur has the standard deviation of a unit Gaussian;
        // computed in double and rounded to float as the reference does.
        float invStdDev = (float)(Math.Sqrt(2.0 / 3.0) * d1);
        for (int i = 0; i < d; i++)
            scale[i] = (float)(1.0 / Math.Sqrt((double)(i + 2) * (i + 1)) * invStdDev);
        var ones = LatticeKey.Step(d, 1);

        fixed (ulong* cacheKeyBase = cacheKeys)
        fixed (int* cacheIndex = cacheIndices)
        {
            ulong* cacheLo = cacheKeyBase, cacheHi = cacheKeyBase + (1 << SimplexCacheBits), cacheRank = cacheKeyBase + (2 << SimplexCacheBits);
            for (int p0 = lo; p0 < hi; p0 += 8)
            {
                int count = Math.Min(8, hi - p0);
                Geometry8(featureBase + (long)p0 * d, count, d, scale, geometry);
                for (int lane = 0; lane < count; lane++)
                {
                    int p = p0 + lane;
                    for (int i = 0; i <= d; i++)
                    {
                        rem0[i] = geometry[(GeoRem0 + i) * 8 + lane];
                        rank[i] = (int)geometry[(GeoRank + i) * 8 + lane];
                    }

                    // Barycentric coordinates (Adams et al. p.10).
                    for (int i = 0; i <= d + 1; i++) bary[i] = 0;
                    for (int i = 0; i <= d; i++)
                    {
                        float v = geometry[(GeoOffset + i) * 8 + lane];
                        bary[d - rank[i]] += v;
                        bary[d - rank[i] + 1] -= v;
                    }
                    bary[0] += 1f + bary[d1];

                    LatticeEntry* entries = sliceBase + (long)p * d1;

                    // Neighbouring points along a scan line usually fall into the same simplex: reuse its vertices.
                    bool same = haveLast;
                    for (int i = 0; i <= d && same; i++)
                        same = lastRank[i] == rank[i] && lastRem0[i] == (int)rem0[i];
                    if (same)
                    {
                        for (int r = 0; r <= d; r++)
                            entries[r] = new LatticeEntry(entries[r - d1].Index, bary[r]);
                        continue;
                    }

                    ulong rankCode = 0;
                    for (int i = 0; i <= d; i++)
                    {
                        int k = (int)rem0[i];
                        if (k < -KeyLimit || k > KeyLimit)
                            throw new BadInputException("permutohedral lattice", $"feature values too large for the lattice (point {p}); scale the features down");
                        lastRem0[i] = k;
                        lastRank[i] = rank[i];
                        byRank[rank[i]] = i;
                        rankCode |= (ulong)rank[i] << (4 * i);
                    }
                    var key = LatticeKey.Pack(lastRem0, d);

                    // Simplices recur (the pixel above, the same colour elsewhere): a direct-mapped cache from
                    // (remainder-0 point, rank order) to the d+1 vertex indices saves most hash look-ups.
                    int slot = (int)((key.Mix() ^ (rankCode * 0xD6E8FEB86659FD93UL)) >> (64 - SimplexCacheBits));
                    int* cached = cacheIndex + slot * d1;
                    if (cacheLo[slot] == key.Lo && cacheHi[slot] == key.Hi && cacheRank[slot] == rankCode)
                    {
                        for (int r = 0; r <= d; r++)
                            entries[r] = new LatticeEntry(cached[r], bary[r]);
                        haveLast = true;
                    continue;
                }

                // Vertex 0 is the remainder-0 point itself; going from vertex r−1 to r adds 1 to every coordinate
                // except the one of rank d+1−r, which loses d (the canonical simplex of Adams et al.).
                cacheLo[slot] = key.Lo;
                cacheHi[slot] = key.Hi;
                cacheRank[slot] = rankCode;
                cached[0] = table.FindOrAdd(key);
                entries[0] = new LatticeEntry(cached[0], bary[0]);
                for (int r = 1; r <= d; r++)
                {
                    key = key.Add(ones);
                    int switching = byRank[d1 - r];
                    if (switching < d) key = key.Subtract(LatticeKey.Coordinate(switching, d1));
                    cached[r] = table.FindOrAdd(key);
                    entries[r] = new LatticeEntry(cached[r], bary[r]);
                }
                haveLast = true;
                }
            }
        }
        return table;
    }

    // Rows of the per-block geometry scratch, 8 lanes each: remainder-0 point, rank, and the barycentric offsets
    // (elevated − remainder-0)/(d+1), each d+1 rows.
    private const int GeoRem0 = 0, GeoRank = MaxDimensions + 1, GeoOffset = 2 * (MaxDimensions + 1), GeoRows = 3 * (MaxDimensions + 1);

    /// <summary>
    /// The simplex geometry of up to 8 points at once (one SIMD lane each): elevation, nearest remainder-0 point,
    /// rank order and barycentric offsets, with the same float operations in the same order as the per-point
    /// formulas (so results are identical). Writes the GeoRem0/GeoRank/GeoOffset rows of <paramref name="geometry"/>.
    /// </summary>
    [SkipLocalsInit]
    private static unsafe void Geometry8(float* features, int count, int d, float* scale, float* geometry)
    {
        int d1 = d + 1;
        Vector256<float>* f = stackalloc Vector256<float>[MaxDimensions];
        Vector256<float>* elevated = stackalloc Vector256<float>[MaxDimensions + 1];
        Vector256<float>* rem0 = stackalloc Vector256<float>[MaxDimensions + 1];
        Vector256<float>* rank = stackalloc Vector256<float>[MaxDimensions + 1];
        Vector256<float>* residual = stackalloc Vector256<float>[MaxDimensions + 1];
        float* lanes = stackalloc float[8 * MaxDimensions];

        // Points are [N][d]; lanes want [d][8].
        for (int k = 0; k < 8; k++)
            for (int j = 0; j < d; j++)
                lanes[j * 8 + k] = k < count ? features[k * d + j] : 0f;
        for (int j = 0; j < d; j++)
            f[j] = Vector256.Load(lanes + j * 8);

        // Elevate onto the plane x·1 = 0 in d+1 dimensions (y = E f).
        var sm = Vector256<float>.Zero;
        for (int j = d; j > 0; j--)
        {
            var cf = f[j - 1] * Vector256.Create(scale[j - 1]);
            elevated[j] = sm - Vector256.Create((float)j) * cf;
            sm += cf;
        }
        elevated[0] = sm;

        // Nearest remainder-0 lattice point by per-coordinate rounding (ties to even, as SSE rounding).
        var down = Vector256.Create(1f / d1);
        var up = Vector256.Create((float)d1);
        var sum = Vector256<float>.Zero;
        for (int i = 0; i <= d; i++)
        {
            var v = Vector256.Round(down * elevated[i]);
            rem0[i] = v * up;
            sum += v;
            rank[i] = Vector256<float>.Zero;
            residual[i] = elevated[i] - rem0[i];
        }

        // Rank of each coordinate's remainder: which simplex of the lattice holds the point.
        var one = Vector256<float>.One;
        for (int i = 0; i < d; i++)
            for (int j = i + 1; j <= d; j++)
            {
                var below = Vector256.LessThan(residual[i], residual[j]) & one;
                rank[i] += below;
                rank[j] += one - below;
            }

        // The rounded point may be off the plane (sum ≠ 0): walk it back.
        var top = Vector256.Create((float)d);
        for (int i = 0; i <= d; i++)
        {
            var r = rank[i] + sum;
            var shift = (Vector256.LessThan(r, Vector256<float>.Zero) & up) - (Vector256.GreaterThan(r, top) & up);
            rank[i] = r + shift;
            rem0[i] += shift;
            (rem0[i]).Store(geometry + (GeoRem0 + i) * 8);
            rank[i].Store(geometry + (GeoRank + i) * 8);
            ((elevated[i] - rem0[i]) * down).Store(geometry + (GeoOffset + i) * 8);
        }
    }

    private static int[] BuildNeighbours(LatticeHashTable table, int d, int m, bool parallel)
    {
        int d1 = d + 1;
        var neighbours = new int[d1 * m * 2];
        var ones = LatticeKey.Step(d, 1);
        void Range(int lo, int hi)
        {
            for (int i = lo; i < hi; i++)
            {
                var key = table.KeyAt(i);
                for (int j = 0; j <= d; j++)
                {
                    // Lattice axis j moves coordinate j by +d and every other one by −1 (and the reverse);
                    // for j = d only the implied last coordinate moves by d.
                    var axis = j < d ? LatticeKey.Coordinate(j, d1) : default;
                    int a = table.Find(key.Subtract(ones).Add(axis));
                    int b = table.Find(key.Add(ones).Subtract(axis));
                    int at = (j * m + i) * 2;
                    neighbours[at] = a < 0 ? m : a;
                    neighbours[at + 1] = b < 0 ? m : b;
                }
            }
        }
        ParallelRanges.For(m, 2048, parallel ? Environment.ProcessorCount : 1, Range);
        return neighbours;
    }

    /// <summary>
    /// out = α · slice(blur(splat(in))) for <paramref name="valueSize"/> channels laid out [N][valueSize]
    /// (Krähenbühl's Permutohedral::compute, forward direction). Scalar reference path for tests and other
    /// callers; the CRF's inference loop has its own vectorised, fused version and uses <see cref="FilterOnes"/>.
    /// </summary>
    public void Filter(ReadOnlySpan<float> input, Span<float> output, int valueSize)
    {
        if (valueSize < 1)
            throw new BadInputException("permutohedral lattice", $"value size must be positive, got {valueSize}");
        if (input.Length != (long)PointCount * valueSize || output.Length != input.Length)
            throw new BadInputException("permutohedral lattice", $"filter needs {PointCount}×{valueSize} values in and out, got {input.Length} and {output.Length}");
        int d1 = Dimensions + 1, m = VertexCount, vs = valueSize;
        var values = new float[(m + 1) * vs];
        var next = new float[(m + 1) * vs];
        for (int p = 0; p < PointCount; p++)
        {
            var src = input.Slice(p * vs, vs);
            for (int r = 0; r < d1; r++)
            {
                var entry = Slice[p * d1 + r];
                var row = values.AsSpan(entry.Index * vs, vs);
                for (int k = 0; k < vs; k++) row[k] += entry.Weight * src[k];
            }
        }
        for (int j = 0; j <= Dimensions; j++)
        {
            for (int v = 0; v < m; v++)
            {
                int a = BlurNeighbours[(j * m + v) * 2], b = BlurNeighbours[(j * m + v) * 2 + 1];
                for (int k = 0; k < vs; k++)
                    next[v * vs + k] = values[v * vs + k] + 0.5f * (values[a * vs + k] + values[b * vs + k]);
            }
            (values, next) = (next, values);
        }
        float alpha = Alpha;
        for (int p = 0; p < PointCount; p++)
        {
            var dst = output.Slice(p * vs, vs);
            dst.Clear();
            for (int r = 0; r < d1; r++)
            {
                var entry = Slice[p * d1 + r];
                float w = entry.Weight * alpha;
                for (int k = 0; k < vs; k++) dst[k] += w * values[entry.Index * vs + k];
            }
        }
    }

    /// <summary>K·1: <see cref="Filter"/> of a constant 1 per point (the CRF's normalisation), in plain scalar loops.</summary>
    public float[] FilterOnes()
    {
        int d1 = Dimensions + 1, m = VertexCount, n = PointCount;
        var values = new float[m + 1];
        var next = new float[m + 1];
        var slice = Slice;
        for (int s = 0; s < slice.Length; s++)
            values[slice[s].Index] += slice[s].Weight;
        var nb = BlurNeighbours;
        for (int j = 0; j <= Dimensions; j++)
        {
            for (int v = 0, at = j * m * 2; v < m; v++, at += 2)
                next[v] = values[v] + 0.5f * (values[nb[at]] + values[nb[at + 1]]);
            (values, next) = (next, values);
        }
        float alpha = Alpha;
        var result = new float[n];
        for (int p = 0, s = 0; p < n; p++)
        {
            float sum = 0;
            for (int r = 0; r < d1; r++, s++)
                sum += slice[s].Weight * alpha * values[slice[s].Index];
            result[p] = sum;
        }
        return result;
    }

    /// <summary>
    /// A lattice vertex key: its first d coordinates (the last is implied) as biased 16-bit fields, four per ulong.
    /// While every field stays in range, adding or subtracting packed steps is exact field-wise arithmetic.
    /// </summary>
    private readonly record struct LatticeKey(ulong Lo, ulong Hi)
    {
        private const int Bias = 1 << 15;

        public static unsafe LatticeKey Pack(int* coordinates, int d)
        {
            ulong lo = 0, hi = 0;
            for (int i = 0; i < d; i++)
            {
                ulong field = (ulong)(coordinates[i] + Bias);
                if (i < 4) lo |= field << (16 * i);
                else hi |= field << (16 * (i - 4));
            }
            return new LatticeKey(lo, hi);
        }

        /// <summary>The packed step that adds <paramref name="amount"/> to each of the first d coordinates.</summary>
        public static LatticeKey Step(int d, int amount)
        {
            ulong lo = 0, hi = 0;
            for (int i = 0; i < d; i++)
            {
                if (i < 4) lo += (ulong)amount << (16 * i);
                else hi += (ulong)amount << (16 * (i - 4));
            }
            return new LatticeKey(lo, hi);
        }

        /// <summary>The packed step that adds <paramref name="amount"/> to coordinate i only.</summary>
        public static LatticeKey Coordinate(int i, int amount) =>
            i < 4 ? new LatticeKey((ulong)amount << (16 * i), 0) : new LatticeKey(0, (ulong)amount << (16 * (i - 4)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public LatticeKey Add(LatticeKey step) => new(Lo + step.Lo, Hi + step.Hi);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public LatticeKey Subtract(LatticeKey step) => new(Lo - step.Lo, Hi - step.Hi);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ulong Mix() => (Lo * 0x9E3779B97F4A7C15UL) ^ ((Hi + 0x632BE59BD9B4E019UL) * 0xC2B2AE3D27D4EB4FUL);
    }

    /// <summary>Open-addressing hash from vertex key to dense vertex index, in insertion order.</summary>
    private sealed class LatticeHashTable
    {
        private int[] slots; // vertex index + 1, 0 = empty
        private LatticeKey[] keys;
        private int mask, shift;

        public LatticeHashTable(int expected)
        {
            int capacity = 1 << Math.Max(4, (int)Math.Ceiling(Math.Log2(expected * 2.0)));
            slots = new int[capacity];
            keys = new LatticeKey[Math.Max(16, expected)];
            mask = capacity - 1;
            shift = 64 - System.Numerics.BitOperations.Log2((uint)capacity);
        }

        public int Count { get; private set; }

        public LatticeKey KeyAt(int index) => keys[index];

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private int Home(LatticeKey key) => (int)(key.Mix() >> shift);

        public int Find(LatticeKey key)
        {
            for (int h = Home(key); ; h = (h + 1) & mask)
            {
                int s = slots[h];
                if (s == 0) return -1;
                if (keys[s - 1] == key) return s - 1;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int FindOrAdd(LatticeKey key)
        {
            for (int h = Home(key); ; h = (h + 1) & mask)
            {
                int s = slots[h];
                if (s == 0)
                    return Add(key, h);
                if (keys[s - 1] == key) return s - 1;
            }
        }

        private int Add(LatticeKey key, int slot)
        {
            if (Count == keys.Length) Array.Resize(ref keys, keys.Length * 2);
            keys[Count] = key;
            slots[slot] = ++Count;
            if (Count * 2 > slots.Length) Grow();
            return Count - 1;
        }

        private void Grow()
        {
            slots = new int[slots.Length * 2];
            mask = slots.Length - 1;
            shift--;
            for (int v = 0; v < Count; v++)
            {
                int h = Home(keys[v]);
                while (slots[h] != 0) h = (h + 1) & mask;
                slots[h] = v + 1;
            }
        }
    }
}
