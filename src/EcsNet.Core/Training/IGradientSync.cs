using static TorchSharp.torch;

namespace EcsNet.Core.Training;

/// <summary>
/// Gradient synchronisation of data-parallel training (docs/METHOD.md §7): this process is rank <see cref="Rank"/> of
/// <see cref="WorldSize"/> replicas that hold the same weights and each compute the loss of their shard of
/// the global batch. Core trainers talk to this interface only; EcsNet.AllReduce implements it over gRPC.
/// Every rank must make the same calls in the same order (they are collectives).
/// </summary>
public interface IGradientSync : IDisposable
{
    int Rank { get; }

    int WorldSize { get; }

    /// <summary>Rank 0: writes checkpoints, logs and TensorBoard events.</summary>
    bool IsRoot { get; }

    /// <summary>
    /// Starts synchronising <paramref name="module"/>'s trainable parameters. Called once, after the trainer
    /// has frozen what it freezes (frozen parameters are not synchronised).
    /// </summary>
    void Attach(nn.Module module);

    /// <summary>Copies <paramref name="root"/>'s parameters (and float buffers) of the attached module to every rank, exactly.</summary>
    void BroadcastParameters(int root = 0);

    /// <summary>Copies <paramref name="root"/>'s <paramref name="values"/> into every rank's, exactly (small state: optimizer buffers, counters).</summary>
    void Broadcast(float[] values, int root);

    /// <summary>
    /// <c>loss.backward()</c>, then every trainable parameter's gradient replaced by its average over the
    /// ranks. With equal shards and a loss that is a mean over the shard, that average is the gradient of
    /// the global batch's mean.
    /// </summary>
    void Backward(Tensor loss);

    /// <summary>Sums <paramref name="values"/> over the ranks, in place (small control data: loss terms, counts, steps).</summary>
    void SumAcrossRanks(double[] values);
}
