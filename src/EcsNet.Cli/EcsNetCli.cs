using System.CommandLine;
using EcsNet.Data;

namespace EcsNet.Cli;

/// <summary>The `ecsnet` command tree. Each verb group lives in its own file and is added here.</summary>
public static class EcsNetCli
{
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitBadInput = 2;

    public static RootCommand Build(CliIo io)
    {
        var root = new RootCommand("EcsNet.Cluster: ECS-Net weakly supervised segmentation (CAM → erasing → CRF → AffinityNet → DeepLab).");
        foreach (var command in Commands(io))
            root.Subcommands.Add(command);
        return root;
    }

    private static IEnumerable<Command> Commands(CliIo io)
    {
        yield return DataCommands.Build(io);
        yield return EvalCommand.Build(io);
        yield return DiagnoseCommand.Build(io);
        foreach (var c in CamCommands.Build(io))
            yield return c;
        foreach (var c in SegCommands.Build(io))
            yield return c;
        foreach (var c in PipelineCommands.Build(io))
            yield return c;
        yield return ExperimentCommand.Build(io);
        yield return CrfCommand.Build(io);
        yield return ReportCommand.Build(io);
        yield return BenchCommands.Build(io);
        yield return CoordinatorCommand.Build(io);
        yield return WorkerCommand.Build(io);
        yield return NodeCommand.Build(io);
        yield return ServeCommand.Build(io);
        foreach (var c in ControlCommands.Build(io))
            yield return c;
    }

    public static async Task<int> RunAsync(string[] args, CliIo? io = null, CancellationToken cancellationToken = default)
    {
        io ??= CliIo.Default;
        var root = Build(io);
        var parsed = root.Parse(args);
        var invocation = new InvocationConfiguration { Output = io.Out, Error = io.Err };
        // A node's graceful leave (finish running jobs, hand off shards) takes longer than the 2 s System.CommandLine
        // allows after SIGTERM; its host's own console lifetime handles SIGTERM and Ctrl-C instead.
        if (parsed.CommandResult.Command.Name is NodeCommand.Name or ServeCommand.Name)
            invocation.ProcessTerminationTimeout = null;
        return await parsed.InvokeAsync(invocation, cancellationToken);
    }

    /// <summary>
    /// Wraps a verb's body: bad input is reported as one line naming the file and the problem (exit 2),
    /// cancellation as exit 130, anything else as an unexpected error (exit 1) with its type.
    /// </summary>
    public static Func<ParseResult, CancellationToken, Task<int>> Guard(CliIo io, Func<ParseResult, CancellationToken, Task<int>> body) =>
        async (parse, ct) =>
        {
            try
            {
                return await body(parse, ct);
            }
            catch (BadInputException e)
            {
                io.Err.WriteLine($"error: {e.Message}");
                return ExitBadInput;
            }
            catch (OperationCanceledException)
            {
                io.Err.WriteLine("cancelled");
                return 130;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                io.Err.WriteLine($"error: {e.GetType().Name}: {e.Message}");
                if (Environment.GetEnvironmentVariable("ECSNET_DEBUG") == "1")
                    io.Err.WriteLine(e.ToString());
                return ExitFailure;
            }
        };
}
