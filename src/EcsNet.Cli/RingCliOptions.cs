using System.CommandLine;
using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.Topology;
using EcsNet.Data;

namespace EcsNet.Cli;

/// <summary>The ring settings every cluster verb accepts (defaults from <see cref="RingOptions"/>).</summary>
internal sealed class RingCliOptions
{
    private static readonly RingOptions Defaults = new();

    public Option<int> ChunkKib { get; } = new("--chunk-kib")
    {
        Description = $"Bytes per wire message in KiB (pipelining granularity; default {Defaults.ChunkBytes >> 10}).",
        DefaultValueFactory = _ => Defaults.ChunkBytes >> 10,
    };

    public Option<int> FlushKib { get; } = new("--flush-kib")
    {
        Description = $"KiB a sender buffers while more chunks are queued before it flushes (0: flush every chunk; default {Defaults.FlushBytes >> 10}).",
        DefaultValueFactory = _ => Defaults.FlushBytes >> 10,
    };

    public RingCliOptions(TimeSpan? peerTimeout = null)
    {
        var seconds = (peerTimeout ?? Defaults.PeerTimeout).TotalSeconds;
        PeerTimeout = new("--peer-timeout")
        {
            Description = $"Seconds to wait for a peer before failing the collective and naming it (default {seconds}).",
            DefaultValueFactory = _ => seconds,
        };
    }

    public Option<double> PeerTimeout { get; }

    public Option<bool> Fp16 { get; } = new("--fp16")
    {
        Description = "Send float32 gradients as float16 on the wire (half the bytes; replicas stay bit-identical).",
    };

    public Option<string> Transport { get; } = new("--transport")
    {
        Description = $"Data plane: auto (shared memory among ranks on one host, gRPC between hosts), shm (one host only) or grpc (the gRPC ring for all; default {TransportNames.Name(Defaults.Transport)}). Every rank of a job must use the same.",
        DefaultValueFactory = _ => TransportNames.Name(Defaults.Transport),
    };

    public Option<int> ShmSlotKib { get; } = new("--shm-slot-kib")
    {
        Description = $"KiB of one shared-memory slot: the chunk of an all-reduce inside a host (default {Defaults.ShmSlotBytes >> 10}).",
        DefaultValueFactory = _ => Defaults.ShmSlotBytes >> 10,
    };

    public Option<string?> HostId { get; } = new("--host-id")
    {
        Description = "Which ranks share memory: ranks with the same host id use shared memory (default: this machine and its /dev/shm mount, told apart automatically).",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Transport);
        command.Options.Add(ShmSlotKib);
        command.Options.Add(HostId);
        command.Options.Add(ChunkKib);
        command.Options.Add(FlushKib);
        command.Options.Add(PeerTimeout);
        command.Options.Add(Fp16);
    }

    /// <summary>The same settings as arguments for a child `ecsnet worker`.</summary>
    public IEnumerable<string> Forward(ParseResult parse) =>
        new[] { "--chunk-kib", parse.GetValue(ChunkKib).ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--flush-kib", parse.GetValue(FlushKib).ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--peer-timeout", parse.GetValue(PeerTimeout).ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--transport", parse.GetValue(Transport)!,
                "--shm-slot-kib", parse.GetValue(ShmSlotKib).ToString(System.Globalization.CultureInfo.InvariantCulture) }
            .Concat(parse.GetValue(HostId) is { } host ? new[] { "--host-id", host } : Array.Empty<string>())
            .Concat(parse.GetValue(Fp16) ? new[] { "--fp16" } : Array.Empty<string>());

    public RingOptions Read(ParseResult parse)
    {
        var chunk = parse.GetValue(ChunkKib);
        if (chunk < 1 || chunk > 64 * 1024)
            throw new BadInputException("--chunk-kib", $"{chunk} is outside 1..65536 KiB");
        var flush = parse.GetValue(FlushKib);
        if (flush < 0 || flush > 1024 * 1024)
            throw new BadInputException("--flush-kib", $"{flush} is outside 0..1048576 KiB");
        var timeout = parse.GetValue(PeerTimeout);
        if (!(timeout > 0))
            throw new BadInputException("--peer-timeout", $"{timeout} s must be positive");
        if (!TransportNames.TryParse(parse.GetValue(Transport), out var transport))
            throw new BadInputException("--transport", $"'{parse.GetValue(Transport)}' is not one of {TransportNames.List}");
        var slot = parse.GetValue(ShmSlotKib);
        if (slot < 4 || slot > 256 * 1024)
            throw new BadInputException("--shm-slot-kib", $"{slot} is outside 4..262144 KiB");
        return new RingOptions
        {
            Transport = transport,
            ShmSlotBytes = slot << 10,
            ChunkBytes = chunk << 10,
            FlushBytes = flush << 10,
            PeerTimeout = TimeSpan.FromSeconds(timeout),
            Compression = parse.GetValue(Fp16) ? WireCompression.Float16 : WireCompression.None,
        };
    }

    /// <summary>The host id to register with: --host-id, or this machine's.</summary>
    public string Host(ParseResult parse)
    {
        var host = parse.GetValue(HostId);
        if (host is null)
            return EcsNet.AllReduce.SharedMemory.HostIdentity.Current;
        if (string.IsNullOrWhiteSpace(host) || host.Length > 253)
            throw new BadInputException("--host-id", $"'{host}' must be 1 to 253 characters");
        return host.Trim();
    }

    /// <summary>Parses "1,4,16" (positive integers).</summary>
    public static IReadOnlyList<int> Sizes(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var sizes = new List<int>();
        foreach (var part in parts)
        {
            if (!int.TryParse(part, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) || v < 1 || v > 4096)
                throw new BadInputException(option, $"'{part}' is not a size in MiB between 1 and 4096");
            sizes.Add(v);
        }
        if (sizes.Count == 0)
            throw new BadInputException(option, "no sizes given");
        return sizes;
    }

    /// <summary>Checks "cpu" or "cuda:N".</summary>
    public static string Device(string text)
    {
        if (text == "cpu" || (text.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(text.AsSpan(5), out var n) && n >= 0))
            return text;
        throw new BadInputException("--device", $"'{text}' is not cpu or cuda:N");
    }
}
