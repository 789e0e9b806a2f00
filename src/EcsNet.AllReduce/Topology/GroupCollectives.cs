using EcsNet.AllReduce.Ring;

namespace EcsNet.AllReduce.Topology;

/// <summary>Chooses the data plane of a generation from its members' hosts and the job's <see cref="Transport"/>.</summary>
public static class GroupCollectives
{
    /// <summary>
    /// Joins the collectives of <paramref name="generation"/> as rank <paramref name="rank"/>:
    /// the gRPC ring when <see cref="RingOptions.Transport"/> is <see cref="Transport.Grpc"/> or no two ranks share
    /// a host, otherwise a <see cref="TopologyAllReduce"/> (shared memory inside each host).
    /// </summary>
    /// <exception cref="InvalidOperationException">Transport <see cref="Transport.Shm"/> and the ranks are on more than one host.</exception>
    public static IGroupCollective Join(PeerServer? server, long generation, int rank, IReadOnlyList<RingMember> members, RingOptions? options = null)
    {
        options ??= new RingOptions();
        options.Validate();
        if (options.Transport == Transport.Grpc || members.Count <= 1)
            return RingAllReduce.Join(server, generation, rank, members, options);
        if (rank < 0 || rank >= members.Count)
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"rank must be in [0, {members.Count})");
        for (var i = 0; i < members.Count; i++)
            if (members[i].Rank != i)
                throw new ArgumentException($"members[{i}] has rank {members[i].Rank}; members must be listed in rank order", nameof(members));
        var hosts = Hosts(members);
        if (options.Transport == Transport.Shm && hosts.Count > 1)
            throw new InvalidOperationException($"--transport shm needs every rank on one host, but generation {generation} spans {hosts.Count}: " +
                                                string.Join("; ", hosts.Select(h => $"{HostName(h[0])} has rank{(h.Count > 1 ? "s" : "")} {string.Join(", ", h.Select(m => m.Rank))}")) +
                                                " (use --transport auto)");
        if (hosts.All(h => h.Count == 1))
            return RingAllReduce.Join(server, generation, rank, members, options);
        return new TopologyAllReduce(server, generation, rank, members.ToArray(), hosts, options);
    }

    /// <summary>
    /// The members grouped by host, each group in rank order, groups ordered by their lowest rank. A member with
    /// no host id is a host of its own.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<RingMember>> Hosts(IReadOnlyList<RingMember> members) =>
        members.OrderBy(m => m.Rank)
            .GroupBy(m => string.IsNullOrEmpty(m.Host) ? $"\0{m.Rank}" : m.Host)
            .Select(g => (IReadOnlyList<RingMember>)g.ToArray())
            .OrderBy(g => g[0].Rank)
            .ToArray();

    private static string HostName(RingMember member) => string.IsNullOrEmpty(member.Host) ? member.Address : member.Host;
}
