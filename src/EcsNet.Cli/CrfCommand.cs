using System.CommandLine;
using System.Diagnostics;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Crf;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet crf`: dense CRF over saved CAMs (docs/METHOD.md §3), one label PNG per image.
/// CAMs as <c>infer-cam</c> writes them (<see cref="CamStore"/>: float16 [K, H, W] + class list), or from other
/// tools <c>&lt;cams&gt;/&lt;id&gt;.npy</c> float16/32/64 of shape (20, H, W), channel c−1 = VOC class c normalised to
/// [0, 1] (only the image's classes are read). H×W is the JPEG's size.
/// </summary>
public static class CrfCommand
{
    /// <summary>PSA's constant background score (infer_cls.py, 0.2).</summary>
    private const float DefaultThreshold = 0.2f;

    public static Command Build(CliIo io)
    {
        var voc = new Option<string>("--voc") { Description = "VOC2012 root (holds JPEGImages, Annotations, ImageSets/Segmentation).", Required = true };
        var split = new Option<string>("--split") { Description = "Split name (ImageSets/Segmentation/<split>.txt) or the path of an id list.", Required = true };
        var cams = new Option<string>("--cams") { Description = "Folder of CAMs: infer-cam's <id>.npy + <id>.json, or <id>.npy float arrays (20, H, W), channel c-1 = class c.", Required = true };
        var output = new Option<string>("--out") { Description = "Folder for the <id>.png label maps (0 background, 1..20 classes).", Required = true };
        var threshold = new Option<float?>("--bg-threshold") { Description = $"Constant background score for 20-channel CAMs (docs/METHOD.md §2; default: {DefaultThreshold} as PSA, when --bg-alpha is absent)." };
        var alpha = new Option<float?>("--bg-alpha") { Description = "Use PSA's background (1 − max_c cam_c)^α instead of a constant (affinity labels: 4 'la', 32 'ha'); default: not used, the constant --bg-threshold." };
        var threads = new Option<int>("--threads") { Description = "Images processed at once.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var defaults = new DenseCrfOptions();
        var iterations = new Option<int>("--iterations") { Description = "Mean-field iterations (PSA: 10).", DefaultValueFactory = _ => defaults.Iterations };
        var gaussianSxy = new Option<float>("--gaussian-sxy") { Description = "Smoothness kernel σ in pixels (PSA: 3).", DefaultValueFactory = _ => defaults.GaussianSxy };
        var gaussianCompat = new Option<float>("--gaussian-compat") { Description = "Smoothness kernel Potts weight (PSA: 3).", DefaultValueFactory = _ => defaults.GaussianCompat };
        var bilateralSxy = new Option<float>("--bilateral-sxy") { Description = "Appearance kernel spatial σ in pixels (PSA: 80).", DefaultValueFactory = _ => defaults.BilateralSxy };
        var bilateralSrgb = new Option<float>("--bilateral-srgb") { Description = "Appearance kernel colour σ (PSA: 13).", DefaultValueFactory = _ => defaults.BilateralSrgb };
        var bilateralCompat = new Option<float>("--bilateral-compat") { Description = "Appearance kernel Potts weight (PSA: 10).", DefaultValueFactory = _ => defaults.BilateralCompat };
        var floor = new Option<float>("--prob-floor") { Description = "Probabilities are clipped to [floor, 1] before −log (pydensecrf: 1e-5).", DefaultValueFactory = _ => defaults.ProbabilityFloor };

        var command = new Command("crf", "Dense CRF on saved CAMs: background + the image's classes, arg-max written as label PNGs (docs/METHOD.md §3).")
        {
            voc, split, cams, output, threshold, alpha, threads,
            iterations, gaussianSxy, gaussianCompat, bilateralSxy, bilateralSrgb, bilateralCompat, floor,
        };
        command.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            float? bgAlpha = parse.GetValue(alpha), bgThreshold = parse.GetValue(threshold);
            if (bgAlpha is not null && bgThreshold is not null)
                throw new BadInputException("crf", "give either --bg-threshold or --bg-alpha, not both");
            var background = bgAlpha is { } a ? CamBackground.Power(a) : CamBackground.Constant(bgThreshold ?? DefaultThreshold);
            int degree = parse.GetValue(threads);
            if (degree < 1) throw new BadInputException("crf", $"--threads must be ≥ 1, got {degree}");
            var options = new DenseCrfOptions
            {
                Iterations = parse.GetValue(iterations),
                GaussianSxy = parse.GetValue(gaussianSxy), GaussianCompat = parse.GetValue(gaussianCompat),
                BilateralSxy = parse.GetValue(bilateralSxy), BilateralSrgb = parse.GetValue(bilateralSrgb),
                BilateralCompat = parse.GetValue(bilateralCompat), ProbabilityFloor = parse.GetValue(floor),
                MaxDegreeOfParallelism = 1, // one thread per image, images in parallel
            };

            string root = parse.GetValue(voc)!, camDir = parse.GetValue(cams)!, outDir = parse.GetValue(output)!;
            var dataset = VocDataset.Open(root, parse.GetValue(split)!, new VocOptions { VerifyImages = false });
            if (!Directory.Exists(camDir)) throw new BadInputException(camDir, "CAM folder does not exist");
            Directory.CreateDirectory(outDir);

            var clock = Stopwatch.StartNew();
            var pixelCounts = new long[VocClasses.Count];
            try
            {
                Parallel.ForEach(dataset.Samples, new ParallelOptions { MaxDegreeOfParallelism = degree, CancellationToken = ct }, sample =>
                {
                    var image = ImageCodec.ReadRgb(sample.ImagePath);
                    var cams = CamStore.Read(camDir, sample.Id, sample.Labels);
                    if (cams.Width != image.Width || cams.Height != image.Height)
                        throw new BadInputException(Path.Combine(camDir, sample.Id + ".npy"),
                            $"CAM is {cams.Width}x{cams.Height} but image {sample.Id} is {image.Width}x{image.Height}");
                    var mask = CamCrf.Refine(image, cams, background, options);
                    ImageCodec.WriteLabelPng(Path.Combine(outDir, sample.Id + ".png"), mask);
                    var counts = new long[VocClasses.Count];
                    foreach (byte l in mask.Labels) counts[l]++;
                    lock (pixelCounts)
                        for (int c = 0; c < counts.Length; c++) pixelCounts[c] += counts[c];
                });
            }
            catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is BadInputException) is { } bad)
            {
                throw bad;
            }
            double seconds = clock.Elapsed.TotalSeconds;
            long total = pixelCounts.Sum();
            io.Console.MarkupLine($"wrote {dataset.Count} label maps to {Markup.Escape(outDir)} in {seconds:F1} s ({1000 * seconds / Math.Max(1, dataset.Count):F0} ms/image wall, {degree} at once); background {(total == 0 ? 0 : 100.0 * pixelCounts[0] / total):F1} % of pixels");
            return Task.FromResult(EcsNetCli.ExitOk);
        }));
        return command;
    }
}
