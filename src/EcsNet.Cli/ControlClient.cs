using System.CommandLine;
using System.Security.Cryptography.X509Certificates;
using EcsNet.Data;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;

using V1Client = EcsNet.Control.V1.Control.ControlClient;

namespace EcsNet.Cli;

/// <summary>
/// The operator verbs' connection to a control API: <c>--server</c> / <c>ECSNET_SERVER</c>, <c>--token</c> /
/// <c>ECSNET_TOKEN</c> / <c>--token-file</c>, <c>--ca</c> for a server certificate signed by a private CA; and the
/// exit codes scripts rely on (docs/CONTROL.md, "Exit codes").
/// </summary>
public sealed class ControlClient
{
    public const string DefaultServer = "http://127.0.0.1:4060";

    /// <summary>The request was refused for a missing or wrong token.</summary>
    public const int ExitUnauthenticated = 3;

    /// <summary>No such run.</summary>
    public const int ExitNotFound = 4;

    /// <summary>The server could not be reached or did not answer.</summary>
    public const int ExitUnavailable = 5;

    /// <summary>The run's state does not allow the request (e.g. resuming a completed run).</summary>
    public const int ExitWrongState = 6;

    /// <summary><c>watch</c>: the run ended stopped or paused, not completed.</summary>
    public const int ExitRunStopped = 7;

    public Option<string?> Server { get; } = new("--server") { Description = $"Control API URL (default: $ECSNET_SERVER, else {DefaultServer})." };

    public Option<string?> Token { get; } = new("--token") { Description = "API token (default: $ECSNET_TOKEN)." };

    public Option<string?> TokenFile { get; } = new("--token-file") { Description = "File whose first line is the API token." };

    public Option<string?> Ca { get; } = new("--ca") { Description = "PEM certificate of the CA that signed the server's TLS certificate (https servers with a private CA)." };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Server, Token, TokenFile, Ca })
            command.Options.Add(o);
    }

    /// <summary>A client of the control API with the token on every call.</summary>
    public (V1Client Client, GrpcChannel Channel) Connect(ParseResult parse)
    {
        var server = parse.GetValue(Server) ?? Environment.GetEnvironmentVariable("ECSNET_SERVER") ?? DefaultServer;
        if (!Uri.TryCreate(server, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new BadInputException("--server", $"'{server}' is not an http:// or https:// URL");
        var token = parse.GetValue(Token) ?? Environment.GetEnvironmentVariable("ECSNET_TOKEN");
        if (parse.GetValue(TokenFile) is { } file)
        {
            if (!File.Exists(file))
                throw new BadInputException(file, "token file not found");
            token = File.ReadLines(file).FirstOrDefault()?.Trim();
        }
        if (string.IsNullOrEmpty(token))
            throw new BadInputException("--token", "no API token: give --token, --token-file or ECSNET_TOKEN");
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
        if (parse.GetValue(Ca) is { } ca)
        {
            if (!File.Exists(ca))
                throw new BadInputException(ca, "CA certificate file not found");
            var authority = X509Certificate2.CreateFromPemFile(ca);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, errors) =>
                errors == System.Net.Security.SslPolicyErrors.None || (cert is not null && ChainsTo(new X509Certificate2(cert), authority));
        }
        var channel = GrpcChannel.ForAddress(uri, new GrpcChannelOptions { HttpHandler = handler, MaxReceiveMessageSize = 16 << 20 });
        var invoker = channel.Intercept(headers =>
        {
            headers.Add("authorization", $"Bearer {token}");
            return headers;
        });
        return (new V1Client(invoker), channel);
    }

    private static bool ChainsTo(X509Certificate2 cert, X509Certificate2 authority)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(cert);
    }

    /// <summary>
    /// Runs a verb's calls; a refused call is one line naming what was refused (and each bad field) with the exit code
    /// of its kind.
    /// </summary>
    public static async Task<int> Call(CliIo io, Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (RpcException e)
        {
            io.Err.WriteLine($"error: {Describe(e)}");
            return e.StatusCode switch
            {
                StatusCode.InvalidArgument or StatusCode.OutOfRange or StatusCode.ResourceExhausted => EcsNetCli.ExitBadInput,
                StatusCode.Unauthenticated or StatusCode.PermissionDenied => ExitUnauthenticated,
                StatusCode.NotFound => ExitNotFound,
                StatusCode.Unavailable or StatusCode.DeadlineExceeded => ExitUnavailable,
                StatusCode.FailedPrecondition => ExitWrongState,
                _ => EcsNetCli.ExitFailure,
            };
        }
    }

    private static string Describe(RpcException e)
    {
        var bad = e.GetRpcStatus()?.GetDetail<BadRequest>();
        if (bad is { FieldViolations.Count: > 0 })
            return "the request was refused: " + string.Join("; ", bad.FieldViolations.Select(v => $"{v.Field}: {v.Description}"));
        return e.StatusCode switch
        {
            StatusCode.Unavailable => $"the control API is unavailable: {e.Status.Detail}",
            _ => $"{e.Status.Detail} ({e.StatusCode})",
        };
    }
}
