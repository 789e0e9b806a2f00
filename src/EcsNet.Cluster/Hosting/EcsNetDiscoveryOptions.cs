using EcsNet.Data;

namespace EcsNet.Cluster.Hosting;

/// <summary>
/// How a node finds the cluster without seed addresses (configuration section <c>EcsNet:Node:Discovery</c>):
/// <see cref="Kubernetes"/> lists the pods that carry <see cref="PodLabelSelector"/> through the Kubernetes API
/// (KubernetesClient) and joins them on their port named <see cref="PortName"/>; <see cref="Config"/>
/// takes a fixed list of <see cref="Endpoints"/>; <see cref="None"/>: seeds, or the node joins itself
/// (<see cref="Discovery.DiscoveryJoiner"/>, docs/DEPLOY.md).
/// </summary>
public sealed class EcsNetDiscoveryOptions
{
    public const string None = "none";
    public const string Kubernetes = "kubernetes";
    public const string Config = "config";

    /// <summary><see cref="None"/>, <see cref="Kubernetes"/> or <see cref="Config"/>.</summary>
    public string Method { get; set; } = None;

    /// <summary>Pods of this cluster, e.g. <c>app.kubernetes.io/name=ecsnet,app.kubernetes.io/instance=ecsnet</c>.</summary>
    public string PodLabelSelector { get; set; } = "app.kubernetes.io/name=ecsnet";

    /// <summary>Namespace to list pods in (empty: the pod's own, from its service account).</summary>
    public string? Namespace { get; set; }

    /// <summary>The name of the remoting port in the pod spec (its number is the node's cluster port).</summary>
    public string PortName { get; set; } = "remoting";

    /// <summary><see cref="Config"/>: the nodes' remoting endpoints, <c>host:port</c>.</summary>
    public string[] Endpoints { get; set; } = Array.Empty<string>();

    /// <summary>The pod's service account files (token, ca.crt, namespace).</summary>
    public string ServiceAccountDir { get; set; } = "/var/run/secrets/kubernetes.io/serviceaccount";

    /// <summary>The Kubernetes API server (default: from <c>KUBERNETES_SERVICE_HOST</c> and <c>KUBERNETES_SERVICE_PORT</c>).</summary>
    public string? ApiServer { get; set; }

    /// <summary>Time between lookups until the node is in the cluster.</summary>
    public TimeSpan LookupInterval { get; set; } = TimeSpan.FromSeconds(2);

    public TimeSpan LookupTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Contact points needed before the first node forms a new cluster (more: safer against forming two).</summary>
    public int RequiredContactPoints { get; set; } = 1;

    /// <summary>How long the set of contact points must stay the same before a new cluster is formed.</summary>
    public TimeSpan StableMargin { get; set; } = TimeSpan.FromSeconds(5);

    public bool IsKubernetes => string.Equals(Method, Kubernetes, StringComparison.OrdinalIgnoreCase);

    public bool IsConfig => string.Equals(Method, Config, StringComparison.OrdinalIgnoreCase);

    public bool Enabled => IsKubernetes || IsConfig;

    public void Validate(string section)
    {
        if (!string.Equals(Method, None, StringComparison.OrdinalIgnoreCase) && !Enabled)
            throw new BadInputException($"{section}:Method", $"'{Method}' is not a discovery method; use {None}, {Kubernetes} or {Config}");
        if (!Enabled)
            return;
        if (IsKubernetes && string.IsNullOrWhiteSpace(PodLabelSelector))
            throw new BadInputException($"{section}:PodLabelSelector", "is empty: the pods of this cluster cannot be told from others");
        if (IsConfig && Endpoints.Length == 0)
            throw new BadInputException($"{section}:Endpoints", "no endpoints: list the nodes as host:port");
        foreach (var e in Endpoints)
            if (e.LastIndexOf(':') is var colon && (colon <= 0 || !int.TryParse(e[(colon + 1)..], out var p) || p is < 1 or > 65535))
                throw new BadInputException($"{section}:Endpoints", $"'{e}' is not host:port");
        if (LookupInterval <= TimeSpan.Zero || LookupTimeout <= TimeSpan.Zero)
            throw new BadInputException($"{section}:LookupInterval", "the lookup interval and timeout must be positive");
        if (RequiredContactPoints < 1)
            throw new BadInputException($"{section}:RequiredContactPoints", $"must be ≥ 1, got {RequiredContactPoints}");
        if (StableMargin <= TimeSpan.Zero)
            throw new BadInputException($"{section}:StableMargin", $"must be a positive time span, got {StableMargin}");
    }
}
