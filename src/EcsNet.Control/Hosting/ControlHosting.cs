using System.Net;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Hosting;
using EcsNet.Cluster.Hosting;
using EcsNet.Control.Api;
using EcsNet.Control.Registry;
using EcsNet.Control.Reports;
using EcsNet.Control.Runs;
using EcsNet.Data;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EcsNet.Control.Hosting;

/// <summary>Where a host's endpoints ended up listening (port 0 is replaced by the bound port once started).</summary>
public sealed class ControlEndpoints
{
    internal ListenOptions? ControlListen { get; set; }
    internal ListenOptions? HttpListen { get; set; }

    /// <summary>The control API's address, e.g. http://127.0.0.1:4060 (https with TLS).</summary>
    public string ControlUrl => ControlListen is { } l ? $"{(Tls ? "https" : "http")}://{Format(l.IPEndPoint!)}" : "";

    /// <summary>The HTTP endpoint: health, /metrics, /runs/{id} reports.</summary>
    public string HttpUrl => HttpListen is { } l ? $"http://{Format(l.IPEndPoint!)}" : "";

    internal bool Tls { get; set; }

    private static string Format(IPEndPoint e) => e.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{e.Address}]:{e.Port}" : $"{e.Address}:{e.Port}";
}

/// <summary>
/// Composition of the control plane on a node host: the gRPC control API (with the bearer-token check, reflection
/// and the standard health service) on its own HTTP/2 endpoint, the run registry and the run manager.
/// </summary>
public static class ControlHosting
{
    /// <summary>The services answered without a token when <see cref="ControlOptions.HealthWithoutToken"/>.</summary>
    public static readonly IReadOnlySet<string> HealthServices = new HashSet<string>(StringComparer.Ordinal) { Health.Descriptor.FullName };

    /// <summary>
    /// Adds the control API to a node host: <paramref name="control"/> (already bound from configuration and the
    /// command line) says where it listens; <paramref name="httpUrl"/> is the node's plain HTTP endpoint (health,
    /// metrics, reports), which moves from the URL setting into Kestrel's endpoint list.
    /// </summary>
    public static WebApplicationBuilder AddEcsNetControl(this WebApplicationBuilder builder, ControlOptions control, string httpUrl)
    {
        control.Validate();
        var token = control.ResolveToken();
        var endpoints = new ControlEndpoints { Tls = control.TlsCertificateFile is not null };
        builder.Services.AddSingleton(endpoints);
        builder.Services.AddSingleton(Options.Create(control));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            var http = new Uri(httpUrl);
            kestrel.Listen(Address(http.Host, "--health-url"), http.Port, l =>
            {
                l.Protocols = HttpProtocols.Http1;
                endpoints.HttpListen = l;
            });
            kestrel.Listen(Address(control.Hostname, "EcsNet:Control:Hostname"), control.Port, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                if (control.TlsCertificateFile is { } cert)
                {
                    l.Protocols = HttpProtocols.Http1AndHttp2;
                    l.UseHttps(X509Certificate2.CreateFromPemFile(cert, control.TlsKeyFile));
                }
                endpoints.ControlListen = l;
            });
        });
        builder.Services.AddSingleton(sp => new BearerTokenInterceptor(token,
            control.HealthWithoutToken ? HealthServices : new HashSet<string>(), sp.GetRequiredService<ILogger<BearerTokenInterceptor>>()));
        builder.Services.AddGrpc(grpc =>
        {
            grpc.Interceptors.Add<BearerTokenInterceptor>();
            grpc.MaxReceiveMessageSize = control.MaxRequestBytes;
            grpc.EnableDetailedErrors = false;
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddSingleton<HealthServiceImpl>();
        builder.Services.AddSingleton<IRunRegistry>(_ => RunRegistry.Open(control.Registry ?? RunRegistry.DefaultFor(control.RunsDir)));
        builder.Services.AddSingleton(sp => new RunManager(sp.GetRequiredService<IRunRegistry>(), sp.GetRequiredService<ActorSystem>(),
            sp.GetRequiredService<IRequiredActor<TrainingCoordinatorKey>>().ActorRef, sp.GetRequiredService<IOptions<ControlOptions>>(),
            sp.GetRequiredService<ILogger<RunManager>>()));
        builder.Services.AddHostedService<RunManagerService>();
        return builder;
    }

    /// <summary>Maps the control API, reflection and the gRPC health service.</summary>
    public static IEndpointRouteBuilder MapEcsNetControl(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGrpcService<ControlService>();
        endpoints.MapGrpcService<HealthServiceImpl>();
        endpoints.MapGrpcReflectionService();
        endpoints.MapGet(ReportPath, ServeReportAsync);
        return endpoints;
    }

    /// <summary>The report page of a run (docs/REPORT.md), for a browser: the token in the Authorization header or <c>?token=</c>.</summary>
    public const string ReportPath = "/runs/{id}";

    private static async Task<IResult> ServeReportAsync(string id, HttpContext http, RunManager runs, BearerTokenInterceptor auth)
    {
        if (!auth.Accepts(http.Request.Headers.Authorization.ToString()) && !auth.Accepts("Bearer " + http.Request.Query["token"]))
            return Results.Text("a valid token is required (Authorization: Bearer <token>, or ?token=)", statusCode: StatusCodes.Status401Unauthorized);
        string runDir;
        try
        {
            runDir = await runs.RunDirAsync(id, http.RequestAborted);
        }
        catch (RunNotFoundException e)
        {
            return Results.Text(e.Message, statusCode: StatusCodes.Status404NotFound);
        }
        try
        {
            return Results.Content(RunReport.Build(runDir), "text/html; charset=utf-8");
        }
        catch (BadInputException e)
        {
            return Results.Text($"run {id} has nothing to report yet: {e.Problem}", statusCode: StatusCodes.Status404NotFound);
        }
    }

    private static IPAddress Address(string host, string setting) =>
        host is "localhost" ? IPAddress.Loopback
        : host is "*" or "+" or "0.0.0.0" ? IPAddress.Any
        : IPAddress.TryParse(host, out var ip) ? ip
        : throw new BadInputException(setting, $"'{host}' is not an IP address to listen on");

    /// <summary>Starts the run manager with the host (registry, interrupted runs) and sets the health status.</summary>
    /// <remarks>The manager is made when this starts, after the actor system (hosted services are resolved all at once, before any starts).</remarks>
    private sealed class RunManagerService(IServiceProvider services, HealthServiceImpl health) : IHostedService
    {
        private RunManager? manager;

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            health.SetStatus("", HealthCheckResponse.Types.ServingStatus.NotServing);
            await services.GetRequiredService<IRequiredActor<TrainingCoordinatorKey>>().GetAsync(cancellationToken);
            manager = services.GetRequiredService<RunManager>();
            await manager.StartAsync(cancellationToken);
            health.SetStatus("", HealthCheckResponse.Types.ServingStatus.Serving);
            health.SetStatus(V1.Control.Descriptor.FullName, HealthCheckResponse.Types.ServingStatus.Serving);
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            health.SetStatus("", HealthCheckResponse.Types.ServingStatus.NotServing);
            health.SetStatus(V1.Control.Descriptor.FullName, HealthCheckResponse.Types.ServingStatus.NotServing);
            if (manager is not null)
                await manager.DisposeAsync();
        }
    }
}
