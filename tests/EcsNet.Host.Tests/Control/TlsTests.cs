using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EcsNet.Control.V1;
using EcsNet.Testing;
using Grpc.Core;

namespace EcsNet.Host.Tests.Control;

/// <summary>The control API over TLS from PEM certificate files.</summary>
[Collection(ControlCollection.Name)]
public sealed class TlsTests
{
    [Fact]
    public async Task With_certificate_files_the_api_speaks_tls_and_still_wants_the_token()
    {
        using var dir = new TempDir();
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=ecsnet test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var server = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), new byte[] { 1, 2, 3, 4 });
        File.WriteAllText(dir.File("server.crt"), server.ExportCertificatePem());
        File.WriteAllText(dir.File("server.key"), serverKey.ExportPkcs8PrivateKeyPem());

        await using var host = await ControlHost.StartAsync(dir.File("runs"), configure: c =>
        {
            c.TlsCertificateFile = dir.File("server.crt");
            c.TlsKeyFile = dir.File("server.key");
        });
        Assert.StartsWith("https://127.0.0.1:", host.Endpoints.ControlUrl);

        // a client that trusts the test CA only
        var trusting = new SocketsHttpHandler();
        trusting.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, errors) =>
        {
            if (errors == SslPolicyErrors.None) return true;
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return cert is not null && chain.Build(new X509Certificate2(cert));
        };
        var reply = await host.Client(handler: trusting).ListRunsAsync(new ListRunsRequest());
        Assert.Empty(reply.Runs);

        var noToken = await Assert.ThrowsAsync<RpcException>(() => host.Client(token: null, handler: new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        }).ListRunsAsync(new ListRunsRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, noToken.StatusCode);

        // a client that trusts nothing of ours does not get through
        var untrusting = await Assert.ThrowsAsync<RpcException>(() => host.Client(handler: new SocketsHttpHandler()).ListRunsAsync(new ListRunsRequest()).ResponseAsync);
        Assert.Contains("SSL", untrusting.Status.Detail);
    }
}
