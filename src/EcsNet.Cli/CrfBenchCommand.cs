using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using EcsNet.Bench;
using EcsNet.Data;
using EcsNet.Labels.Crf;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet bench crf`: median time of the dense CRF on a synthetic image (the workload of the densecrf peer,
/// docs/BENCHMARKS.md "Peers", baseline rows c1–c13: 500×375, 21 labels, 10 iterations, PSA parameters).
/// "setup" is the per-image construction of both lattices, "inference" the unary, mean field and output for one probability map;
/// "setup, smoothness kernel reused" is the setup of a later image of the same size (the pipeline's case).
/// The *_cpu_ms figures are the process's CPU time per phase (all threads), less sensitive to a busy machine.
/// </summary>
public static class CrfBenchCommand
{
    public static Command Build(CliIo io)
    {
        var width = new Option<int>("--width") { Description = "Image width in pixels.", DefaultValueFactory = _ => 500 };
        var height = new Option<int>("--height") { Description = "Image height in pixels.", DefaultValueFactory = _ => 375 };
        var labels = new Option<int>("--labels") { Description = "Label count: the first N channels of a softmax over max(N, 21) smooth random logits (the peer's protocol).", DefaultValueFactory = _ => 21 };
        var iterations = new Option<int>("--iterations") { Description = "Mean-field iterations.", DefaultValueFactory = _ => 10 };
        var runs = new Option<int>("--runs") { Description = "Timed runs; the median is reported.", DefaultValueFactory = _ => 7 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed runs first, so that the JIT has optimised the hot loops (steady state, as in a pipeline over many images).", DefaultValueFactory = _ => 3 };
        var threads = new Option<int>("--threads") { Description = "Threads for the image (default: all cores).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var seed = new Option<int>("--seed") { Description = "Seed of the synthetic image and probabilities.", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var saveInput = new Option<string?>("--save-input") { Description = "Also write the workload as image.npy (uint8 H×W×3) and probs.npy (float32 L×H×W) into this folder, to time another implementation on the same input." };

        var command = new Command("crf", "Dense CRF: median setup and inference time on a synthetic image (default: the peer's 500×375, 21 labels, 10 iterations).")
        {
            width, height, labels, iterations, runs, warmup, threads, seed, json, saveInput,
        };
        command.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            int w = parse.GetValue(width), h = parse.GetValue(height), l = parse.GetValue(labels), r = parse.GetValue(runs), warm0 = parse.GetValue(warmup);
            if (warm0 < 0) throw new BadInputException("bench crf", $"--warmup must be ≥ 0, got {warm0}");
            if (w < 1 || h < 1) throw new BadInputException("bench crf", $"image size must be positive, got {w}×{h}");
            if (l < 1) throw new BadInputException("bench crf", $"--labels must be ≥ 1, got {l}");
            if (r < 1) throw new BadInputException("bench crf", $"--runs must be ≥ 1, got {r}");
            // Cold setup (both lattices built, as the peer does); the reuse of the smoothness kernel across images
            // of one size is timed separately below.
            var options = new DenseCrfOptions { Iterations = parse.GetValue(iterations), MaxDegreeOfParallelism = parse.GetValue(threads), ReuseSmoothnessKernel = false };
            var (image, probs) = SyntheticCrfWorkload.Create(w, h, l, parse.GetValue(seed));
            if (parse.GetValue(saveInput) is { } dir)
            {
                Directory.CreateDirectory(dir);
                NpyFile.Write(Path.Combine(dir, "image.npy"), image.Pixels, h, w, 3);
                NpyFile.Write(Path.Combine(dir, "probs.npy"), probs, l, h, w);
            }

            var setup = new List<double>();
            var infer = new List<double>();
            var total = new List<double>();
            var setupCpu = new List<double>();
            var inferCpu = new List<double>();
            var process = Process.GetCurrentProcess();
            float[] q = Array.Empty<float>();
            IReadOnlyList<int> lattice = Array.Empty<int>();
            for (int run = -warm0; run < r; run++)
            {
                ct.ThrowIfCancellationRequested();
                process.Refresh();
                var cpu0 = process.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                var crf = new DenseCrf(image, options);
                double s = sw.Elapsed.TotalMilliseconds;
                process.Refresh();
                var cpu1 = process.TotalProcessorTime;
                q = crf.Infer(probs, l);
                double all = sw.Elapsed.TotalMilliseconds;
                process.Refresh();
                var cpu2 = process.TotalProcessorTime;
                lattice = crf.LatticeSizes;
                if (run < 0) continue; // warm-up: JIT tiers and first-touch page faults
                setup.Add(s);
                infer.Add(all - s);
                total.Add(all);
                setupCpu.Add((cpu1 - cpu0).TotalMilliseconds);
                inferCpu.Add((cpu2 - cpu1).TotalMilliseconds);
            }
            var reused = new List<double>();
            var warm = options with { ReuseSmoothnessKernel = true };
            for (int run = -warm0 - 1; run < r; run++)
            {
                var sw = Stopwatch.StartNew();
                _ = new DenseCrf(image, warm);
                if (run >= 0) reused.Add(sw.Elapsed.TotalMilliseconds);
            }
            double sumQ = q.Sum(v => (double)v);
            var result = new
            {
                width = w, height = h, labels = l, iterations = options.Iterations, runs = r, warmup = warm0, threads = options.MaxDegreeOfParallelism,
                setup_ms = Median(setup), inference_ms = Median(infer), total_ms = Median(total), setup_reused_ms = Median(reused),
                total_min_ms = total.Min(), total_max_ms = total.Max(),
                setup_cpu_ms = Median(setupCpu), inference_cpu_ms = Median(inferCpu),
                lattice_vertices = lattice, sum_q = Math.Round(sumQ, 3),
            };
            if (parse.GetValue(json))
                io.Out.WriteLine(JsonSerializer.Serialize(result));
            else
            {
                var table = new Table().AddColumn("phase").AddColumn(new TableColumn("median ms").RightAligned());
                table.AddRow("setup (both lattices built)", $"{result.setup_ms:F1}");
                table.AddRow("setup, smoothness kernel reused", $"{result.setup_reused_ms:F1}");
                table.AddRow($"inference ({options.Iterations} iterations)", $"{result.inference_ms:F1}");
                table.AddRow("total", $"{result.total_ms:F1}");
                io.Console.Write(table);
                io.Console.MarkupLine($"{w}×{h}, {l} labels, {r} runs, {options.MaxDegreeOfParallelism} threads; lattice vertices {string.Join(" / ", lattice)}; ΣQ = {sumQ:F1} (expect {w * h})");
            }
            return Task.FromResult(EcsNetCli.ExitOk);
        }));
        return command;
    }

    private static double Median(List<double> v)
    {
        var s = v.Order().ToArray();
        return Math.Round(s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2, 2);
    }
}
