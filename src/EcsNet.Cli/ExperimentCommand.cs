using System.CommandLine;
using EcsNet.Core.Stages;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet experiment`: the experiment a run would use — a preset, an experiment file and <c>--set</c> overrides
/// resolved and checked — printed as the JSON that runs write to their experiment.json.
/// </summary>
public static class ExperimentCommand
{
    public static Command Build(CliIo io)
    {
        var cmd = new Command("experiment", "Print the experiment a run would use (--preset, then --config, then --set, checked) as JSON; " +
                                            "save it to edit and pass it back with --config (docs/EXPERIMENTS.md).")
        {
            CamCommands.PresetOption, CamCommands.ConfigOption, CamCommands.SetOption,
        };
        cmd.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            var config = CamCommands.Config(parse);
            config.Validate();
            io.Out.WriteLine(ExperimentFile.ToJson(config));
            return Task.FromResult(EcsNetCli.ExitOk);
        }));
        return cmd;
    }
}
