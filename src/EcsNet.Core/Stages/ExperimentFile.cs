using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using EcsNet.Data;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace EcsNet.Core.Stages;

/// <summary>
/// Reads an experiment file (YAML or JSON, camelCase keys mirroring <see cref="ExperimentConfig"/>) on top of
/// a base config and applies <c>--set path=value</c> overrides. Unknown keys and bad values are errors that
/// name the file (with the YAML line of the value) or the override, the key, the value and the type the key takes. The same file may also say what to run — <see cref="RunKeys"/>:
/// name, dataset, stages, workers (docs/EXPERIMENTS.md) — which <c>ecsnet submit</c> reads and the hyperparameter
/// readers pass over.
/// </summary>
public static class ExperimentFile
{
    private static JsonSerializerOptions Json => ConfigJson.Options;

    /// <summary>Top-level keys that describe the run rather than a stage's options.</summary>
    public static readonly IReadOnlySet<string> RunKeys = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "name", "dataset", "stages", "workers" };

    /// <summary>
    /// The line of every value of a document read from YAML, by lower-case key path (<c>camtraining.momentum</c>,
    /// <c>caminference.scales[1]</c>), so that an error can point into the file the user wrote.
    /// </summary>
    private static readonly ConditionalWeakTable<JsonObject, Dictionary<string, int>> YamlLines = new();

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
        var lines = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        try
        {
            file = json ? JsonNode.Parse(text) : YamlToJson(text, lines);
        }
        catch (Exception e) when (e is JsonException or YamlException)
        {
            throw new BadInputException(source, $"not valid {(json ? "JSON" : "YAML")}: {e.Message}");
        }
        if (file is JsonObject read && !json)
            YamlLines.AddOrUpdate(read, lines);
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
        var overridden = new List<(string Key, string Text)>();
        foreach (var o in overrides ?? Array.Empty<string>())
            overridden.Add((ApplyOverride(node, o), o));
        try
        {
            return node.Deserialize<ExperimentConfig>(Json) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            if (OptionValueError.Describe(e, node, typeof(ExperimentConfig)) is not { } error)
                throw new BadInputException(source, $"bad option value: {e.Message}", e);
            // The last override that set the key (or a group holding it) is the one at fault; else the file.
            static bool Covers(string set, string key) =>
                string.Equals(set, key, StringComparison.OrdinalIgnoreCase)
                || key.StartsWith(set + ".", StringComparison.OrdinalIgnoreCase) || key.StartsWith(set + "[", StringComparison.OrdinalIgnoreCase);
            var culprit = overridden.LastOrDefault(o => Covers(o.Key, error.Key) || Covers(error.Key, o.Key));
            if (culprit.Text is not null)
                throw new BadInputException($"--set {culprit.Text}", $"{error.Key}: {error.Problem}", e);
            if (document is not null && Line(document, error.Key) is { } line)
                throw new BadInputException($"{source}:{line}", $"{error.Key}: {error.Problem}", e);
            throw new BadInputException(source, $"{error.Key}: {error.Problem}", e);
        }
    }

    /// <summary>The YAML line of <paramref name="key"/>'s value (or of the nearest group holding it), when the document came from YAML.</summary>
    private static int? Line(JsonObject document, string key)
    {
        if (!YamlLines.TryGetValue(document, out var lines))
            return null;
        for (var k = key; k.Length > 0; k = k[..Math.Max(0, k.LastIndexOfAny(['.', '[']))])
            if (lines.TryGetValue(k, out var line))
                return line;
        return null;
    }

    public static string ToJson(ExperimentConfig config) => JsonSerializer.Serialize(config, Json);

    /// <summary>Sets one option, e.g. <c>cam.beta=0.7</c> or <c>camInference.scales=[1,0.5]</c>; returns the key as the options spell it.</summary>
    private static string ApplyOverride(JsonObject root, string text)
    {
        int eq = text.IndexOf('=');
        if (eq <= 0)
            throw new BadInputException($"--set {text}", "expected path=value, e.g. cam.beta=0.7");
        var path = text[..eq].Trim().Split('.');
        var raw = text[(eq + 1)..].Trim();
        JsonObject parent = root;
        var names = new List<string>();
        for (int i = 0; i < path.Length - 1; i++)
        {
            var key = FindKey(parent, path[i]) ?? throw new BadInputException($"--set {text}", $"unknown option '{string.Join('.', path[..(i + 1)])}'");
            parent = parent[key] as JsonObject ?? throw new BadInputException($"--set {text}", $"'{path[i]}' is not a group of options");
            names.Add(key);
        }
        var leaf = FindKey(parent, path[^1]) ?? throw new BadInputException($"--set {text}", $"unknown option '{string.Join('.', path)}'");
        names.Add(leaf);
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
        return string.Join('.', names);
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
    private static JsonNode? YamlToJson(string text, Dictionary<string, int> lines)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return stream.Documents.Count == 0 ? null : Convert(stream.Documents[0].RootNode, "", lines);
    }

    /// <summary>The node as JSON; records the line of every value under its key path (YamlDotNet counts lines from 1).</summary>
    private static JsonNode? Convert(YamlNode node, string path, Dictionary<string, int> lines)
    {
        if (path.Length > 0)
            lines[path] = (int)node.Start.Line;
        return node switch
        {
            YamlMappingNode map => new JsonObject(map.Children.Select(kv =>
            {
                var key = ((YamlScalarNode)kv.Key).Value ?? "";
                return KeyValuePair.Create(key, Convert(kv.Value, path.Length == 0 ? key : $"{path}.{key}", lines));
            })),
            YamlSequenceNode seq => new JsonArray(seq.Children.Select((child, i) => Convert(child, $"{path}[{i}]", lines)).ToArray()),
            YamlScalarNode s => Scalar(s),
            _ => null,
        };
    }

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
