using System.CommandLine;
using EcsNet.Cluster.Messages;
using EcsNet.Core.Nets;
using EcsNet.Core.Runtime;
using EcsNet.Core.Stages;
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
    private static readonly Option<string?> Force = new("--force") { Description = "Comma-separated stages to recompute even if their outputs are up to date (default: none)." };
    private static readonly Option<BackboneKind?> Backbone = new("--backbone")
    {
        Description = $"{CamCommands.BackboneHelp} ({CamCommands.FromExperiment("backbone", ExperimentConfig.SmallCpu.Backbone)}).",
    };
    private static readonly Option<string?> Weights = new("--weights") { Description = "ImageNet weights file for the trunk; without it the trunk starts from scratch (resnet18: from the ImageNet weights installed with the build)." };
    private static readonly Option<string> Device = new("--device") { Description = "Device of every worker: cpu, cuda or cuda:N (the CUDA build).", DefaultValueFactory = _ => "cpu" };
    private static readonly Option<int> Workers = new("--workers")
    {
        Description = "Worker actors of the embedded cluster (one data-parallel replica each; the global batch is split over them).",
        DefaultValueFactory = _ => 1,
    };

    private static Command PipelineCommand(CliIo io)
    {
        var voc = new Option<string>("--voc") { Description = "VOC2012 (or VOCdevkit) folder.", Required = true };
        var output = new Option<string>("--out") { Description = "Run folder: one sub-folder per stage with a manifest.", Required = true };
        var cmd = new Command("pipeline", "Run the whole method stage by stage (CAM → CRF → AffinityNet → random walk → DeepLab) on an embedded cluster (all roles in this process: the training coordinator, --workers worker actors, the job and sample entities); finished stages are reused.")
        {
            voc, output, Train, Val, Stages, Force, Backbone, Weights, CamCommands.NoPretrainedOption, Workers, Device, CamCommands.PresetOption, CamCommands.ConfigOption, CamCommands.SetOption,
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
        var cmd = new Command("demo", "The embedded default: generate a synthetic VOC-layout set and run the whole pipeline on it, on an embedded one-process cluster: the small CPU trunk, or the ImageNet ResNet-18 with --preset quality.")
        {
            output, images, val, seed, Train, Val, Stages, Force, Workers, Device, CamCommands.PresetOption, CamCommands.ConfigOption, CamCommands.SetOption,
        };
        cmd.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var root = parse.GetValue(output)!;
            var config = Configure(parse, CamCommands.Config(parse));
            config.Validate();   // before generating anything
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
            await RunPipeline(io, parse, config, data, Path.Combine(root, "run"), ct);
            return EcsNetCli.ExitOk;
        }));
        return cmd;
    }

    private static ExperimentConfig Configure(ParseResult parse, ExperimentConfig config)
    {
        if (parse.GetResult(Backbone) is not null && parse.GetValue(Backbone) is { } b) config = config with { Backbone = b };
        if (parse.GetResult(Weights) is not null && parse.GetValue(Weights) is { } w) config = config with { Weights = w };
        return CamCommands.WithPretrained(parse, config);
    }

    private static async Task RunPipeline(CliIo io, ParseResult parse, ExperimentConfig config, string voc, string runDir, CancellationToken ct)
    {
        static string[] List(string? s) => (s ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var only = List(parse.GetValue(Stages));
        var force = List(parse.GetValue(Force));
        var known = PipelineStages.Default().Stages.Select(s => s.Name).ToArray();
        foreach (var name in only.Concat(force))
            if (!known.Contains(name))
                throw new BadInputException($"stage '{name}'", $"unknown stage; the stages are {string.Join(", ", known)}");
        int workers = parse.GetValue(Workers);
        if (workers is < 1 or > 64)
            throw new BadInputException("--workers", $"{workers} is outside 1..64");
        var device = Devices.Normalize(parse.GetValue(Device)!);
        if (device != "cpu")
            Devices.Resolve(device);   // fails here, clearly, when this build or machine has no such GPU
        // Everything the stages will read is checked before the run folder is touched: the options, the files
        // they name, both splits (annotations only; the images are checked by the stages that decode them).
        config.Validate();
        NewRunFolder.CheckWeights(config.Weights, "--weights or the experiment's weights");
        NewRunFolder.CheckWeights(config.Seg.WeightsFor(config), "the experiment's seg.weights");
        var splits = new VocOptions { VerifyImages = false };
        VocDataset.Open(voc, parse.GetValue(Train)!, splits);
        VocDataset.Open(voc, parse.GetValue(Val)!, splits);

        await NewRunFolder.Run(runDir, async () =>
        {
            // The run's experiment goes into the run folder, where every node of the cluster reads it.
            Directory.CreateDirectory(runDir);
            var experiment = Path.GetFullPath(Path.Combine(runDir, "experiment.json"));
            ExperimentJson.Write(experiment, config);
            var spec = new RunSpec
            {
                Run = RunId(runDir), ExperimentFile = experiment, VocRoot = Path.GetFullPath(voc), TrainSplit = parse.GetValue(Train)!,
                ValSplit = parse.GetValue(Val)!, RunDir = Path.GetFullPath(runDir), Workers = workers,
            };
            spec.Stages.AddRange(only);
            spec.Force.AddRange(force);
            await using var cluster = await EmbeddedCluster.StartAsync(io, workers, device, ct);
            var status = await cluster.RunAsync(io, "pipeline", spec, ct);
            PrintTable(io, status.Stages, runDir);
            return EcsNetCli.ExitOk;
        });
    }

    /// <summary>A run id from the run folder's name and the time (unique in one coordinator's lifetime).</summary>
    internal static string RunId(string runDir) =>
        $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(runDir)))}-{DateTime.UtcNow:yyyyMMdd-HHmmss-fff}";

    private static void PrintTable(CliIo io, IReadOnlyList<StageSummary> stages, string runDir)
    {
        var table = new Table().Title("stage-by-stage mIoU").AddColumn("stage").AddColumn("what").AddColumn("mIoU %").AddColumn("best bg thr (mIoU %)").AddColumn("time s").AddColumn("status");
        foreach (var o in stages)
        {
            var m = o.Metrics;
            string miou = m.TryGetValue("mIoU", out var v) ? (100 * v).ToString("F1") : "-";
            string best = m.TryGetValue("bestThreshold", out var t) && m.TryGetValue("mIoUAtBestThreshold", out var bv) ? $"{t:F2} ({100 * bv:F1})" : "-";
            table.AddRow(o.Stage, Markup.Escape(o.Title), miou, best, o.Seconds.ToString("F0"), Markup.Escape(o.Note));
        }
        io.Console.Write(table);
        var overlayDirs = stages.SelectMany(o => new[] { Path.Combine(runDir, o.Stage, "labels", "overlays"), Path.Combine(runDir, o.Stage, "overlays") }).Where(Directory.Exists).ToList();
        foreach (var d in overlayDirs)
            io.Console.MarkupLine($"overlays: [bold]{Markup.Escape(d)}[/]");
    }
}
