using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;

namespace EcsNet.Control.Reports;

/// <summary>What goes into a run report.</summary>
public sealed record RunReportOptions
{
    /// <summary>Rows of the overlay grid (images), the most complete first.</summary>
    public int OverlayImages { get; init; } = 4;

    /// <summary>The report's title; null: the run folder's name.</summary>
    public string? Title { get; init; }
}

/// <summary>
/// The run report (docs/REPORT.md): one self-contained HTML page (inline CSS, SVG and base64 PNGs; no script, no
/// external address) with the stage table, the loss curves of the training stages, per-class IoU bars and a grid
/// of overlays. <see cref="RunReportData.Read"/> reads the run folder; <see cref="Render"/> writes the page.
/// </summary>
public static class RunReport
{
    private static readonly byte[] PngSignature = { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0d, 0x0a, 0x1a, 0x0a };

    private const string Style = """
        body { font-family: sans-serif; margin: 24px; color: #222; }
        table { border-collapse: collapse; }
        th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        figure { display: inline-block; vertical-align: top; margin: 0 24px 16px 0; }
        figcaption { font-weight: bold; margin-bottom: 4px; }
        img.overlay { max-width: 220px; max-height: 220px; display: block; }
        .missing, .note { color: #888; font-style: italic; }
        .caption { font-size: 11px; color: #555; }
        pre { background: #f6f6f6; padding: 8px; overflow: auto; max-height: 400px; }
        """;

    /// <summary>The report of <paramref name="runDir"/> as an HTML page.</summary>
    /// <exception cref="EcsNet.Data.BadInputException">The folder is missing or has no stage folder.</exception>
    public static string Build(string runDir, RunReportOptions? options = null)
    {
        options ??= new RunReportOptions();
        return Render(RunReportData.Read(runDir, options.OverlayImages), options);
    }

    /// <summary>The HTML page of data already read.</summary>
    public static string Render(RunReportData data, RunReportOptions? options = null)
    {
        var title = $"Run report: {options?.Title ?? data.Name}";
        var html = new StringBuilder()
            .Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append($"<title>{E(title)}</title>\n<style>\n{Style}</style>\n</head>\n<body>\n")
            .Append($"<h1 id=\"title\">{E(title)}</h1>\n")
            .Append($"<p class=\"note\">{E(Path.GetFullPath(data.RunDir))}: {data.Stages.Count(s => s.Manifest is not null)} of {data.Stages.Count} stages finished</p>\n");
        StageTable(html, data);
        LossCharts(html, data);
        ClassIoU(html, data);
        Overlays(html, data);
        if (data.Experiment is not null)
            html.Append("<section id=\"experiment\">\n<h2>Experiment</h2>\n<details><summary>experiment.json</summary>\n")
                .Append($"<pre>{E(data.Experiment)}</pre>\n</details>\n</section>\n");
        return html.Append("</body>\n</html>\n").ToString();
    }

    private static void StageTable(StringBuilder html, RunReportData data)
    {
        html.Append("<section>\n<h2>Stages</h2>\n<table id=\"stages\">\n<thead><tr>")
            .Append(string.Concat(new[] { "stage", "what", "mIoU %", "best bg threshold (mIoU %)", "time s", "status" }.Select(h => $"<th>{E(h)}</th>")))
            .Append("</tr></thead>\n<tbody>\n");
        foreach (var s in data.Stages)
        {
            var best = s.BestThreshold is { } b ? $"{Num(b.Threshold, "0.00")} ({Percent(b.MeanIoU)})" : "-";
            var status = s.Manifest is null ? "unfinished" : s.Reused switch { true => "reused", false => "new", null => "finished" };
            html.Append($"<tr data-stage=\"{E(s.Stage)}\"><td>{E(s.Stage)}</td><td>{E(s.Title)}</td>")
                .Append($"<td class=\"num miou\">{Percent(s.MeanIoU)}</td><td class=\"num\">{E(best)}</td>")
                .Append($"<td class=\"num\">{(s.Manifest is { } mf ? Num(mf.Seconds, "0.0") : "-")}</td><td>{status}</td></tr>\n");
        }
        html.Append("</tbody>\n</table>\n</section>\n");
    }

