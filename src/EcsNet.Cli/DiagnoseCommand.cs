using System.CommandLine;
using System.Text.Json;
using EcsNet.Core.Stages;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>`ecsnet diagnose RUN`: where a run's pseudo labels go wrong, stage by stage (<see cref="RunDiagnostics"/>).</summary>
public static class DiagnoseCommand
{
    public static Command Build(CliIo io)
    {
        var run = new Argument<string>("RUN") { Description = "A pipeline run folder: `pipeline --out RUN`, or `demo --out D`'s D/run (RUN/experiment.json, RUN/cam, …)." };
        var voc = new Option<string>("--voc") { Description = "VOC2012 (or VOCdevkit) folder of the run, with the split's masks.", Required = true };
        var split = new Option<string>("--split") { Description = "Split the stages labelled.", DefaultValueFactory = _ => "train" };
        var noAffinity = new Option<bool>("--no-affinity") { Description = "Skip AffinityNet's la/ha labels (they are recomputed from the CAMs: two dense CRFs per image)." };
        var noReliable = new Option<bool>("--no-reliable") { Description = "Skip ECS-Net's erased regions and reliable labels Φ (they are recomputed with the trained CAM network: two passes per image)." };
        var json = new Option<bool>("--json") { Description = "Print machine-readable JSON instead of the tables." };
        var cmd = new Command("diagnose", "Where a run's pseudo labels go wrong against the masks: per stage (cam, crf, rw) object pixels missed, " +
                                          "mislabelled or bled into the background, part against body on synthetic sets; ECS-Net's erased regions and reliable labels Φ; and how right AffinityNet's la/ha training labels and pairs are (docs/RESULTS.md).")
        {
            run, voc, split, noAffinity, noReliable, json,
        };
        cmd.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            var diagnosis = RunDiagnostics.Diagnose(parse.GetValue(run)!, parse.GetValue(voc)!, parse.GetValue(split)!, !parse.GetValue(noAffinity),
                !parse.GetValue(noReliable), ct);
            if (parse.GetValue(json))
                io.Out.WriteLine(ToJson(diagnosis));
            else
                Print(io, diagnosis);
            return Task.FromResult(EcsNetCli.ExitOk);
        }));
        return cmd;
    }

    private static string Pct(double v) => double.IsNaN(v) ? "—" : (100 * v).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);

    private static void Print(CliIo io, RunDiagnosis d)
    {
        var stages = new Table().AddColumn("stage");
        foreach (var h in new[] { "recall %", "precision %", "missed %", "wrong class %", "ignored %", "bleed %" }
                     .Concat(d.HasParts ? new[] { "part %", "body %" } : Array.Empty<string>()))
            stages.AddColumn(new TableColumn(h).RightAligned());
        foreach (var (stage, b) in d.Stages)
        {
            var cells = new List<string>
            {
                stage, Pct(b.ObjectRecall), Pct(b.ObjectPrecision), Pct(b.MissedRate),
                Pct(b.WrongClassRate), Pct(b.IgnoredRate), Pct(b.BleedRate),
            };
            if (d.HasParts)
                cells.AddRange(new[] { Pct(b.PartRecall), Pct(b.BodyRecall) });
            stages.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        io.Console.Write(stages);
        io.Out.WriteLine($"{d.Images} images. Recall, missed (labelled background), wrong class and ignored: shares of the object pixels; precision: of the pixels labelled as an object; " +
            $"bleed: background pixels labelled as an object{(d.HasParts ? "; part and body: recall on the part masks and on the rest of each object" : "")}.");
        if (d.Reliable is { } r)
        {
            var phi = new Table().AddColumn("ECS-Net's R and Φ (whole images)").AddColumn(new TableColumn("value").RightAligned()).AddColumn("of");
            phi.AddRow("erased pixels that are object %", Pct(r.ErasedPrecision), $"{r.ErasedPixels} erased pixels");
            if (d.HasParts)
            {
                phi.AddRow("part pixels erased %", Pct(r.ErasedPartShare), $"{r.PartPixels} part pixels");
                phi.AddRow("body pixels erased %", Pct(r.ErasedBodyShare), $"{r.BodyPixels} body pixels");
            }
            phi.AddRow("image in Φ %", Pct(r.PhiShare), $"{r.Pixels} pixels");
            phi.AddRow("Φ object labels right %", Pct(r.PhiObjectPrecision), $"{r.PhiObject} pixels");
            phi.AddRow("Φ background labels right %", Pct(r.PhiBackgroundPrecision), $"{r.PhiBackground} pixels");
            phi.AddRow("object pixels Φ labels right %", Pct(r.PhiObjectCoverage), $"{r.ObjectPixels} object pixels");
            if (d.HasParts)
                phi.AddRow("body pixels Φ labels right %", Pct(r.PhiBodyCoverage), $"{r.BodyPixels} body pixels");
            io.Console.Write(phi);
        }
        if (d.Affinity is not { } a)
            return;
        var aff = new Table().AddColumn("AffinityNet labels (la/ha)").AddColumn(new TableColumn("value").RightAligned()).AddColumn("of");
        aff.AddRow("cells labelled background, right %", Pct(a.BackgroundPrecision), $"{a.BackgroundCells} cells");
        aff.AddRow("cells labelled an object, right %", Pct(a.ObjectPrecision), $"{a.ObjectCells} cells");
        aff.AddRow("object cells labelled right (coverage) %", Pct(a.ObjectCoverage), $"{a.TrueObjectCells} object cells");
        aff.AddRow("cells ignored %", Pct(a.IgnoredShare), $"{a.Cells} cells");
        aff.AddRow("'same' pairs, both background, right %", Pct(a.SameBackgroundPrecision), $"{a.SameBackgroundPairs} pairs");
        aff.AddRow("'same' pairs, one object, right %", Pct(a.SameObjectPrecision), $"{a.SameObjectPairs} pairs");
        aff.AddRow("'different' pairs, right %", Pct(a.DifferentPrecision), $"{a.DifferentPairs} pairs");
        aff.AddRow("within-object pairs that get a label %", Pct(a.ObjectPairCoverage), $"{a.TrueObjectPairs} pairs");
        io.Console.Write(aff);
    }

    private static string ToJson(RunDiagnosis d)
    {
        static double? Num(double v) => double.IsNaN(v) ? null : v;
        var doc = new
        {
            images = d.Images,
            stages = d.Stages.Select(s => new
            {
                stage = s.Stage,
                objectRecall = Num(s.Breakdown.ObjectRecall),
                objectPrecision = Num(s.Breakdown.ObjectPrecision),
                objectPixels = s.Breakdown.ObjectPixels,
                objectAsBackground = s.Breakdown.ObjectAsBackground,
                objectWrongClass = s.Breakdown.ObjectWrongClass,
                objectIgnored = s.Breakdown.ObjectIgnored,
                backgroundPixels = s.Breakdown.BackgroundPixels,
                backgroundAsObject = s.Breakdown.BackgroundAsObject,
                partRecall = Num(s.Breakdown.PartRecall),
                bodyRecall = Num(s.Breakdown.BodyRecall),
            }),
            reliable = d.Reliable is not { } r ? null : new
            {
                erasedPrecision = Num(r.ErasedPrecision),
                erasedPartShare = Num(r.ErasedPartShare),
                erasedBodyShare = Num(r.ErasedBodyShare),
                phiShare = Num(r.PhiShare),
                phiObjectPrecision = Num(r.PhiObjectPrecision),
                phiBackgroundPrecision = Num(r.PhiBackgroundPrecision),
                phiObjectCoverage = Num(r.PhiObjectCoverage),
                phiBodyCoverage = Num(r.PhiBodyCoverage),
                phiObjectPixels = r.PhiObject,
                phiBackgroundPixels = r.PhiBackground,
            },
            affinity = d.Affinity is not { } a ? null : new
            {
                backgroundPrecision = Num(a.BackgroundPrecision),
                objectPrecision = Num(a.ObjectPrecision),
                objectCoverage = Num(a.ObjectCoverage),
                ignoredShare = Num(a.IgnoredShare),
                sameBackgroundPrecision = Num(a.SameBackgroundPrecision),
                sameObjectPrecision = Num(a.SameObjectPrecision),
                differentPrecision = Num(a.DifferentPrecision),
                objectPairCoverage = Num(a.ObjectPairCoverage),
                sameBackgroundPairs = a.SameBackgroundPairs,
                sameObjectPairs = a.SameObjectPairs,
                differentPairs = a.DifferentPairs,
            },
        };
        return JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true });
    }
}
