using System.CommandLine;
using System.Globalization;
using System.Text;
using EcsNet.Control.Reports;
using EcsNet.Control.V1;
using EcsNet.Data;
using Grpc.Core;

namespace EcsNet.Cli;

/// <summary>`ecsnet report`: one self-contained HTML page of a pipeline run (docs/REPORT.md).</summary>
public static class ReportCommand
{
    public static Command Build(CliIo io)
    {
        var run = new Argument<string>("RUN")
        {
            Description = "A run folder (the pipeline's --out; the demo's is <out>/run), or the id of a run on a control API (--server, --token).",
        };
        var output = new Option<string>("--out") { Description = "HTML file to write.", DefaultValueFactory = _ => "report.html" };
        var images = new Option<int>("--images") { Description = "Images in the overlay grid.", DefaultValueFactory = _ => new RunReportOptions().OverlayImages };
        var cmd = new Command("report", "Write a run's report: stage table, loss curves, per-class IoU and overlays in one HTML file (no script, no external files).")
        {
            run, output, images,
        };
        var client = new ControlClient();
        client.AddTo(cmd);
        cmd.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            int count = parse.GetValue(images);
            if (count < 0)
                throw new BadInputException("--images", $"{count} is negative");
            var target = parse.GetValue(run)!;
            if (Directory.Exists(target) || target.Contains('/'))
                return await WriteLocalAsync(io, target, parse.GetValue(output)!, new RunReportOptions { OverlayImages = count }, ct);
            // a run id: the server writes the report of the run as it stands and sends it as an artifact
            var (api, channel) = client.Connect(parse);
            using (channel)
                return await ControlClient.Call(io, async () =>
                {
                    using var call = api.GetArtifacts(new GetArtifactsRequest { Run = target, Kinds = { "report" } }, cancellationToken: ct);
                    var page = new MemoryStream();
                    await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct))
                        chunk.Data.WriteTo(page);
                    if (page.Length == 0)
                        throw new BadInputException($"run {target}", "has no finished stage to report yet");
                    return await WriteAsync(io, Encoding.UTF8.GetString(page.ToArray()), parse.GetValue(output)!, ct);
                });
        }));
        return cmd;
    }

    /// <summary>The report of the run folder <paramref name="runDir"/> on this machine, written to <paramref name="outPath"/>.</summary>
    public static Task<int> WriteLocalAsync(CliIo io, string runDir, string outPath, RunReportOptions? options, CancellationToken ct) =>
        WriteAsync(io, RunReport.Build(runDir, options), outPath, ct);

    /// <summary>Writes a report page (from wherever it came) and prints where it went and its size.</summary>
    public static async Task<int> WriteAsync(CliIo io, string html, string outPath, CancellationToken ct)
    {
        var full = Path.GetFullPath(outPath);
        if (Path.GetDirectoryName(full) is { } dir)
            Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(full, html, new UTF8Encoding(false), ct);
        double kib = new FileInfo(full).Length / 1024.0;
        io.Out.WriteLine($"report: {full} ({kib.ToString("0.0", CultureInfo.InvariantCulture)} KiB)");
        return EcsNetCli.ExitOk;
    }
}
