using System.CommandLine;
using System.Globalization;
using EcsNet.Data;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>`ecsnet data synth|check`.</summary>
public static class DataCommands
{
    public static Command Build(CliIo io)
    {
        var data = new Command("data", "Dataset tools: generate a synthetic VOC-layout set, validate a VOC tree.");
        data.Subcommands.Add(Synth(io));
        data.Subcommands.Add(Check(io));
        return data;
    }

    /// <summary>
    /// The training verbs' bad-sample policy option (docs/DATA.md, "Bad input"): `--on-bad-sample fail|skip`,
    /// default fail. Pass its value as <see cref="VocOptions.OnBadSample"/>; report
    /// <see cref="VocDataset.Skipped"/>'s count.
    /// </summary>
    public static Option<OnBadSample> OnBadSampleOption() => new("--on-bad-sample")
    {
        Description = "What to do with a bad training sample (corrupt image, bad annotation): fail (stop, naming the file) or skip (leave it out and count it).",
        DefaultValueFactory = _ => OnBadSample.Fail,
    };

    private static Command Synth(CliIo io)
    {
        var defaults = new SynthOptions();
        var family = new Option<SynthFamily>("--family")
        {
            Description = "Generator: parts (look-alike bodies, a coloured part names the class) or marks (non-square images, class stripes plus a mark named by colour or shape, unlabelled clutter, occlusion, objects cut by the border).",
            DefaultValueFactory = _ => defaults.Family,
        };
        var outDir = new Option<string>("--out") { Description = "Folder to write into (the set goes to OUT/VOC2012).", Required = true };
        var images = new Option<int>("--images") { Description = "Number of training images (train.txt).", Required = true };
        var val = new Option<int?>("--val") { Description = "Number of validation images (val.txt); default a quarter of --images, at least 1." };
        var size = new Option<int>("--size") { Description = "Longest image edge in pixels (the other edge is 75-100% of it); parts only.", DefaultValueFactory = _ => defaults.Size };
        var minSide = new Option<int>("--min-side") { Description = "Smallest image side in pixels; marks only (each side is drawn from [min, max], never square).", DefaultValueFactory = _ => defaults.MinSide };
        var maxSide = new Option<int>("--max-side") { Description = "Largest image side in pixels; marks only.", DefaultValueFactory = _ => defaults.MaxSide };
        var seed = new Option<int>("--seed") { Description = "Random seed; the same seed gives the same set.", DefaultValueFactory = _ => defaults.Seed };
        var minObjects = new Option<int>("--min-objects") { Description = "Fewest objects per image.", DefaultValueFactory = _ => defaults.MinObjects };
        var maxObjects = new Option<int>("--max-objects") { Description = "Most objects per image.", DefaultValueFactory = _ => defaults.MaxObjects };
        var classes = new Option<string>("--classes")
        {
            Description = "Comma-separated VOC class names to use.",
            DefaultValueFactory = _ => string.Join(',', defaults.Classes.Select(c => VocClasses.Names[c])),
        };
        var minBody = new Option<double>("--min-body") { Description = "Smallest body semi-major axis, as a fraction of the shorter edge.", DefaultValueFactory = _ => defaults.MinBody };
        var maxBody = new Option<double>("--max-body") { Description = "Largest body semi-major axis, as a fraction of the shorter edge.", DefaultValueFactory = _ => defaults.MaxBody };
        var partRadius = new Option<double>("--part-radius") { Description = "Discriminative part radius, as a fraction of the body's semi-minor axis.", DefaultValueFactory = _ => defaults.PartRadius };
        var bodyTint = new Option<double>("--body-tint") { Description = "Strength of the class tint on bodies (0: bodies carry no class cue).", DefaultValueFactory = _ => defaults.BodyTint };
        var quality = new Option<int>("--jpeg-quality") { Description = "JPEG quality 1-100.", DefaultValueFactory = _ => defaults.JpegQuality };

        var cmd = new Command("synth", "Write a synthetic data set in exact VOC 2012 layout: objects whose class shows in a small part, on textured backgrounds.")
        {
            family, outDir, images, val, size, minSide, maxSide, seed, minObjects, maxObjects, classes, minBody, maxBody, partRadius, bodyTint, quality,
        };
        cmd.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            int n = parse.GetValue(images);
            var options = new SynthOptions
            {
                Family = parse.GetValue(family),
                TrainImages = n,
                ValImages = parse.GetValue(val) ?? Math.Max(1, (n + 3) / 4),
                Size = parse.GetValue(size),
                MinSide = parse.GetValue(minSide),
                MaxSide = parse.GetValue(maxSide),
                Seed = parse.GetValue(seed),
                MinObjects = parse.GetValue(minObjects),
                MaxObjects = parse.GetValue(maxObjects),
                Classes = ParseClasses(parse.GetValue(classes)!),
                MinBody = parse.GetValue(minBody),
                MaxBody = parse.GetValue(maxBody),
                PartRadius = parse.GetValue(partRadius),
                BodyTint = parse.GetValue(bodyTint),
                JpegQuality = parse.GetValue(quality),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentException e)
            {
                throw new BadInputException("data synth", e.Message);
            }
            var result = SyntheticVoc.Generate(parse.GetValue(outDir)!, options);

            var table = new Table().AddColumn("class").AddColumn(new TableColumn("images").RightAligned());
            foreach (int c in options.Classes.Order())
                table.AddRow(VocClasses.Names[c], result.ImagesPerClass[c].ToString(CultureInfo.InvariantCulture));
            io.Console.Write(table);
            var sizes = options.Family == SynthFamily.Marks ? $"{options.MinSide}-{options.MaxSide} px sides" : $"{options.Size} px";
            io.Out.WriteLine($"wrote {result.TrainIds.Count} train + {result.ValIds.Count} val {options.Family.ToString().ToLowerInvariant()} images ({sizes}, seed {options.Seed}) to {result.Root}");
            return Task.FromResult(EcsNetCli.ExitOk);
        }));
        return cmd;
    }

    private static IReadOnlyList<int> ParseClasses(string text)
    {
        var list = new List<int>();
        foreach (var name in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int c = VocClasses.IndexOf(name);
            if (c < 1)
                throw new BadInputException("--classes", $"'{name}' is not a VOC foreground class");
            list.Add(c);
        }
        return list;
    }

    private static Command Check(CliIo io)
    {
        var voc = new Option<string>("--voc") { Description = "VOC root: VOC2012, a VOCdevkit, or a folder holding VOCdevkit.", Required = true };
        var split = new Option<string?>("--split") { Description = "Split name (train, val, train_aug, ...) or id-list file; default every list in ImageSets/Segmentation." };
        var maskFolder = new Option<string>("--mask-folder") { Description = "Folder of ground-truth masks under the root.", DefaultValueFactory = _ => VocLayout.SegmentationMasks };

        var cmd = new Command("check", "Validate a VOC tree: every listed image decodes, every annotation parses, masks match their images. Exit 2 if any problem.")
        {
            voc, split, maskFolder,
        };
        cmd.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            var root = parse.GetValue(voc)!;
            var splits = parse.GetValue(split) is { } one ? new[] { one } : VocLayout.Resolve(root).SegmentationSplits().ToArray();
            if (splits.Length == 0)
                throw new BadInputException(Path.Combine(VocLayout.Resolve(root).Root, VocLayout.SegmentationLists), "no split lists (*.txt) found");
            int problems = 0;
            foreach (var s in splits)
            {
                ct.ThrowIfCancellationRequested();
                var report = VocValidator.Check(root, s, parse.GetValue(maskFolder)!);
                Print(io, report);
                problems += report.Problems.Count;
            }
            if (problems > 0)
            {
                io.Err.WriteLine($"error: {problems} problem(s) found");
                return Task.FromResult(EcsNetCli.ExitBadInput);
            }
            return Task.FromResult(EcsNetCli.ExitOk);
        }));
        return cmd;
    }

    private static void Print(CliIo io, VocCheckReport r)
    {
        // Plain lines go to io.Out (not through Spectre, which wraps long paths at the console width).
        io.Out.WriteLine($"split {r.Split} ({r.SplitFile})");
        io.Out.WriteLine($"  listed {r.Listed}, valid {r.Valid}, with masks {r.ImagesWithMasks}, problems {r.Problems.Count}");
        var table = new Table()
            .AddColumn("class")
            .AddColumn(new TableColumn("images (labels)").RightAligned())
            .AddColumn(new TableColumn("images (masks)").RightAligned())
            .AddColumn(new TableColumn("mask pixels").RightAligned());
        for (int c = 0; c < VocClasses.Count; c++)
        {
            if (r.ImagesPerClass[c] == 0 && r.MaskImagesPerClass[c] == 0)
                continue;
            table.AddRow(VocClasses.Names[c],
                c == 0 ? "-" : r.ImagesPerClass[c].ToString(CultureInfo.InvariantCulture),
                r.MaskImagesPerClass[c].ToString(CultureInfo.InvariantCulture),
                r.MaskPixelsPerClass[c].ToString(CultureInfo.InvariantCulture));
        }
        table.AddRow("(ignore 255)", "-", "-", r.IgnorePixels.ToString(CultureInfo.InvariantCulture));
        io.Console.Write(table);
        foreach (var p in r.Problems)
            io.Out.WriteLine($"  problem: {p}");
        foreach (var w in r.Warnings)
            io.Out.WriteLine($"  warning: {w}");
    }
}
