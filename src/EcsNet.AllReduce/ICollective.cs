using EcsNet.AllReduce.Ring;

namespace EcsNet.AllReduce;

/// <summary>
/// Collectives over a fixed group of ranks. Every rank must issue the same collectives in the same order
/// with buffers of the same length and type (checked: a mismatch fails every rank with a message naming
/// the peer). Calls on one instance run one at a time, in call order.
/// </summary>
public interface ICollective
{
    int Rank { get; }

    int WorldSize { get; }

    /// <summary>
    /// Reduces <paramref name="buffer"/> in place across all ranks; every rank ends with identical bits.
    /// <paramref name="compression"/> overrides the ring's wire encoding for this call (null: the ring's).
    /// </summary>
    Task AllReduceAsync(Memory<float> buffer, ReduceOp op = ReduceOp.Sum, WireCompression? compression = null, CancellationToken cancellationToken = default);

    /// <summary>Reduces float64 values in place (never compressed).</summary>
    Task AllReduceAsync(Memory<double> buffer, ReduceOp op = ReduceOp.Sum, CancellationToken cancellationToken = default);

    /// <summary>Copies <paramref name="root"/>'s buffer into every rank's buffer (exact, never compressed).</summary>
    Task BroadcastAsync(Memory<float> buffer, int root = 0, CancellationToken cancellationToken = default);
}
