using EcsNet.Core.Weights;
using EcsNet.Data;

namespace EcsNet.Core.Stages;

/// <summary>
/// A trained network found from what a user points at: the folder holding its <c>experiment.json</c> and the
/// folder to load weights from (a run folder, whose latest checkpoint is used, or one checkpoint).
/// </summary>
public sealed record TrainedRun(string ConfigDir, string Weights)
{
    /// <summary>
    /// The run of <paramref name="stage"/> that <paramref name="given"/> names: the run folder itself (what
    /// train-cam/train-seg wrote), the pipeline's stage folder (<c>RUN/cam</c>, whose run is <c>RUN/cam/run</c>), the
    /// pipeline's run root (<c>RUN</c>, when <c>RUN/cam/run</c> is the one trained run under it), or one checkpoint
    /// folder (<c>…/checkpoints/step-000300</c>).
    /// </summary>
    /// <exception cref="BadInputException">None of these holds a trained run, or more than one does; lists what was looked for.</exception>
    public static TrainedRun Find(string given, string stage, string verb)
    {
        static bool IsRun(string dir) =>
            File.Exists(Path.Combine(dir, CamStage.ConfigFileName)) && Checkpoints.Latest(dir) is not null;

        if (IsRun(given))
            return new TrainedRun(given, given);
        // One checkpoint: RUN/checkpoints/step-N, with the experiment two levels up.
        if (File.Exists(Path.Combine(given, "model.bin"))
            && Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(given))) is { } owner
            && File.Exists(Path.Combine(owner, CamStage.ConfigFileName)))
            return new TrainedRun(owner, given);

        var candidates = new[] { Path.Combine(given, "run"), Path.Combine(given, stage, "run") };
        var found = candidates.Where(IsRun).ToList();
        if (found.Count == 1)
            return new TrainedRun(found[0], found[0]);
        if (found.Count > 1)
            throw new BadInputException(given, $"more than one {verb} run under it ({string.Join(", ", found)}); pass the one to use");
        var looked = new[] { given }.Concat(candidates).Select(d => $"{d}{Path.DirectorySeparatorChar}");
        throw new BadInputException(given,
            $"not a {verb} run folder: looked for {CamStage.ConfigFileName} and checkpoints{Path.DirectorySeparatorChar}latest in " +
            $"{string.Join(", ", looked)} (the run folder, the pipeline's {stage} folder, the pipeline's run), and for model.bin of a checkpoint folder");
    }
}
