

namespace EcsNet.Cli.Tests;

/// <summary>CLI tests share the process console settings; run them one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CliCollection
{
    public const string Name = "cli";
}

/// <summary>Runs `ecsnet` in process and captures what it writes.</summary>
public static class Ecsnet
{
    public sealed record Result(int Exit, string Out, string Err)
    {
        public override string ToString() => $"exit {Exit}\n--- out ---\n{Out}\n--- err ---\n{Err}";
    }

    public static async Task<Result> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await EcsNetCli.RunAsync(args, CliIo.ToWriters(output, error));
        return new Result(exit, output.ToString(), error.ToString());
    }
}
