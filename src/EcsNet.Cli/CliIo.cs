using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>Where a command writes: a Spectre console for tables and progress, plain writers for JSON and errors.</summary>
public sealed record CliIo(IAnsiConsole Console, TextWriter Out, TextWriter Err)
{
    public static CliIo Default { get; } = new(AnsiConsole.Console, System.Console.Out, System.Console.Error);

    /// <summary>A console that writes into the given writers without colour (tests, pipes).</summary>
    public static CliIo ToWriters(TextWriter output, TextWriter error) => new(
        AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        }),
        output,
        error);
}
