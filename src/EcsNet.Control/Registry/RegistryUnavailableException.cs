namespace EcsNet.Control.Registry;

/// <summary>
/// The run registry's database could not do what was asked (server down, refused login, unreadable file, a schema
/// newer than this host knows). The message names the registry and the operation and never holds a password:
/// <c>run registry (postgres db.example:5432/ecsnet): cannot list runs: Failed to connect to ...</c>.
/// </summary>
public sealed class RegistryUnavailableException(string registry, string operation, string reason, Exception? inner = null)
    : Exception($"run registry ({registry}): cannot {operation}: {reason}", inner)
{
    /// <summary>The registry as <see cref="SqlRunRegistry.Description"/> names it (kind and place, no secrets).</summary>
    public string Registry { get; } = registry;

    /// <summary>What the registry was asked to do (e.g. <c>read run r-1</c>).</summary>
    public string Operation { get; } = operation;

    /// <summary>Why it could not, as the database driver said it (password removed).</summary>
    public string Reason { get; } = reason;
}
