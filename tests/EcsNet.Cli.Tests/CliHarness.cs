using EcsNet.Data;

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

/// <summary>A temporary folder, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ecsnet-cli-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string relative) => System.IO.Path.Combine(Path, relative);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>../shared/data/voc2012-real-sample, found by walking up from the test binaries.</summary>
public static class RealVocSample
{
    public const string Relative = "shared/data/voc2012-real-sample";

    public static readonly string? Root = Find();

    private static string? Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, Relative);
            if (Directory.Exists(candidate))
                return candidate;
        }
        return null;
    }

    public static string MaskFolder => System.IO.Path.Combine(Root!, "VOCdevkit", "VOC2012", VocLayout.SegmentationMasks);
}

/// <summary>A fact skipped, with the reason, when the real VOC sample is absent.</summary>
public sealed class RealDataFactAttribute : FactAttribute
{
    public RealDataFactAttribute()
    {
        if (RealVocSample.Root is null)
            Skip = $"{RealVocSample.Relative} not found above {AppContext.BaseDirectory}; real-data tests skipped";
    }
}
