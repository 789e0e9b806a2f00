using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.Wire;

namespace EcsNet.AllReduce.Rendezvous;

/// <summary>A rank lost when a generation formed (its rank in <paramref name="Generation"/>, the one before), and why.</summary>
public sealed record LostRankInfo(long Generation, int Rank, string Address, string Reason, string WorkerId = "")
{
    public override string ToString() => $"rank {Rank} ({Address}) of generation {Generation}: {Reason}";

    internal static LostRankInfo From(LostRank lost) => new(lost.Generation, lost.Rank, lost.Address, lost.Reason, lost.WorkerId);
}

/// <summary>
/// One membership generation as a worker sees it: its rank, the ring order (members[i] has rank i), and the
/// ranks lost since the previous generation. Rank −1: this worker is not a member.
/// </summary>
public sealed record GenerationInfo(long Number, int Rank, IReadOnlyList<RingMember> Members, IReadOnlyList<LostRankInfo> Lost)
{
    public int WorldSize => Members.Count;

    internal static GenerationInfo From(Generation generation) => new(
        generation.Number,
        generation.YourRank,
        generation.Members.OrderBy(m => m.Rank).Select(m => new RingMember(m.Rank, m.Address, m.Device, m.Host)).ToArray(),
        generation.Lost.Select(LostRankInfo.From).ToArray());
}
