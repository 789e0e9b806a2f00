using System.Net;
using System.Net.Sockets;

namespace EcsNet.Testing;

/// <summary>Loopback ports for tests that need a fixed port before a server starts.</summary>
public static class FreePorts
{
    /// <summary>A loopback port nothing listens on now (bound, then released).</summary>
    public static int Loopback()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
