using System.Diagnostics;
using EcsNet.Core.Nets;
using EcsNet.Core.Runtime;
using EcsNet.Core.Training;
using EcsNet.Labels.Samples;
using static TorchSharp.torch;

namespace EcsNet.Bench;

/// <summary>One run of the device check: where it trained, how fast, and the weights it ended with.</summary>
public sealed record DeviceRun(string Device, int Steps, double MedianStepSeconds, float[] Weights);

/// <summary>The device check's verdict: the same training on the CPU and on a device, compared.</summary>
public sealed record DeviceCheckResult(DeviceRun Cpu, DeviceRun Other, double MaxAbsWeightDifference, double MaxAbsWeight);

/// <summary>
/// Trains the small CAM network (ECS-Net objective) for a few steps from the same initial weights on the same
/// deterministic samples, once on the CPU and once on another device (e.g. <c>cuda:0</c> with the CUDA build),
/// and compares the weights: the plumbing check of device placement (model, batches and optimizer state on the
/// device; masks drawn on the CPU generator). GPU kernels round differently, so the difference is reported, not
/// judged here (docs/BUILD.md says what to expect).
/// </summary>
public static class DeviceCheck
{
    public static DeviceCheckResult Run(string device, int steps = 10, int crop = 64, int batch = 4, string? workDir = null)
    {
        var target = Devices.Resolve(device);
        var dir = workDir ?? Path.Combine(Path.GetTempPath(), "ecsnet-device-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            var cpu = Train(CPU, "cpu", steps, crop, batch, Path.Combine(dir, "cpu"));
            var other = Train(target, Devices.Normalize(device), steps, crop, batch, Path.Combine(dir, "device"));
            double diff = 0, max = 0;
            for (int i = 0; i < cpu.Weights.Length; i++)
            {
                diff = Math.Max(diff, Math.Abs((double)cpu.Weights[i] - other.Weights[i]));
                max = Math.Max(max, Math.Abs((double)cpu.Weights[i]));
            }
            return new DeviceCheckResult(cpu, other, diff, max);
        }
        finally
        {
            if (workDir is null && Directory.Exists(dir))
                Directory.Delete(dir, true);
        }
    }

    private static DeviceRun Train(Device device, string name, int steps, int crop, int batch, string runDir)
    {
        using var model = new EcsNetModel(new SmallBackbone(16), new EcsNetOptions { OverlayRates = new[] { 1, 2 }, CeStartStep = 0 });
        using (var g = new Generator(11))
        using (no_grad())
            foreach (var p in model.parameters())
                p.copy_(randn(p.shape, generator: g) * 0.05);
        var options = new CamTrainingOptions
        {
            Epochs = 1, BatchSize = batch, Crop = crop, WarmupSteps = 0, Momentum = 0.9, Seed = 5,
            CheckpointEvery = steps, FreezePretrained = false, BatchNormMode = BatchNormMode.Eval,
        };
        using var task = new CamTrainingTask(model, options, pretrained: false, device);
        using var source = new LocalBatchSource(new NoiseSamples(steps * batch, crop));
        var times = new List<double>();
        var clock = Stopwatch.StartNew();
        TrainingLoop.Run(task, source, runDir, new TrainingCallbacks(OnStep: _ =>
        {
            times.Add(clock.Elapsed.TotalSeconds);
            clock.Restart();
        }));
        times.Sort();
        var weights = model.parameters().SelectMany(p => p.detach().cpu().contiguous().data<float>().ToArray()).ToArray();
        return new DeviceRun(name, times.Count, times.Count == 0 ? double.NaN : times[times.Count / 2], weights);
    }

    /// <summary>Deterministic noise crops with two labels each (content depends only on the index and the seed).</summary>
    private sealed class NoiseSamples(int count, int crop) : ISampleSet
    {
        public int Count => count;

        public string IdAt(int index) => $"noise{index}";

        public TrainingSample Sample(int index, Random rng)
        {
            var image = new float[3 * crop * crop];
            for (int i = 0; i < image.Length; i++)
                image[i] = (float)(rng.NextDouble() - 0.5) + (index % 4) * 0.25f;
            var labels = new byte[20];
            labels[index % 20] = 1;
            labels[(index * 7 + 3) % 20] = 1;
            return new TrainingSample(image, labels);
        }
    }
}
