namespace EcsNet.AllReduce.Ring;

/// <summary>One place in the ring: rank r sends to rank r+1 and receives from rank r−1 (mod world size).</summary>
public sealed record RingMember(int Rank, string Address, string Device = "cpu")
{
    public override string ToString() => $"rank {Rank} ({Address})";
}
