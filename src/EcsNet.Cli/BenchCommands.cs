using System.CommandLine;

namespace EcsNet.Cli;

/// <summary>`ecsnet bench …`: re-measurable speed figures for the hot stages (results in docs/BENCHMARKS*.md).</summary>
public static class BenchCommands
{
    public static Command Build(CliIo io)
    {
        var bench = new Command("bench", "Micro-benchmarks of the hot stages on synthetic, deterministic inputs (median ms).");
        bench.Subcommands.Add(CrfBenchCommand.Build(io));
        bench.Subcommands.Add(BenchRandomWalkCommand.Build(io));
        bench.Subcommands.Add(BenchStepCommand.Build(io));
        bench.Subcommands.Add(BenchAllReduceCommand.Build(io));
        bench.Subcommands.Add(BenchDataParallelCommand.Build(io));
        bench.Subcommands.Add(BenchTrainCamCommand.Build(io));
        bench.Subcommands.Add(BenchDeviceCommand.Build(io));
        bench.Subcommands.Add(BenchClusterCommand.Build(io));
        bench.Subcommands.Add(BenchReformCommand.Build(io));
        return bench;
    }
}
