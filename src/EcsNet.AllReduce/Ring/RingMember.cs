namespace EcsNet.AllReduce.Ring;

/// <summary>
/// One place in the ring: rank r sends to rank r+1 and receives from rank r−1 (mod world size).
/// <paramref name="Host"/> says which members share a machine (<see cref="SharedMemory.HostIdentity"/>); empty:
/// a host of its own.
/// </summary>
public sealed record RingMember(int Rank, string Address, string Device = "cpu", string Host = "")
{
    public override string ToString() => $"rank {Rank} ({Address})";

    /// <summary>
    /// The member with rank <paramref name="rank"/> (null for −1); a rank of the generation that is not among
    /// <paramref name="members"/> (e.g. on another host) is named without an address.
    /// </summary>
    internal static RingMember? Find(IEnumerable<RingMember> members, int rank) =>
        rank < 0 ? null : members.FirstOrDefault(m => m.Rank == rank) ?? new RingMember(rank, "");
}
