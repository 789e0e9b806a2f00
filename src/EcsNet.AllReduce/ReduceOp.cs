namespace EcsNet.AllReduce;

/// <summary>What an all-reduce computes.</summary>
public enum ReduceOp
{
    Sum,

    /// <summary>Sum divided by the world size (once, by the segment's owner, so replicas stay bit-identical).</summary>
    Average,
}
