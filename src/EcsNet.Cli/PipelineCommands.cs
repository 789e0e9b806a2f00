using System.CommandLine;
using EcsNet.Core.Nets;
using EcsNet.Core.Runtime;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Data;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>`ecsnet pipeline` (every stage, resumable) and `ecsnet demo` (synthetic data + pipeline).</summary>
public static class PipelineCommands
{
    public static IEnumerable<Command> Build(CliIo io)
    {
        yield return PipelineCommand(io);
        yield return Demo(io);
    }

    private static readonly Option<string> Train = new("--train-split") { Description = "Split the weak stages learn from and label.", DefaultValueFactory = _ => "train" };
    private static readonly Option<string> Val = new("--val-split") { Description = "Split the segmentation network is scored on.", DefaultValueFactory = _ => "val" };
    private static readonly Option<string?> Stages = new("--stages") { Description = "Comma-separated stages to run (default: all): cam,crf,aff,rw,seg." };
    private static readonly Option<string?> Force = new("--force") { Description = "Comma-separated stages to recompute even if their outputs are up to date." };
    private static readonly Option<BackboneKind?> Backbone = new("--backbone") { Description = "small, resnet38 or vgg16." };
    private static readonly Option<string?> Weights = new("--weights") { Description = "ImageNet weights file for the trunk." };
    private static readonly Option<string> Device = new("--device") { Description = "Where the training stages train: cpu, cuda or cuda:N (the CUDA build).", DefaultValueFactory = _ => "cpu" };

    private static Command PipelineCommand(CliIo io)
    {
        var voc = new Option<string>("--voc") { Description = "VOC2012 (or VOCdevkit) folder.", Required = true };
        var output = new Option<string>("--out") { Description = "Run folder: one sub-folder per stage with a manifest.", Required = true };
        var cmd = new Command("pipeline", "Run the whole method stage by stage (CAM → CRF → AffinityNet → random walk → DeepLab); finished stages are reused.")
        {
            voc, output, Train, Val, Stages, Force, Backbone, Weights, Device, CamCommands.ConfigOption, CamCommands.SetOption,
        };
        cmd.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var config = Configure(parse, CamCommands.Config(parse));
            await RunPipeline(io, parse, config, parse.GetValue(voc)!, parse.GetValue(output)!, ct);
            return EcsNetCli.ExitOk;
        }));
        return cmd;
    }

    private static Command Demo(CliIo io)
    {
        var output = new Option<string>("--out") { Description = "Folder for the generated data (data/) and the run (run/).", DefaultValueFactory = _ => Path.Combine("runs", "demo") };
        var images = new Option<int>("--images") { Description = "Synthetic training images.", DefaultValueFactory = _ => 240 };
        var val = new Option<int>("--val") { Description = "Synthetic validation images.", DefaultValueFactory = _ => 60 };
        var seed = new Option<int>("--seed") { Description = "Seed of the synthetic set.", DefaultValueFactory = _ => 1 };
        var cmd = new Command("demo", "The embedded default: generate a synthetic VOC-layout set and run the whole pipeline on it with the small CPU trunk.")
        {
            output, images, val, seed, Train, Val, Stages, Force, Device, CamCommands.ConfigOption, CamCommands.SetOption,
        };
        cmd.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var root = parse.GetValue(output)!;
            var data = Path.Combine(root, "data");
            var synth = new SynthOptions { TrainImages = parse.GetValue(images), ValImages = parse.GetValue(val), Seed = parse.GetValue(seed) };
            var marker = Path.Combine(data, "synth.json");
            var wanted = System.Text.Json.JsonSerializer.Serialize(synth);
            if (!File.Exists(marker) || File.ReadAllText(marker) != wanted)
            {
                io.Console.MarkupLine($"generating {synth.TrainImages} + {synth.ValImages} synthetic images in [bold]{Markup.Escape(data)}[/]");
                if (Directory.Exists(data)) Directory.Delete(data, true);
                SyntheticVoc.Generate(data, synth);
                File.WriteAllText(marker, wanted);
            }
            var config = Configure(parse, CamCommands.Config(parse));
            await RunPipeline(io, parse, config, data, Path.Combine(root, "run"), ct);
            return EcsNetCli.ExitOk;
        }));
        return cmd;
    }

    private static ExperimentConfig Configure(ParseResult parse, ExperimentConfig config)
    {
        if (parse.GetResult(Backbone) is not null && parse.GetValue(Backbone) is { } b) config = config with { Backbone = b };
        if (parse.GetResult(Weights) is not null && parse.GetValue(Weights) is { } w) config = config with { Weights = w };
        return config;
    }

    private static async Task RunPipeline(CliIo io, ParseResult parse, ExperimentConfig config, string voc, string runDir, CancellationToken ct)
    {
        var pipeline = PipelineStages.Default();
        static string[] List(string? s) => (s ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var only = List(parse.GetValue(Stages));
        var force = List(parse.GetValue(Force));
        var context = new PipelineContext(config, voc, parse.GetValue(Train)!, parse.GetValue(Val)!, runDir)
        {
            Training = new LocalTrainingRunner(new TrainingPlacement { Device = Devices.Resolve(parse.GetValue(Device)!) }),
        };
        var outcomes = await Progress.Run(io, "pipeline", (report, ct2) =>
            pipeline.Run(context with { Progress = (stage, done, total, text) => report(done, total, $"{stage} {text}") },
                only, force, o => io.Out.WriteLine($"stage {o.Stage}: {o.Note} ({o.Manifest.Seconds:F0} s)"), ct2), ct);
        PrintTable(io, outcomes, runDir);
    }

    private static void PrintTable(CliIo io, IReadOnlyList<StageOutcome> outcomes, string runDir)
    {
        var table = new Table().Title("stage-by-stage mIoU").AddColumn("stage").AddColumn("what").AddColumn("mIoU %").AddColumn("best bg thr (mIoU %)").AddColumn("time s").AddColumn("status");
        foreach (var o in outcomes)
        {
            var m = o.Manifest.Metrics;
            string miou = m.TryGetValue("mIoU", out var v) ? (100 * v).ToString("F1") : "-";
            string best = m.TryGetValue("bestThreshold", out var t) && m.TryGetValue("mIoUAtBestThreshold", out var bv) ? $"{t:F2} ({100 * bv:F1})" : "-";
            table.AddRow(o.Stage, Markup.Escape(o.Title), miou, best, o.Manifest.Seconds.ToString("F0"), Markup.Escape(o.Note));
        }
        io.Console.Write(table);
        var overlayDirs = outcomes.SelectMany(o => new[] { Path.Combine(runDir, o.Stage, "labels", "overlays"), Path.Combine(runDir, o.Stage, "overlays") }).Where(Directory.Exists).ToList();
        foreach (var d in overlayDirs)
            io.Console.MarkupLine($"overlays: [bold]{Markup.Escape(d)}[/]");
    }
}
