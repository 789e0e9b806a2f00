using System.Text.Json;
using System.Text.Json.Nodes;
using EcsNet.Data;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace EcsNet.Core.Stages;

/// <summary>
/// Reads an experiment file (YAML or JSON, camelCase keys mirroring <see cref="ExperimentConfig"/>) on top of
/// a base config and applies <c>--set path=value</c> overrides. Unknown keys and bad values are errors that
/// name the file (or the override) and the key. The same file may also say what to run — <see cref="RunKeys"/>:
/// name, dataset, stages, workers (docs/EXPERIMENTS.md) — which <c>ecsnet submit</c> reads and the hyperparameter
/// readers pass over.
/// </summary>
public static class ExperimentFile
{
    private static JsonSerializerOptions Json => ConfigJson.Options;

    /// <summary>Top-level keys that describe the run rather than a stage's options.</summary>
    public static readonly IReadOnlySet<string> RunKeys = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "name", "dataset", "stages", "workers" };

    public static ExperimentConfig Load(string? path, ExperimentConfig baseConfig, IEnumerable<string>? overrides = null) =>
        Apply(path is null ? null : ReadDocument(path), path ?? "--set", baseConfig, overrides);

    /// <summary>The file as a JSON object (YAML read as JSON), or a bad-input error naming it.</summary>
    public static JsonObject ReadDocument(string path)
    {
        if (!File.Exists(path))
            throw new BadInputException(path, "experiment file not found");
        return ParseDocument(File.ReadAllText(path), path, json: path.EndsWith(".json", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>An experiment document's text (YAML, or JSON, which is YAML too) as a JSON object; <paramref name="source"/> names it in errors.</summary>
    public static JsonObject ParseDocument(string text, string source, bool json = false)
    {
        JsonNode? file;
        try
        {
            file = json ? JsonNode.Parse(text) : YamlToJson(text);
        }
        catch (Exception e) when (e is JsonException or YamlException)
        {
            throw new BadInputException(source, $"not valid {(json ? "JSON" : "YAML")}: {e.Message}");
        }
        return file switch
        {
            JsonObject obj => obj,
            null => new JsonObject(),
            _ => throw new BadInputException(source, "the top level must be a mapping of stage names to options"),
        };
    }

    /// <summary>
    /// <paramref name="baseConfig"/> with the options of <paramref name="document"/> (its run keys passed over) and
    /// then <paramref name="overrides"/> applied; errors name <paramref name="source"/> and the key.
    /// </summary>
    public static ExperimentConfig Apply(JsonObject? document, string source, ExperimentConfig baseConfig, IEnumerable<string>? overrides = null)
    {
        var node = JsonSerializer.SerializeToNode(baseConfig, Json)!.AsObject();
        if (document is not null)
        {
            var options = new JsonObject(document.Where(p => !RunKeys.Contains(p.Key)).Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone())));
            Merge(node, options, source, "");
        }
        foreach (var o in overrides ?? Array.Empty<string>())
            ApplyOverride(node, o);
        try
        {
            return node.Deserialize<ExperimentConfig>(Json) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new BadInputException(source, $"bad option value: {e.Message}");
        }
    }

    public static string ToJson(ExperimentConfig config) => JsonSerializer.Serialize(config, Json);

    /// <summary>Sets one option, e.g. <c>cam.beta=0.7</c> or <c>camInference.scales=[1,0.5]</c>.</summary>
    private static void ApplyOverride(JsonObject root, string text)
    {
        int eq = text.IndexOf('=');
        if (eq <= 0)
            throw new BadInputException($"--set {text}", "expected path=value, e.g. cam.beta=0.7");
        var path = text[..eq].Trim().Split('.');
        var raw = text[(eq + 1)..].Trim();
        JsonObject parent = root;
        for (int i = 0; i < path.Length - 1; i++)
        {
            var key = FindKey(parent, path[i]) ?? throw new BadInputException($"--set {text}", $"unknown option '{string.Join('.', path[..(i + 1)])}'");
            parent = parent[key] as JsonObject ?? throw new BadInputException($"--set {text}", $"'{path[i]}' is not a group of options");
        }
        var leaf = FindKey(parent, path[^1]) ?? throw new BadInputException($"--set {text}", $"unknown option '{string.Join('.', path)}'");
        JsonNode? value;
        try
        {
            value = JsonNode.Parse(raw);
        }
        catch (JsonException)
        {
            value = JsonValue.Create(raw);   // bare words: enum names, paths
        }
        parent[leaf] = value;
    }

    private static string? FindKey(JsonObject obj, string key) =>
        obj.Select(p => p.Key).FirstOrDefault(k => string.Equals(k, key, StringComparison.OrdinalIgnoreCase));

    private static void Merge(JsonObject target, JsonObject source, string file, string prefix)
    {
        foreach (var (key, value) in source.ToList())
        {
            var name = FindKey(target, key) ?? throw new BadInputException(file, $"unknown option '{prefix}{key}'");
            if (value is JsonObject child && target[name] is JsonObject existing)
                Merge(existing, child, file, $"{prefix}{name}.");
            else
                target[name] = value?.DeepClone();
        }
    }

    /// <summary>YAML → JSON nodes; scalars become numbers/booleans/null where they read as such.</summary>
    private static JsonNode? YamlToJson(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return stream.Documents.Count == 0 ? null : Convert(stream.Documents[0].RootNode);
    }

    private static JsonNode? Convert(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(kv =>
            KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", Convert(kv.Value)))),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(Convert).ToArray()),
        YamlScalarNode s => Scalar(s),
        _ => null,
    };

    private static JsonNode? Scalar(YamlScalarNode s)
    {
        var v = s.Value ?? "";
        if (s.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted)
            return JsonValue.Create(v);
        if (v is "" or "~" or "null") return null;
        if (v is "true" or "True") return JsonValue.Create(true);
        if (v is "false" or "False") return JsonValue.Create(false);
        if (long.TryParse(v, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var l)) return JsonValue.Create(l);
        if (double.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d)) return JsonValue.Create(d);
        return JsonValue.Create(v);
    }
}
