using EcsNet.Data;

namespace EcsNet.Labels.Jobs;

/// <summary>Field checks shared by the jobs: each failure names the job kind, its image and the field.</summary>
internal static class JobChecks
{
    public static void Id(string kind, string? imageId)
    {
        if (string.IsNullOrWhiteSpace(imageId))
            throw new BadInputException($"{kind} job", "image id is empty");
        if (imageId.IndexOfAny(new[] { '/', '\\' }) >= 0 || imageId is "." or "..")
            throw new BadInputException($"{kind} job for image '{imageId}'", "image id must be a file name, not a path");
    }

    public static void Path(string kind, string imageId, string field, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            throw new BadInputException($"{kind} job for image '{imageId}'", $"{field} is empty");
    }

    public static void Options(string kind, string imageId, string field, object? value)
    {
        if (value is null)
            throw new BadInputException($"{kind} job for image '{imageId}'", $"{field} are missing");
    }

    public static BadInputException Bad(string kind, string imageId, string problem) =>
        new($"{kind} job for image '{imageId}'", problem);
}