    private static void LossCharts(StringBuilder html, RunReportData data) =>
        Figures(html, "losses", "Training losses", "No stage has a training log yet.",
            data.Stages.Where(s => s.Losses is { Steps: > 0, Terms.Count: > 0 }),
            s => ($"{s.Stage}: {s.Losses!.Steps} steps", SvgCharts.LossChart(s.Stage, s.Losses)));

    private static void ClassIoU(StringBuilder html, RunReportData data) =>
        Figures(html, "class-iou", "Per-class IoU", "No stage has per-class IoUs (they need ground-truth masks).",
            data.Stages.Where(s => s.ClassIoUs.Count > 0),
            s => ($"{s.Stage}: mIoU {Percent(s.MeanIoU)} %", SvgCharts.ClassIoUChart(s.Stage, s.ClassIoUs)));

    /// <summary>A section of one captioned chart per stage, or a note when no stage has one.</summary>
    private static void Figures(StringBuilder html, string id, string heading, string none, IEnumerable<StageReport> stages,
        Func<StageReport, (string Caption, string Svg)> chart)
    {
        html.Append($"<section id=\"{id}\">\n<h2>{E(heading)}</h2>\n");
        int count = 0;
        foreach (var (caption, svg) in stages.Select(chart))
        {
            html.Append($"<figure><figcaption>{E(caption)}</figcaption>\n{svg}\n</figure>\n");
            count++;
        }
        if (count == 0)
            html.Append($"<p class=\"note\">{E(none)}</p>\n");
        html.Append("</section>\n");
    }

    private static void Overlays(StringBuilder html, RunReportData data)
    {
        html.Append("<section id=\"overlays\">\n<h2>Overlays</h2>\n");
        if (data.Overlays.Count == 0)
        {
            html.Append("<p class=\"note\">No overlay images in this run.</p>\n</section>\n");
            return;
        }
        html.Append("<table class=\"overlay-grid\">\n<thead><tr><th>image</th>")
            .Append(string.Concat(data.OverlayColumns.Select(c => $"<th>{E(c.Title)}</th>")))
            .Append("</tr></thead>\n<tbody>\n");
        foreach (var row in data.Overlays)
        {
            html.Append($"<tr data-image=\"{E(row.ImageId)}\"><th>{E(row.ImageId)}</th>");
            for (int i = 0; i < row.Cells.Count; i++)
                html.Append(OverlayCell(data.OverlayColumns[i], row.ImageId, row.Cells[i]));
            html.Append("</tr>\n");
        }
        html.Append("</tbody>\n</table>\n</section>\n");
    }

    /// <summary>The image inlined as a data URL, or a note where there is no readable PNG.</summary>
    private static string OverlayCell(OverlayColumn column, string id, OverlayFile? file)
    {
        if (file is null)
            return $"<td class=\"missing\">no {E(column.Title)} overlay</td>";
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(file.Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"<td class=\"missing\">unreadable: {E(e.Message)}</td>";
        }
        if (!bytes.AsSpan().StartsWith(PngSignature))
            return $"<td class=\"missing\">{E(Path.GetFileName(file.Path))} is not a PNG</td>";
        var alt = $"{column.Title} of {id}" + (file.Detail.Length > 0 ? $" ({file.Detail})" : "");
        var caption = file.Detail.Length > 0 ? $"<div class=\"caption\">{E(file.Detail)}</div>" : "";
        return $"<td><img class=\"overlay\" alt=\"{E(alt)}\" src=\"data:image/png;base64,{Convert.ToBase64String(bytes)}\">{caption}</td>";
    }

    private static string E(string text) => HtmlEncoder.Default.Encode(text);

    private static string Num(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>A fraction in percent with one decimal; "-" for none (no score, or NaN when nothing was counted).</summary>
    private static string Percent(double? fraction) => fraction is { } f && !double.IsNaN(f) ? Num(100 * f, "0.0") : "-";
}
