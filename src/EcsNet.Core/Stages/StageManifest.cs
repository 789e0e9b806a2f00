using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace EcsNet.Core.Stages;

/// <summary>
/// The record a pipeline stage leaves in RUN/&lt;stage&gt;/manifest.json: the hash of what went in (options,
/// upstream outputs, data), the hash of every file it wrote, its time and its metrics. A stage is reused
/// only when its manifest is complete, its inputs hash is unchanged and every output still hashes the same,
/// so a corrupted or half-written output is recomputed, never silently used.
/// </summary>
public sealed record StageManifest
{
    public const string FileName = "manifest.json";

    public string Stage { get; init; } = "";
    public string InputsHash { get; init; } = "";
    public DateTime FinishedUtc { get; init; }
    public double Seconds { get; init; }
    public Dictionary<string, string> Outputs { get; init; } = new();
    public Dictionary<string, double> Metrics { get; init; } = new();
    public JsonElement? Options { get; init; }

    /// <summary>Hash over all of the stage's outputs (what downstream stages fold into their inputs hash).</summary>
    public string OutputsHash => Hash(string.Join("\n", Outputs.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}")));

    public static StageManifest? TryLoad(string dir)
    {
        var path = Path.Combine(dir, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<StageManifest>(File.ReadAllText(path), ConfigJson.Options);
        }
        catch (JsonException)
        {
            return null;   // an unreadable manifest means the stage is not complete
        }
    }

    /// <summary>Whether the stage can be reused; otherwise <paramref name="reason"/> says why not.</summary>
    public bool IsReusable(string dir, string inputsHash, out string reason)
    {
        if (InputsHash != inputsHash)
        {
            reason = "its inputs or options changed";
            return false;
        }
        foreach (var (relative, hash) in Outputs)
        {
            var path = Path.Combine(dir, relative);
            if (!File.Exists(path))
            {
                reason = $"output {relative} is missing";
                return false;
            }
            if (HashFile(path) != hash)
            {
                reason = $"output {relative} does not match its manifest (corrupted or changed)";
                return false;
            }
        }
        var extra = ListOutputs(dir).FirstOrDefault(f => !Outputs.ContainsKey(f));
        if (extra is not null)
        {
            reason = $"unexpected file {extra} (an interrupted run?)";
            return false;
        }
        reason = "";
        return true;
    }

    /// <summary>Hashes every file the stage wrote under <paramref name="dir"/> and writes the manifest last.</summary>
    public static StageManifest Write(string dir, string stage, string inputsHash, double seconds,
        IReadOnlyDictionary<string, double> metrics, object? options)
    {
        var outputs = ListOutputs(dir).ToDictionary(f => f, f => HashFile(Path.Combine(dir, f)), StringComparer.Ordinal);
        var manifest = new StageManifest
        {
            Stage = stage,
            InputsHash = inputsHash,
            FinishedUtc = DateTime.UtcNow,
            Seconds = seconds,
            Outputs = outputs,
            Metrics = metrics.ToDictionary(p => p.Key, p => p.Value),
            Options = options is null ? null : JsonSerializer.SerializeToElement(options, ConfigJson.Options),
        };
        var tmp = Path.Combine(dir, FileName + ".tmp");
        File.WriteAllText(tmp, JsonSerializer.Serialize(manifest, ConfigJson.Options));
        File.Move(tmp, Path.Combine(dir, FileName), overwrite: true);
        return manifest;
    }

    /// <summary>Removes a stage's manifest so that it counts as not done (before re-running it).</summary>
    public static void Invalidate(string dir)
    {
        var path = Path.Combine(dir, FileName);
        if (File.Exists(path)) File.Delete(path);
    }

    private static IEnumerable<string> ListOutputs(string dir) =>
        Directory.Exists(dir)
            ? Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(dir, f).Replace('\\', '/'))
                .Where(f => f != FileName && !f.EndsWith(".tmp", StringComparison.Ordinal))
                .OrderBy(f => f, StringComparer.Ordinal)
            : Enumerable.Empty<string>();

    public static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    public static string HashFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
