using System.CommandLine;
using System.Text.RegularExpressions;

namespace EcsNet.Cli.Tests;

/// <summary>What `--help` tells a newcomer: every default, and only documents that ship with the repository.</summary>
[Collection(CliCollection.Name)]
public partial class HelpTextTests
{
    private static IEnumerable<(string Path, Command Command)> Commands(Command command, string path)
    {
        yield return (path, command);
        foreach (var sub in command.Subcommands)
            foreach (var c in Commands(sub, $"{path} {sub.Name}"))
                yield return c;
    }

    private static IEnumerable<(string Where, Option Option)> Options() =>
        Commands(EcsNetCli.Build(CliIo.ToWriters(TextWriter.Null, TextWriter.Null)), "ecsnet")
            .SelectMany(c => c.Command.Options.Select(o => (Where: $"{c.Path} {o.Name}", Option: o)))
            .Where(o => o.Option.Name is not ("--help" or "--version") && !o.Option.Name.StartsWith("-?", StringComparison.Ordinal));

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "EcsNet.Cluster.sln")))
                return dir.FullName;
        throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Options whose absence means "not used" (no file, no override, not this mode): there is no default to show.</summary>
    private static readonly HashSet<string> WithoutDefault = new(StringComparer.Ordinal)
    {
        "--config", "--set", "--weights", "--trunk-from", "--overlay", "--token-file", "--ca", "--tls-cert", "--tls-key",
        "--save-input", "--save-output", "--inputs", "--coordinator", "--bench-sizes", "--dataparallel-steps",
        // train-cam: the data-parallel modes (without them it trains in this process); node, serve: the seed nodes to join.
        "ecsnet train-cam --workers", "ecsnet train-cam --world", "ecsnet node --seed", "ecsnet serve --seed",
    };

    [Fact]
    public void EveryOptionWithADefaultShowsIt()
    {
        // An option shows its default when System.CommandLine prints one ([default: …]) or its description says
        // what it is. Required options, on/off flags and hidden options have none to show.
        var missing = Options()
            .Where(o => !o.Option.Required && !o.Option.HasDefaultValue && !o.Option.Hidden && o.Option.ValueType != typeof(bool))
            .Where(o => !WithoutDefault.Contains(o.Option.Name) && !WithoutDefault.Contains(o.Where))
            .Where(o => !(o.Option.Description ?? "").Contains("default", StringComparison.OrdinalIgnoreCase))
            .Select(o => o.Where)
            .ToList();
        Assert.True(missing.Count == 0, "options whose help does not say their default:\n" + string.Join("\n", missing));
    }

    [Fact]
    public void HelpNamesOnlyDocumentsInTheRepository()
    {
        var root = RepoRoot();
        var texts = Commands(EcsNetCli.Build(CliIo.ToWriters(TextWriter.Null, TextWriter.Null)), "ecsnet")
            .SelectMany(c => new[] { (c.Path, c.Command.Description ?? "") }
                .Concat(c.Command.Options.Select(o => ($"{c.Path} {o.Name}", o.Description ?? "")))
                .Concat(c.Command.Arguments.Select(a => ($"{c.Path} {a.Name}", a.Description ?? ""))));
        var bad = new List<string>();
        foreach (var (where, text) in texts)
        {
            foreach (Match m in DocumentPattern().Matches(text))
                if (!File.Exists(Path.Combine(root, m.Value)))
                    bad.Add($"{where}: {m.Value}");
            if (text.Contains("SPEC", StringComparison.Ordinal))
                bad.Add($"{where}: SPEC");
        }
        Assert.True(bad.Count == 0, "help names documents the repository does not have:\n" + string.Join("\n", bad));
    }

    [Theory]
    [InlineData("train-cam", "--method", "ecs")]
    [InlineData("train-cam", "--epochs", "8")]
    [InlineData("train-seg", "--epochs", "12")]
    [InlineData("infer-cam", "--overlay-size", "384")]
    public async Task TheHelpOfAVerbShowsTheDefault(string verb, string option, string value)
    {
        var r = await Ecsnet.Run(verb, "--help");
        Assert.Equal(0, r.Exit);
        var line = string.Join(" ", r.Out.Split('\n').SkipWhile(l => !l.TrimStart().StartsWith(option, StringComparison.Ordinal)).TakeWhile((l, i) => i == 0 || !l.TrimStart().StartsWith('-')));
        // The help wraps long descriptions: compare with the line breaks and indentation folded away.
        Assert.Contains($"default: {value}", Regex.Replace(line, @"\s+", " "));
    }

    [GeneratedRegex(@"[\w./-]*[\w-]+\.md\b")]
    private static partial Regex DocumentPattern();
}
