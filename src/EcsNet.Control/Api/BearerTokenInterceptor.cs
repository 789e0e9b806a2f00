using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;

namespace EcsNet.Control.Api;

/// <summary>
/// Every call must carry <c>authorization: Bearer &lt;token&gt;</c> with the configured token; the comparison takes the
/// same time whatever the token sent (SHA-256 of both, compared with <see cref="CryptographicOperations.FixedTimeEquals"/>).
/// A refusal is UNAUTHENTICATED and is logged with the method and the peer, never with what was sent.
/// </summary>
public sealed class BearerTokenInterceptor : Interceptor
{
    private readonly byte[] expected;
    private readonly IReadOnlySet<string> open;
    private readonly ILogger<BearerTokenInterceptor> log;

    /// <param name="openServices">Services answered without a token (the gRPC health service, for probes).</param>
    public BearerTokenInterceptor(string token, IReadOnlySet<string> openServices, ILogger<BearerTokenInterceptor> log)
    {
        expected = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        open = openServices;
        this.log = log;
    }

    /// <summary>True when <paramref name="authorization"/> is "Bearer " and the token (timing does not depend on the token).</summary>
    public bool Accepts(string? authorization)
    {
        const string scheme = "Bearer ";
        var sent = authorization is not null && authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? authorization[scheme.Length..].Trim() : "";
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(sent)), expected) && sent.Length > 0;
    }

    private void Check(ServerCallContext context)
    {
        var service = context.Method.TrimStart('/').Split('/')[0];
        if (open.Contains(service))
            return;
        var header = context.RequestHeaders.GetValue("authorization");
        if (Accepts(header))
            return;
        log.LogWarning("refused {Method} from {Peer}: {Why}", context.Method, context.Peer, header is null ? "no bearer token" : "wrong bearer token");
        throw new RpcException(new Status(StatusCode.Unauthenticated, "a valid bearer token is required (authorization: Bearer <token>)"));
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }
}
