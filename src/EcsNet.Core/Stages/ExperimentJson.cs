using System.Text.Json;
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
        try
        {
            return JsonSerializer.Deserialize<ExperimentConfig>(File.ReadAllText(path), ConfigJson.Options)
                   ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new BadInputException(path, $"unreadable experiment file: {e.Message}");
        }
    }
}
