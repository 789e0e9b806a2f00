using System.Security.Cryptography.X509Certificates;
using EcsNet.Cluster.Hosting;
using EcsNet.Data;
using k8s;

namespace EcsNet.Cluster.Discovery;

/// <summary>One node found by discovery: where its Akka remoting listens.</summary>
public sealed record DiscoveredNode(string Host, int Port);

/// <summary>Finds the nodes of this cluster (<see cref="DiscoveryJoiner"/> asks every few seconds until the node is in).</summary>
public interface INodeDiscovery : IDisposable
{
    Task<IReadOnlyList<DiscoveredNode>> LookupAsync(CancellationToken ct);

    /// <summary>The discovery <paramref name="options"/> ask for.</summary>
    public static INodeDiscovery Create(EcsNetDiscoveryOptions options) =>
        options.IsKubernetes ? new KubernetesPodDiscovery(options) : new FixedNodeDiscovery(options.Endpoints);
}

/// <summary>A fixed list of <c>host:port</c> endpoints (docker compose, bare machines, tests).</summary>
public sealed class FixedNodeDiscovery(IEnumerable<string> endpoints) : INodeDiscovery
{
    private readonly IReadOnlyList<DiscoveredNode> nodes = endpoints.Select(e =>
    {
        int colon = e.LastIndexOf(':');
        return new DiscoveredNode(e[..colon], int.Parse(e[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }).ToList();

    public Task<IReadOnlyList<DiscoveredNode>> LookupAsync(CancellationToken ct) => Task.FromResult(nodes);

    public void Dispose()
    {
    }
}

/// <summary>
/// The pods of this cluster through the Kubernetes API (KubernetesClient): the pods in the namespace that match the
/// label selector, are not being deleted and have an IP, each with its container port named
/// <see cref="EcsNetDiscoveryOptions.PortName"/>. Readiness is not asked for: a node becomes ready only once it is in
/// the cluster. In a pod the API server, token, CA and namespace come from the service account
/// (<see cref="EcsNetDiscoveryOptions.ServiceAccountDir"/>, <c>KUBERNETES_SERVICE_HOST</c>/<c>_PORT</c>); the token is
/// read again for every lookup, as bound tokens are rotated.
/// </summary>
public sealed class KubernetesPodDiscovery : INodeDiscovery
{
    private readonly EcsNetDiscoveryOptions options;

    public KubernetesPodDiscovery(EcsNetDiscoveryOptions options) => this.options = options;

    public async Task<IReadOnlyList<DiscoveredNode>> LookupAsync(CancellationToken ct)
    {
        var dir = options.ServiceAccountDir;
        var server = options.ApiServer ?? (Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST") is { Length: > 0 } host
            ? $"https://{(host.Contains(':') ? $"[{host}]" : host)}:{Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_PORT") ?? "443"}"
            : throw new BadInputException("EcsNet:Node:Discovery", "not in a Kubernetes pod (no KUBERNETES_SERVICE_HOST) and no ApiServer given"));
        var ns = options.Namespace is { Length: > 0 } n ? n : ReadFile(Path.Combine(dir, "namespace"));
        var config = new KubernetesClientConfiguration
        {
            Host = server,
            AccessToken = ReadFile(Path.Combine(dir, "token")),
            SslCaCerts = new X509Certificate2Collection(X509CertificateLoader.LoadCertificateFromFile(Path.Combine(dir, "ca.crt"))),
        };
        using var client = new Kubernetes(config);
        var pods = await client.CoreV1.ListNamespacedPodAsync(ns, labelSelector: options.PodLabelSelector, cancellationToken: ct);
        return pods.Items
            .Where(p => p.Metadata?.DeletionTimestamp is null && !string.IsNullOrEmpty(p.Status?.PodIP) && p.Status?.Phase is "Running" or "Pending")
            .SelectMany(p => (p.Spec?.Containers ?? []).SelectMany(c => c.Ports ?? [])
                .Where(port => port.Name == options.PortName)
                .Select(port => new DiscoveredNode(p.Status!.PodIP, port.ContainerPort)))
            .ToList();
    }

    private static string ReadFile(string path) =>
        File.Exists(path) ? File.ReadAllText(path).Trim()
        : throw new BadInputException(path, "not found: the pod needs its service account (automountServiceAccountToken) for discovery");

    public void Dispose()
    {
    }
}
