using System.Text.Json;
using System.Text.Json.Nodes;
using EcsNet.Data;

namespace EcsNet.Core.Stages;

/// <summary>The experiment on disk: the JSON form of <see cref="ExperimentConfig"/> that runs and training jobs carry.</summary>
public static class ExperimentJson
{
    public static void Write(string path, ExperimentConfig config) =>
        AtomicFile.WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(config, ConfigJson.Options)));

    /// <exception cref="BadInputException">The file is missing or not an experiment (named).</exception>
    public static ExperimentConfig Read(string path)
    {
        if (!File.Exists(path))
            throw new BadInputException(path, "experiment file not found");
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new BadInputException(path, $"unreadable experiment file: {e.Message}");
        }
        try
        {
            return node.Deserialize<ExperimentConfig>(ConfigJson.Options) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            // A wrong type names the key, the value and the type it takes (the serializer's line would be one of
            // the re-serialised node, not of the file).
            if (OptionValueError.Describe(e, node, typeof(ExperimentConfig)) is { } error)
                throw new BadInputException(path, $"{error.Key}: {error.Problem}", e);
            throw new BadInputException(path, $"unreadable experiment file: {e.Message}", e);
        }
    }
}
