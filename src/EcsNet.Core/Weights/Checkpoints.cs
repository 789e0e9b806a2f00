using System.Text.Json;
using static TorchSharp.torch;

namespace EcsNet.Core.Weights;

/// <summary>
/// Checkpoints of a training run: RUN/checkpoints/step-NNNNNN/{model.bin, optimizer.bin, state.json} and a
/// `latest` pointer. A checkpoint folder is renamed into place only when complete, so a crash mid-write
/// never leaves a half checkpoint that looks finished. Randomness in our trainers is a pure function of
/// (seed, step), so (step, seed) is the whole RNG state.
/// </summary>
public static class Checkpoints
{
    public sealed record State(int Step, int Seed);

    public static string Dir(string runDir) => Path.Combine(runDir, "checkpoints");

    /// <summary>The folder the checkpoint of <paramref name="step"/> is (or will be) saved in.</summary>
    public static string PathOf(string runDir, int step) => Path.Combine(Dir(runDir), $"step-{step:D6}");

    public static string Save(string runDir, int step, int seed, nn.Module model, optim.Optimizer optimizer)
    {
        var root = Dir(runDir);
        var dir = PathOf(runDir, step);
        var tmp = dir + ".tmp";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        model.save(Path.Combine(tmp, "model.bin"));
        ((TorchSharp.Modules.OptimizerHelper)optimizer).save_state_dict(Path.Combine(tmp, "optimizer.bin"));
        File.WriteAllText(Path.Combine(tmp, "state.json"), JsonSerializer.Serialize(new State(step, seed)));
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        Directory.Move(tmp, dir);
        File.WriteAllText(Path.Combine(root, "latest"), Path.GetFileName(dir));
        return dir;
    }

    /// <summary>The newest complete checkpoint of a run, or null.</summary>
    public static string? Latest(string runDir)
    {
        var pointer = Path.Combine(Dir(runDir), "latest");
        if (!File.Exists(pointer)) return null;
        var dir = Path.Combine(Dir(runDir), File.ReadAllText(pointer).Trim());
        return Directory.Exists(dir) ? dir : null;
    }

    /// <summary>Restores model and optimizer from the latest checkpoint; returns the step to continue from (0 if none).</summary>
    public static int Resume(string runDir, int seed, nn.Module model, optim.Optimizer optimizer)
    {
        var dir = Latest(runDir);
        if (dir is null) return 0;
        var state = JsonSerializer.Deserialize<State>(File.ReadAllText(Path.Combine(dir, "state.json")))
            ?? throw new EcsNet.Data.BadInputException(Path.Combine(dir, "state.json"), "unreadable checkpoint state");
        if (state.Seed != seed)
            throw new EcsNet.Data.BadInputException(dir, $"checkpoint was trained with seed {state.Seed}, not {seed}; use another run folder");
        model.load(Path.Combine(dir, "model.bin"));
        ((TorchSharp.Modules.OptimizerHelper)optimizer).load_state_dict(Path.Combine(dir, "optimizer.bin"));
        return state.Step;
    }

    /// <summary>Loads the weights of a checkpoint folder, or of a run folder's latest checkpoint.</summary>
    public static string LoadWeights(nn.Module model, string runOrCheckpoint)
    {
        var dir = Latest(runOrCheckpoint) ?? runOrCheckpoint;
        var file = Path.Combine(dir, "model.bin");
        if (!File.Exists(file))
            throw new EcsNet.Data.BadInputException(runOrCheckpoint, "no checkpoint found (expected checkpoints/latest or model.bin)");
        model.load(file);
        return dir;
    }
}
