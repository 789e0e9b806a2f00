using System.Text.Json;
using System.Text.Json.Serialization;

namespace EcsNet.Core.Stages;

/// <summary>JSON settings for experiment and manifest files: camelCase, enums by name, unknown keys rejected.</summary>
public static class ConfigJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        IncludeFields = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };
}
