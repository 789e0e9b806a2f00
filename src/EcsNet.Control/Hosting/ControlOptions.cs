using EcsNet.Data;

namespace EcsNet.Control.Hosting;

/// <summary>
/// The control API of a host (configuration section <c>EcsNet:Control</c>; <c>ecsnet serve</c> sets them from its
/// options). docs/CONTROL.md.
/// </summary>
public sealed class ControlOptions
{
    public const string Section = "EcsNet:Control";

    /// <summary>Address the gRPC control API listens on.</summary>
    public string Hostname { get; set; } = "127.0.0.1";

    /// <summary>Port of the gRPC control API (HTTP/2; 0: any free port).</summary>
    public int Port { get; set; } = 4060;

    /// <summary>The bearer token every call must carry (a secret; compared in constant time).</summary>
    public string Token { get; set; } = "";

    /// <summary>A file holding the token (its first line), used when <see cref="Token"/> is empty (Kubernetes secrets).</summary>
    public string? TokenFile { get; set; }

    /// <summary>PEM certificate and key files: the API speaks TLS when both are set.</summary>
    public string? TlsCertificateFile { get; set; }

    public string? TlsKeyFile { get; set; }

    /// <summary>Folder of the runs (one sub-folder per run, on storage every node sees).</summary>
    public string RunsDir { get; set; } = "runs";

    /// <summary>The run registry: a SQLite file or a PostgreSQL connection string (default: registry.db in <see cref="RunsDir"/>).</summary>
    public string? Registry { get; set; }

    /// <summary>Largest request the API accepts, in bytes (an experiment is a few KiB).</summary>
    public int MaxRequestBytes { get; set; } = 1 << 20;

    /// <summary>Bytes of one artifact chunk.</summary>
    public int ArtifactChunkBytes { get; set; } = 256 << 10;

    /// <summary>The gRPC health service answers without a token (Kubernetes' gRPC probes send none); it tells only SERVING or not.</summary>
    public bool HealthWithoutToken { get; set; } = true;

    /// <summary>Go on with the runs that were in flight when the host last stopped (from their checkpoints).</summary>
    public bool ResumeInterrupted { get; set; } = true;

    /// <summary>The token to require: <see cref="Token"/>, else the first line of <see cref="TokenFile"/>.</summary>
    public string ResolveToken()
    {
        var token = Token;
        if (token.Length == 0 && TokenFile is { Length: > 0 } file)
        {
            if (!File.Exists(file))
                throw new BadInputException(file, "token file not found");
            token = File.ReadLines(file).FirstOrDefault()?.Trim() ?? "";
            if (token.Length == 0)
                throw new BadInputException(file, "token file is empty");
        }
        if (token.Length < 16)
            throw new BadInputException("control token", token.Length == 0
                ? "no token is configured (EcsNet:Control:Token, or a token file): the control API refuses to run without one"
                : "must be at least 16 characters");
        return token;
    }

    public void Validate()
    {
        if (Port is < 0 or > 65535)
            throw new BadInputException("EcsNet:Control:Port", $"{Port} is not a TCP port");
        if ((TlsCertificateFile is null) != (TlsKeyFile is null))
            throw new BadInputException("EcsNet:Control:Tls", "give both the certificate file and the key file, or neither");
        foreach (var f in new[] { TlsCertificateFile, TlsKeyFile })
            if (f is not null && !File.Exists(f))
                throw new BadInputException(f, "TLS file not found");
        if (MaxRequestBytes < 4096)
            throw new BadInputException("EcsNet:Control:MaxRequestBytes", $"must be at least 4096, got {MaxRequestBytes}");
        if (ArtifactChunkBytes is < 1024 or > 4 << 20)
            throw new BadInputException("EcsNet:Control:ArtifactChunkBytes", $"must lie in 1 KiB..4 MiB, got {ArtifactChunkBytes}");
    }
}
