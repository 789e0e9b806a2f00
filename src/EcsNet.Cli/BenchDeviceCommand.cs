using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EcsNet.Bench;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet bench device --device cuda:0`: the same few training steps on the CPU and on the device, compared
/// (weights and step time). Needs the CUDA build for a GPU (bench/device-check.sh builds it and runs this).
/// </summary>
public static class BenchDeviceCommand
{
    public static Command Build(CliIo io)
    {
        var device = new Option<string>("--device") { Description = "Device to compare with the CPU: cuda, cuda:N (or cpu, a self-check).", DefaultValueFactory = _ => "cuda:0" };
        var steps = new Option<int>("--steps") { Description = "Training steps on each device.", DefaultValueFactory = _ => 10 };
        var crop = new Option<int>("--crop") { Description = "Square crop side of the synthetic samples.", DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--batch") { Description = "Images per step.", DefaultValueFactory = _ => 4 };
        var json = new Option<bool>("--json") { Description = "Write the result as one JSON object instead of a table." };
        var command = new Command("device", "Train the small CAM network a few steps on the CPU and on a device from the same start and compare the weights and step times.")
        {
            device, steps, crop, batch, json,
        };
        command.SetAction(EcsNetCli.Guard(io, (parse, ct) =>
        {
            int n = parse.GetValue(steps), c = parse.GetValue(crop), b = parse.GetValue(batch);
            if (n < 1 || c < 16 || b < 1)
                throw new EcsNet.Data.BadInputException("bench device", $"--steps {n} must be ≥ 1, --crop {c} ≥ 16, --batch {b} ≥ 1");
            var r = DeviceCheck.Run(parse.GetValue(device)!, n, c, b);
            if (parse.GetValue(json))
            {
                io.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    cpu = new { device = r.Cpu.Device, steps = r.Cpu.Steps, median_step_ms = r.Cpu.MedianStepSeconds * 1e3 },
                    other = new { device = r.Other.Device, steps = r.Other.Steps, median_step_ms = r.Other.MedianStepSeconds * 1e3 },
                    max_abs_weight_difference = r.MaxAbsWeightDifference,
                    max_abs_weight = r.MaxAbsWeight,
                }));
                return Task.FromResult(EcsNetCli.ExitOk);
            }
            var table = new Table().AddColumn("device").AddColumn("steps").AddColumn("median step ms");
            foreach (var run in new[] { r.Cpu, r.Other })
                table.AddRow(run.Device, run.Steps.ToString(CultureInfo.InvariantCulture), (run.MedianStepSeconds * 1e3).ToString("F1", CultureInfo.InvariantCulture));
            io.Console.Write(table);
            io.Console.WriteLine(FormattableString.Invariant($"max abs weight difference {r.MaxAbsWeightDifference:E2} (largest weight {r.MaxAbsWeight:F3})"));
            return Task.FromResult(EcsNetCli.ExitOk);
        }));
        return command;
    }
}
