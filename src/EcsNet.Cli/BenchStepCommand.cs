using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EcsNet.Bench;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet bench step`: median wall time of one eager CPU training step of the peer's small CAM net
/// (ResNet-18 trunk + 3×3 conv + GAP), with the forward+loss / backward / SGD split and the eval forward.
/// Compare with the peer `/usr/bin/python3 "$ECSNET_PEERS/torch_cpu_step.py"` run in the same session
/// (docs/BENCHMARKS.md, "Peers").
/// </summary>
public static class BenchStepCommand
{
    public static Command Build(CliIo io)
    {
        var defaults = new StepBenchmarkOptions();
        var threads = new Option<int>("--threads")
        {
            Description = "Intra-op threads (torch.set_num_threads); 0 leaves LibTorch's default.",
            DefaultValueFactory = _ => defaults.Threads,
        };
        var batch = new Option<int>("--batch")
        {
            Description = "Images per step.",
            DefaultValueFactory = _ => defaults.Batch,
        };
        var size = new Option<int>("--size")
        {
            Description = "Square input side in pixels (224 gives a 512x7x7 feature map).",
            DefaultValueFactory = _ => defaults.Size,
        };
        var steps = new Option<int>("--steps")
        {
            Description = "Timed steps (and timed eval forwards); the median is reported.",
            DefaultValueFactory = _ => defaults.Steps,
        };
        var warmup = new Option<int>("--warmup")
        {
            Description = "Untimed training steps before timing.",
            DefaultValueFactory = _ => defaults.Warmup,
        };
        var json = new Option<bool>("--json")
        {
            Description = "Write the result as one JSON object instead of a table.",
        };

        var step = new Command("step", "Time one CPU training step of the PyTorch peer's CAM net (ResNet-18 trunk + 3x3 conv 512->20 + GAP, multilabel soft margin, SGD); median of timed steps after warm-up.")
        {
            threads, batch, size, steps, warmup, json,
        };
        step.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            var options = defaults with
            {
                Threads = parse.GetValue(threads),
                Batch = parse.GetValue(batch),
                Size = parse.GetValue(size),
                Steps = parse.GetValue(steps),
                Warmup = parse.GetValue(warmup),
            };
            StepBenchmark.Validate(options);
            var result = StepBenchmark.Run(options, cancellationToken: ct);
            if (parse.GetValue(json))
                io.Out.WriteLine(JsonSerializer.Serialize(result, JsonOptions));
            else
                WriteTable(io, result);
            return Task.FromResult(EcsNetCli.ExitOk);
        }));
        return step;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private static void WriteTable(CliIo io, StepBenchmarkResult r)
    {
        string F(double ms) => ms.ToString("F1", CultureInfo.InvariantCulture);
        // Short lines: Spectre wraps at the console width (80 when not a terminal).
        io.Console.WriteLine($"TorchSharp {r.TorchSharpVersion}, libtorch {r.LibTorchVersion}, threads {r.Threads}");
        io.Console.WriteLine($"CamNet params {r.Parameters} (backbone {r.BackboneParameters})");
        io.Console.WriteLine(
            $"batch {r.Batch}x3x{r.Size}x{r.Size}, features {string.Join('x', r.FeatureShape)}, " +
            $"{r.Steps} steps after {r.Warmup} warm-up");
        var table = new Table().AddColumns("phase", "median ms", "min ms", "max ms");
        table.AddRow("train step", F(r.Step.MedianMs), F(r.Step.MinMs), F(r.Step.MaxMs));
        table.AddRow("  forward+loss", F(r.ForwardLossMs), "", "");
        table.AddRow("  backward", F(r.BackwardMs), "", "");
        table.AddRow("  sgd step", F(r.OptimizerMs), "", "");
        table.AddRow("eval forward (no_grad)", F(r.EvalForward.MedianMs), F(r.EvalForward.MinMs), F(r.EvalForward.MaxMs));
        io.Console.Write(table);
        io.Console.WriteLine(
            $"{r.ImagesPerSecond.ToString("F2", CultureInfo.InvariantCulture)} img/s at the median step; last loss " +
            r.LastLoss.ToString("F4", CultureInfo.InvariantCulture));
    }
}
