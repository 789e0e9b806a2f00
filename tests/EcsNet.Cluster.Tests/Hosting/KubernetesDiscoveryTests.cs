using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Akka.Cluster;
using EcsNet.Cluster.Hosting;
using EcsNet.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace EcsNet.Cluster.Tests.Hosting;

/// <summary>
/// Cluster formation through the Kubernetes API (KubernetesClient), against a stand-in API server: HTTPS with its own CA, a service-account token, and a pod list.
/// </summary>
public sealed class KubernetesDiscoveryTests(ITestOutputHelper output)
{
    private const string Selector = "app.kubernetes.io/name=ecsnet,app.kubernetes.io/instance=test";

    private static object Pod(int port) => new
    {
        metadata = new { name = $"ecsnet-worker-{port}", @namespace = "ecsnet", labels = new Dictionary<string, string> { ["app.kubernetes.io/name"] = "ecsnet", ["app.kubernetes.io/instance"] = "test" } },
        spec = new { containers = new[] { new { name = "ecsnet", ports = new[] { new { name = "remoting", containerPort = port, protocol = "TCP" } } } } },
        status = new { phase = "Running", podIP = "127.0.0.1", conditions = new[] { new { type = "Ready", status = "True" } } },
    };

    [Fact]
    public async Task Nodes_listed_by_the_kubernetes_api_form_one_cluster()
    {
        using var dir = new TempDir();
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=kubernetes", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(dir.File("ca.crt"), cert.ExportCertificatePem());
        File.WriteAllText(dir.File("token"), "service-account-token");

        int a = FreePorts.Loopback(), b = FreePorts.Loopback();
        var asked = new ConcurrentQueue<string>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null))));
        await using var api = builder.Build();
        api.MapGet("/api/v1/namespaces/{ns}/pods", (string ns, HttpContext http) =>
        {
            asked.Enqueue($"{ns} {http.Request.Query["labelSelector"]} {http.Request.Headers.Authorization}");
            return Results.Text(JsonSerializer.Serialize(new { kind = "PodList", apiVersion = "v1", metadata = new { }, items = new[] { Pod(a), Pod(b) } }), "application/json");
        });
        await api.StartAsync();
        var apiPort = new Uri(api.Urls.Single()).Port;
        // the service account a pod gets: token, the API server's CA, the namespace
        File.WriteAllText(dir.File("namespace"), "ecsnet");
        void Discovered(EcsNetNodeOptions o, int port)
        {
            o.Port = port;
            o.Discovery = new EcsNetDiscoveryOptions
            {
                Method = "kubernetes", PodLabelSelector = Selector, RequiredContactPoints = 2,
                ServiceAccountDir = dir.Path, ApiServer = $"https://127.0.0.1:{apiPort}",
                StableMargin = TimeSpan.FromSeconds(1), LookupInterval = TimeSpan.FromMilliseconds(300),
            };
        }
        await using var first = await InProcessNode.StartAsync(output, new[] { ClusterRoles.Worker }, o => Discovered(o, a));
        await using var second = await InProcessNode.StartAsync(output, new[] { ClusterRoles.Preprocess }, o => Discovered(o, b));
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            while (first.Cluster.State.Members.Count(m => m.Status == MemberStatus.Up) < 2 || second.Cluster.SelfMember.Status != MemberStatus.Up)
                await Task.Delay(200, limit.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"no cluster after 60 s; the API server was asked {asked.Count} time(s): {string.Join(" | ", asked.Take(3))}");
        }
        Assert.Contains($"ecsnet {Selector} Bearer service-account-token", asked);
        Assert.Equal(2, first.Cluster.State.Members.Count);
    }
}
