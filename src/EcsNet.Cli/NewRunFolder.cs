using EcsNet.Core.Stages;
using EcsNet.Data;

namespace EcsNet.Cli;

/// <summary>
/// The run folder a verb writes into, checked before anything is written and taken back when the verb fails
/// having written nothing but experiment files: a failed first run leaves no empty folder behind, while a folder
/// that existed before (an earlier or resumed run) is never touched.
/// </summary>
internal static class NewRunFolder
{
    /// <summary>Runs <paramref name="body"/>, which creates and fills <paramref name="runDir"/>; on failure removes what it created if that holds no work.</summary>
    public static async Task<T> Run<T>(string runDir, Func<Task<T>> body)
    {
        if (File.Exists(runDir))
            throw new BadInputException(runDir, "is a file; the run folder must be a folder (or not exist yet)");
        var created = FirstMissing(Path.GetFullPath(runDir));
        try
        {
            return await body();
        }
        catch
        {
            if (created is not null && Directory.Exists(created) && HoldsNoWork(created))
            {
                try
                {
                    Directory.Delete(created, recursive: true);
                }
                catch (IOException)
                {
                    // Best effort: the verb's own error is the one to report.
                }
            }
            throw;
        }
    }

    /// <summary>The outermost folder of <paramref name="path"/> that does not exist yet (what creating it would create); null when it exists.</summary>
    private static string? FirstMissing(string path)
    {
        string? missing = null;
        for (var dir = path; dir is not null && !Directory.Exists(dir); dir = Path.GetDirectoryName(dir))
            missing = dir;
        return missing;
    }

    /// <summary>Whether every file under <paramref name="dir"/> is an experiment file (or a temporary one): nothing a later run could reuse.</summary>
    private static bool HoldsNoWork(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).All(f =>
            Path.GetFileName(f) == CamStage.ConfigFileName || f.EndsWith(".tmp", StringComparison.Ordinal));

    /// <summary>
    /// Checks a weights file the run will load before the run starts, so a typo fails the command instead of a
    /// stage minutes later; <paramref name="origin"/> says where the path came from.
    /// </summary>
    public static void CheckWeights(string? path, string origin)
    {
        if (path is not null && !File.Exists(path))
            throw new BadInputException(path, $"weights file not found ({origin})");
    }
}
