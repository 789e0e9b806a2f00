using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EcsNet.Data;
using EcsNet.Labels.Evaluation;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>`ecsnet eval`: mIoU of predicted label PNGs against VOC ground truth.</summary>
public static class EvalCommand
{
    public static Command Build(CliIo io)
    {
        var voc = new Option<string>("--voc") { Description = "VOC root: VOC2012, a VOCdevkit, or a folder holding VOCdevkit.", Required = true };
        var split = new Option<string>("--split") { Description = "Split name (train, val, ...) or id-list file.", Required = true };
        var pred = new Option<string>("--pred") { Description = "Folder of predicted label PNGs named ID.png (palette indices or grey values 0-20, 255).", Required = true };
        var json = new Option<bool>("--json") { Description = "Print machine-readable JSON instead of the table." };
        var maskFolder = new Option<string>("--mask-folder") { Description = "Folder of ground-truth masks under the root (SBD: SegmentationClassAug).", DefaultValueFactory = _ => VocLayout.SegmentationMasks };

        var eval = new Command("eval", "Score predicted label PNGs against the ground-truth masks of a split (mIoU, per-class IoU).")
        {
            voc, split, pred, json, maskFolder,
        };
        eval.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            var predDir = parse.GetValue(pred)!;
            var result = Evaluate(parse.GetValue(voc)!, parse.GetValue(split)!, predDir, parse.GetValue(maskFolder)!, ct);
            if (parse.GetValue(json))
                io.Out.WriteLine(ToJson(result, parse.GetValue(split)!, predDir));
            else
                Print(io, result);
            return Task.FromResult(EcsNetCli.ExitOk);
        }));
        return eval;
    }

    /// <summary>The score of a prediction folder and the number of images scored.</summary>
    public sealed record EvalResult(SegmentationScore Score, int Images);

    /// <summary>One confusion matrix over every id of the split (<see cref="LabelEvaluation.Score"/>).</summary>
    public static EvalResult Evaluate(string vocRoot, string split, string predDir, string maskFolder, CancellationToken ct)
    {
        var (score, images) = LabelEvaluation.Score(vocRoot, split, predDir, maskFolder, ct);
        return new EvalResult(score, images);
    }

    private static void Print(CliIo io, EvalResult r)
    {
        var s = r.Score;
        var table = new Table()
            .AddColumn("class")
            .AddColumn(new TableColumn("IoU %").RightAligned())
            .AddColumn(new TableColumn("gt pixels").RightAligned())
            .AddColumn(new TableColumn("pred pixels").RightAligned());
        foreach (var c in s.Classes)
            table.AddRow(c.Column, SegmentationScore.Percent(c.IoU),
                c.GroundTruthPixels.ToString(CultureInfo.InvariantCulture), c.PredictedPixels.ToString(CultureInfo.InvariantCulture));
        io.Console.Write(table);
        io.Out.WriteLine($"images {r.Images}, pixels {s.Pixels}, classes counted {s.ClassesCounted}");
        io.Out.WriteLine($"pixel accuracy {SegmentationScore.Percent(s.PixelAccuracy)}");
        io.Out.WriteLine($"mIoU {SegmentationScore.Percent(s.MeanIoU)}");
        io.Out.WriteLine("Table 7: " + string.Join(' ', Metrics.Table7Columns.Append("mean")));
        io.Out.WriteLine("         " + s.Table7Row());
    }

    private static string ToJson(EvalResult r, string split, string predDir)
    {
        static double? Num(double v) => double.IsNaN(v) ? null : v;
        var doc = new
        {
            split,
            pred = predDir,
            images = r.Images,
            pixels = r.Score.Pixels,
            meanIoU = Num(r.Score.MeanIoU),
            pixelAccuracy = Num(r.Score.PixelAccuracy),
            classesCounted = r.Score.ClassesCounted,
            classes = r.Score.Classes.Select(c => new
            {
                index = c.Index,
                name = c.Name,
                column = c.Column,
                iou = Num(c.IoU),
                gtPixels = c.GroundTruthPixels,
                predPixels = c.PredictedPixels,
            }),
            table7 = r.Score.Table7Row(),
        };
        return JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true });
    }
}
