using System.CommandLine;
using System.Diagnostics;
using System.Xml;
using EcsNet.Core;
using EcsNet.Data;
using SkiaSharp;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet crf`: dense CRF over saved CAMs (SPEC §3), one label PNG per image.
/// CAM file per image id: <c>&lt;cams&gt;/&lt;id&gt;.npy</c>, float32 (float64 accepted), C order, shape (20, H, W)
/// with channel c−1 holding VOC class c's CAM normalised to [0, 1] (only the image's classes are read), or
/// (21, H, W) whose channel 0 already is a background score. H×W is the JPEG's size.
/// </summary>
public static class CrfCommand
{
    public static Command Build(CliIo io)
    {
        var voc = new Option<string>("--voc") { Description = "VOC2012 root (holds JPEGImages, Annotations, ImageSets/Segmentation).", Required = true };
        var split = new Option<string>("--split") { Description = "Split name (ImageSets/Segmentation/<split>.txt) or the path of an id list.", Required = true };
        var cams = new Option<string>("--cams") { Description = "Folder of <id>.npy CAMs: float32 (20, H, W) per VOC class, or (21, H, W) with a background channel first.", Required = true };
        var output = new Option<string>("--out") { Description = "Folder for the <id>.png label maps (0 background, 1..20 classes).", Required = true };
        var threshold = new Option<float?>("--bg-threshold") { Description = "Constant background score for 20-channel CAMs (SPEC §2; PSA 0.2). Default when --bg-alpha is absent." };
        var alpha = new Option<float?>("--bg-alpha") { Description = "Use PSA's background (1 − max_c cam_c)^α instead of a constant (affinity labels: 4 'la', 32 'ha')." };
        var threads = new Option<int>("--threads") { Description = "Images processed at once.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var defaults = new DenseCrfOptions();
        var iterations = new Option<int>("--iterations") { Description = "Mean-field iterations (PSA: 10).", DefaultValueFactory = _ => defaults.Iterations };
        var gaussianSxy = new Option<float>("--gaussian-sxy") { Description = "Smoothness kernel σ in pixels (PSA: 3).", DefaultValueFactory = _ => defaults.GaussianSxy };
        var gaussianCompat = new Option<float>("--gaussian-compat") { Description = "Smoothness kernel Potts weight (PSA: 3).", DefaultValueFactory = _ => defaults.GaussianCompat };
        var bilateralSxy = new Option<float>("--bilateral-sxy") { Description = "Appearance kernel spatial σ in pixels (PSA: 80).", DefaultValueFactory = _ => defaults.BilateralSxy };
        var bilateralSrgb = new Option<float>("--bilateral-srgb") { Description = "Appearance kernel colour σ (PSA: 13).", DefaultValueFactory = _ => defaults.BilateralSrgb };
        var bilateralCompat = new Option<float>("--bilateral-compat") { Description = "Appearance kernel Potts weight (PSA: 10).", DefaultValueFactory = _ => defaults.BilateralCompat };
        var floor = new Option<float>("--prob-floor") { Description = "Probabilities are clipped to [floor, 1] before −log (pydensecrf: 1e-5).", DefaultValueFactory = _ => defaults.ProbabilityFloor };

        var command = new Command("crf", "Dense CRF on saved CAMs: background + the image's classes, arg-max written as label PNGs (SPEC §3).")
        {
            voc, split, cams, output, threshold, alpha, threads,
            iterations, gaussianSxy, gaussianCompat, bilateralSxy, bilateralSrgb, bilateralCompat, floor,
        };
        command.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            float? bgAlpha = parse.GetValue(alpha), bgThreshold = parse.GetValue(threshold);
            if (bgAlpha is not null && bgThreshold is not null)
                throw new BadInputException("crf", "give either --bg-threshold or --bg-alpha, not both");
            var background = bgAlpha is { } a ? Background.Power(a) : Background.Constant(bgThreshold ?? 0.2f);
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
            var ids = VocStopgap.ReadSplit(root, parse.GetValue(split)!);
            if (!Directory.Exists(camDir)) throw new BadInputException(camDir, "CAM folder does not exist");
            Directory.CreateDirectory(outDir);

            var clock = Stopwatch.StartNew();
            var pixelCounts = new long[VocClasses.Count];
            try
            {
                Parallel.ForEach(ids, new ParallelOptions { MaxDegreeOfParallelism = degree, CancellationToken = ct }, id =>
                {
                    var mask = RunOne(root, camDir, id, background, options);
                    VocStopgap.WriteLabelPng(Path.Combine(outDir, id + ".png"), mask);
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
            io.Console.MarkupLine($"wrote {ids.Count} label maps to {Markup.Escape(outDir)} in {seconds:F1} s ({1000 * seconds / Math.Max(1, ids.Count):F0} ms/image wall, {degree} at once); background {(total == 0 ? 0 : 100.0 * pixelCounts[0] / total):F1} % of pixels");
            return Task.FromResult(EcsNetCli.ExitOk);
        }));
        return command;
    }

    /// <summary>CRF for one image: scores of background + present classes, PSA's crf_inference, arg-max as VOC labels.</summary>
    internal static LabelMask RunOne(string root, string camDir, string id, Background background, DenseCrfOptions options)
    {
        var image = VocStopgap.ReadRgb(VocStopgap.ImagePath(root, id));
        var classes = VocStopgap.ReadImageLabels(VocStopgap.AnnotationPath(root, id));
        string camPath = Path.Combine(camDir, id + ".npy");
        if (!File.Exists(camPath)) throw new BadInputException(camPath, "CAM file is missing");
        var cam = NpyFile.Read(camPath);
        int n = image.Width * image.Height;
        if (cam.Shape.Length != 3 || cam.Shape[0] is not (VocClasses.Foreground or VocClasses.Count) || cam.Shape[1] != image.Height || cam.Shape[2] != image.Width)
            throw new BadInputException(camPath, $"CAM shape ({string.Join(", ", cam.Shape)}) does not match (20 or 21, {image.Height}, {image.Width}) for image {id}");
        bool hasBackground = cam.Shape[0] == VocClasses.Count;
        if (hasBackground && background.IsPower)
            throw new BadInputException(camPath, "has its own background channel (21 channels); --bg-alpha applies to 20-channel CAMs only");

        var present = classes.Order().ToArray();
        var scores = new float[(present.Length + 1) * n];
        for (int i = 0; i < present.Length; i++)
        {
            int channel = hasBackground ? present[i] : present[i] - 1;
            cam.Data.AsSpan(channel * n, n).CopyTo(scores.AsSpan((i + 1) * n, n));
        }
        if (hasBackground)
            cam.Data.AsSpan(0, n).CopyTo(scores);
        else
            background.Fill(scores, present.Length, n);

        var classOf = new int[present.Length + 1];
        present.CopyTo(classOf, 1);
        var q = DenseCrf.Infer(image, scores, classOf.Length, options);
        return DenseCrf.ArgMax(q, classOf, image.Width, image.Height);
    }

    /// <summary>Background score for 20-channel CAMs (SPEC §2): a constant, or PSA's (1 − max over present classes)^α.</summary>
    internal sealed record Background(bool IsPower, float Value)
    {
        public static Background Constant(float threshold) =>
            threshold is > 0 and <= 1 ? new(false, threshold) : throw new BadInputException("crf", $"--bg-threshold must lie in (0, 1], got {threshold}");

        public static Background Power(float alpha) =>
            alpha > 0 && float.IsFinite(alpha) ? new(true, alpha) : throw new BadInputException("crf", $"--bg-alpha must be positive, got {alpha}");

        /// <summary>Writes channel 0 of scores [1 + classes][n] from the class channels after it.</summary>
        public void Fill(float[] scores, int classes, int n)
        {
            var bg = scores.AsSpan(0, n);
            if (!IsPower)
            {
                bg.Fill(Value);
                return;
            }
            for (int p = 0; p < n; p++)
            {
                float max = 0;
                for (int c = 1; c <= classes; c++) max = Math.Max(max, scores[c * n + p]);
                bg[p] = MathF.Pow(Math.Max(0f, 1f - max), Value);
            }
        }
    }

    /// <summary>
    /// Minimal VOC reading and label-PNG writing for this verb until the data layer's VocLayout / VocAnnotation /
    /// ImageCodec land; each member maps one to one onto those.
    /// </summary>
    internal static class VocStopgap
    {
        public static string ImagePath(string root, string id) => Path.Combine(root, "JPEGImages", id + ".jpg");

        public static string AnnotationPath(string root, string id) => Path.Combine(root, "Annotations", id + ".xml");

        public static IReadOnlyList<string> ReadSplit(string root, string split)
        {
            if (!Directory.Exists(root)) throw new BadInputException(root, "VOC root does not exist");
            string path = File.Exists(split) ? split : Path.Combine(root, "ImageSets", "Segmentation", split + ".txt");
            if (!File.Exists(path)) throw new BadInputException(path, $"split '{split}' not found");
            var ids = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).Select(l => l.Split(' ')[0]).ToList();
            if (ids.Count == 0) throw new BadInputException(path, "split lists no image ids");
            return ids;
        }

        public static IReadOnlySet<int> ReadImageLabels(string xmlPath)
        {
            if (!File.Exists(xmlPath)) throw new BadInputException(xmlPath, "annotation file is missing");
            var doc = new XmlDocument();
            try
            {
                doc.Load(xmlPath);
            }
            catch (XmlException e)
            {
                throw new BadInputException(xmlPath, $"not valid XML ({e.Message})", e);
            }
            var labels = new HashSet<int>();
            foreach (XmlNode name in doc.SelectNodes("/annotation/object/name")!)
            {
                int c = VocClasses.IndexOf(name.InnerText);
                if (c < 1) throw new BadInputException(xmlPath, $"unknown class '{name.InnerText.Trim()}'");
                labels.Add(c);
            }
            return labels;
        }

        public static RgbImage ReadRgb(string path)
        {
            if (!File.Exists(path)) throw new BadInputException(path, "image file is missing");
            using var codec = SKCodec.Create(path) ?? throw new BadInputException(path, "not a decodable image");
            var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            using var bitmap = new SKBitmap(info);
            var result = codec.GetPixels(info, bitmap.GetPixels());
            if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
                throw new BadInputException(path, $"cannot decode image ({result})");
            var rgba = bitmap.GetPixelSpan();
            var rgb = new byte[info.Width * info.Height * 3];
            for (int p = 0, q = 0; q < rgb.Length; p += 4, q += 3)
            {
                rgb[q] = rgba[p];
                rgb[q + 1] = rgba[p + 1];
                rgb[q + 2] = rgba[p + 2];
            }
            return new RgbImage(info.Width, info.Height, rgb);
        }

        /// <summary>8-bit greyscale PNG whose pixel values are the label indices (read back unchanged by PIL and numpy).</summary>
        public static void WriteLabelPng(string path, LabelMask mask)
        {
            var info = new SKImageInfo(mask.Width, mask.Height, SKColorType.Gray8, SKAlphaType.Opaque);
            using var bitmap = new SKBitmap(info);
            mask.Labels.CopyTo(bitmap.GetPixelSpan());
            using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            using var file = File.Create(path);
            data.SaveTo(file);
        }
    }
}
