using System.CommandLine;
using EcsNet.AllReduce.Ring;
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

    public void AddTo(Command command)
    {
        command.Options.Add(ChunkKib);
        command.Options.Add(FlushKib);
        command.Options.Add(PeerTimeout);
        command.Options.Add(Fp16);
    }

    /// <summary>The same settings as arguments for a child `ecsnet worker`.</summary>
    public IEnumerable<string> Forward(ParseResult parse) =>
        new[] { "--chunk-kib", parse.GetValue(ChunkKib).ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--flush-kib", parse.GetValue(FlushKib).ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--peer-timeout", parse.GetValue(PeerTimeout).ToString(System.Globalization.CultureInfo.InvariantCulture) }
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
        return new RingOptions
        {
            ChunkBytes = chunk << 10,
            FlushBytes = flush << 10,
            PeerTimeout = TimeSpan.FromSeconds(timeout),
            Compression = parse.GetValue(Fp16) ? WireCompression.Float16 : WireCompression.None,
        };
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
