using System.CommandLine;

namespace EcsNet.Cli;

/// <summary>`ecsnet data synth|check`.</summary>
public static class DataCommands
{
    public static Command Build(CliIo io)
    {
        var data = new Command("data", "Dataset tools: generate a synthetic VOC-layout set, validate a VOC tree.");
        return data;
    }
}
