using EcsNet.Data;

namespace EcsNet.Cluster;

/// <summary>
/// What a node does. A node may carry several roles; the embedded default (one process) carries all three.
/// Role names are plain lower-case words: Akka.Hosting writes them into HOCON unquoted.
/// </summary>
public static class ClusterRoles
{
    /// <summary>Runs the pipeline and, later, the training coordinator singleton (the gRPC rendezvous).</summary>
    public const string Coordinator = "coordinator";

    /// <summary>Trains on its devices (worker actors, one per device) — added with the training actors.</summary>
    public const string Worker = "worker";

    /// <summary>Hosts the per-image job entities (CRF labels, la/ha maps, random-walk propagation). Torch-free.</summary>
    public const string Preprocess = "preprocess";

    public static IReadOnlyList<string> All { get; } = new[] { Coordinator, Worker, Preprocess };

    /// <summary>Parses a comma-separated role list; an unknown role is bad input naming <paramref name="subject"/>.</summary>
    public static string[] Parse(string text, string subject)
    {
        var roles = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(r => r.ToLowerInvariant()).Distinct().ToArray();
        Check(roles, subject);
        return roles;
    }

    public static void Check(IEnumerable<string> roles, string subject)
    {
        foreach (var role in roles)
            if (!All.Contains(role))
                throw new BadInputException(subject, $"unknown role '{role}'; the roles are {string.Join(", ", All)}");
    }
}
