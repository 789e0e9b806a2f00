namespace EcsNet.AllReduce.Ring;

/// <summary>
/// One place in the ring: rank r sends to rank r+1 and receives from rank r−1 (mod world size).
/// <paramref name="Host"/> says which members share a machine (<see cref="SharedMemory.HostIdentity"/>); empty:
/// a host of its own.
/// </summary>
public sealed record RingMember(int Rank, string Address, string Device = "cpu", string Host = "")
{
    public override string ToString() => $"rank {Rank} ({Address})";
}
