using System.Net;
using EcsNet.AllReduce.Ring;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace EcsNet.AllReduce;

/// <summary>
/// HTTP/2 settings for bulk tensor traffic. The defaults (64 KiB stream windows, 16 KiB frames, 4 MiB
/// messages) throttle a single stream far below loopback speed, so both ends raise them.
/// </summary>
internal static class GrpcTuning
{
    /// <summary>Per-stream receive window: several chunks in flight before the sender waits.</summary>
    public const int StreamWindowBytes = 16 << 20;

    /// <summary>Connection window: room for every stream on the connection.</summary>
    public const int ConnectionWindowBytes = 64 << 20;

    /// <summary>Response bytes Kestrel buffers before a write waits (default 64 KiB, less than one piece).</summary>
    public const int OutputBufferBytes = 32 << 20;

    /// <summary>Largest HTTP/2 frame the server accepts (the protocol's maximum is 16 MiB − 1).</summary>
    public const int MaxFrameBytes = (1 << 20);

    public static GrpcChannel Channel(string address, TimeSpan connectTimeout)
    {
        var handler = new SocketsHttpHandler
        {
            InitialHttp2StreamWindowSize = StreamWindowBytes,
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = connectTimeout,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
        };
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            MaxSendMessageSize = null,
            MaxReceiveMessageSize = null,
            DisposeHttpClient = true,
        });
    }

    /// <summary>A Kestrel gRPC host on <paramref name="bind"/>:<paramref name="port"/> (0: any free port), no console logging.</summary>
    public static WebApplicationBuilder Host(IPAddress bind, int port)
    {
        // the empty builder: no configuration files (and no file watcher polling the working folder), no logging
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "EcsNet.AllReduce", ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrelCore();
        builder.WebHost.UseSockets(sockets =>
        {
            // read straight into a pooled block instead of a zero-byte read first (one syscall per read, not two)
            sockets.WaitForDataBeforeAllocatingBuffer = false;
            sockets.NoDelay = true;
            // let the writer run ahead of the socket by several pieces (default 64 KiB stalls it per piece)
            sockets.MaxWriteBufferSize = OutputBufferBytes;
        });
        builder.Services.AddSingleton<IMemoryPoolFactory<byte>, LargeBlockMemoryPool.Factory>();
        builder.Services.AddRoutingCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(bind, port, listen => listen.Protocols = HttpProtocols.Http2);
            kestrel.Limits.Http2.InitialStreamWindowSize = StreamWindowBytes;
            kestrel.Limits.Http2.InitialConnectionWindowSize = ConnectionWindowBytes;
            kestrel.Limits.Http2.MaxFrameSize = MaxFrameBytes;
            kestrel.Limits.Http2.MaxStreamsPerConnection = 1000;
            kestrel.Limits.MaxResponseBufferSize = OutputBufferBytes;
            kestrel.Limits.MinRequestBodyDataRate = null;
            kestrel.Limits.MaxRequestBodySize = null;
        });
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = null;
            grpc.MaxSendMessageSize = null;
            grpc.EnableDetailedErrors = true;
        });
        return builder;
    }

    /// <summary>The address clients use to reach a host bound to <paramref name="bind"/> on <paramref name="port"/>.</summary>
    public static string ClientAddress(IPAddress bind, int port)
    {
        var host = bind.Equals(IPAddress.Any) || bind.Equals(IPAddress.IPv6Any) ? "127.0.0.1" : bind.ToString();
        if (bind.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && !bind.Equals(IPAddress.IPv6Any))
            host = $"[{host}]";
        return $"http://{host}:{port}";
    }
}
