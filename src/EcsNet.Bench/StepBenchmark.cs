using System.Diagnostics;
using EcsNet.Core.Nets;
using EcsNet.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.Bench;

/// <summary>Median, min and max of a set of timings, in milliseconds.</summary>
public sealed record TimingSummary(double MedianMs, double MinMs, double MaxMs)
{
    public static TimingSummary Of(IReadOnlyList<double> ms)
    {
        if (ms.Count == 0) throw new ArgumentException("no timings", nameof(ms));
        var sorted = ms.Order().ToArray();
        var mid = sorted.Length / 2;
        // Python's statistics.median: the mean of the two middle values for an even count.
        var median = sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        return new TimingSummary(median, sorted[0], sorted[^1]);
    }
}

/// <summary>Wall times of one training step, split as the peer splits them.</summary>
/// <param name="TotalMs">zero_grad + forward + loss + backward + optimizer step.</param>
/// <param name="ForwardLossMs">zero_grad(set_to_none) + forward + loss.</param>
/// <param name="BackwardMs">loss.backward().</param>
/// <param name="OptimizerMs">optimizer.step().</param>
/// <param name="Loss">The step's loss (read after the timing).</param>
public sealed record StepTiming(double TotalMs, double ForwardLossMs, double BackwardMs, double OptimizerMs, double Loss);

/// <summary>What <see cref="StepBenchmark.Run"/> measured, with the workload it ran.</summary>
public sealed record StepBenchmarkResult(
    string LibTorchVersion,
    string TorchSharpVersion,
    int Threads,
    int Batch,
    int Size,
    int Steps,
    int Warmup,
    long Parameters,
    long BackboneParameters,
    IReadOnlyList<long> FeatureShape,
    TimingSummary Step,
    double ForwardLossMs,
    double BackwardMs,
    double OptimizerMs,
    TimingSummary EvalForward,
    double LastLoss)
{
    /// <summary>Images per second at the median step time.</summary>
    public double ImagesPerSecond => Batch / (Step.MedianMs / 1000.0);
}

/// <summary>
/// One eager CPU training step of a small CAM network, timed the way the PyTorch peer
/// (torch_cpu_step.py, described in docs/BENCHMARKS.md, "Peers") times it, so the two can be compared side by side:
/// <see cref="CamNet"/> (ResNet-18 trunk + 3×3 conv 512→20 + GAP), MultiLabelSoftMarginLoss, SGD with momentum,
/// train mode, a fixed random batch; warm-up steps, then the median of the timed steps, split into
/// forward+loss / backward / optimizer step, and the median eval-mode forward under no_grad.
/// </summary>
public static class StepBenchmark
{
    /// <summary>Parameters of the peer's CamNet (printed by torch_cpu_step.py); ours must match.</summary>
    public const long PeerParameterCount = 11_268_672;

    /// <summary>The peer's CamNet: a ResNet-18 trunk, a bias-free 3×3 conv to class maps, global average pooling.</summary>
    public sealed class CamNet : Module<Tensor, Tensor>
    {
        private readonly ResNet18 backbone;
        private readonly Conv2d classifier;

        /// <summary>Trunk initialised like torchvision; the classifier keeps the Conv2d default (kaiming_uniform_, a = √5).</summary>
        public CamNet(int classes = 20) : base(nameof(CamNet))
        {
            backbone = new ResNet18();
            classifier = Conv2d(ResNet18.OutChannels, classes, kernel_size: 3, padding: 1, bias: false);
            RegisterComponents();
        }

        public ResNet18 Backbone => backbone;

        /// <summary>The trunk's 512-channel map at stride 32.</summary>
        public Tensor Features(Tensor input) => backbone.forward(input);

        /// <summary>Class maps (CAMs), [B, classes, h, w].</summary>
        public Tensor Cams(Tensor input) => classifier.forward(backbone.forward(input));

        /// <summary>Class logits [B, classes]: the CAMs averaged over space.</summary>
        public override Tensor forward(Tensor input) =>
            functional.adaptive_avg_pool2d(Cams(input), 1).flatten(1);
    }

    /// <summary>Seeds the generator and builds the net in train mode (the peer's order: seed, net, then batch).</summary>
    public static CamNet CreateNet(StepBenchmarkOptions options)
    {
        manual_seed(options.Seed);
        var net = new CamNet(options.Classes);
        net.train();
        return net;
    }

    /// <summary>The fixed batch: images randn [B, 3, size, size], multi-hot labels rand &lt; density as float.</summary>
    public static (Tensor Images, Tensor Labels) CreateBatch(StepBenchmarkOptions options)
    {
        var images = randn(options.Batch, 3, options.Size, options.Size);
        var labels = rand(options.Batch, options.Classes).lt(options.LabelDensity).to_type(ScalarType.Float32);
        return (images, labels);
    }

    /// <summary>SGD over every parameter, with the options' lr, momentum and weight decay.</summary>
    public static SGD CreateOptimizer(CamNet net, StepBenchmarkOptions options) =>
        optim.SGD(net.parameters(), options.LearningRate, momentum: options.Momentum, weight_decay: options.WeightDecay);

    /// <summary>Number of scalars in the module's parameters.</summary>
    public static long CountParameters(Module module)
    {
        long total = 0;
        // parameters() hands out the module's own Parameter objects: counting must not dispose them.
        foreach (var p in module.parameters())
            total += p.numel();
        return total;
    }

    /// <summary>
    /// One step: zero_grad(set_to_none) + forward + loss, backward, optimizer step, timed in three parts.
    /// Every tensor the step makes is released when it ends.
    /// </summary>
    public static StepTiming TrainStep(CamNet net, SGD optimizer, Tensor images, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var t0 = Stopwatch.GetTimestamp();
        net.zero_grad(set_to_none: true);
        var loss = functional.multilabel_soft_margin_loss(net.forward(images), labels);
        var t1 = Stopwatch.GetTimestamp();
        loss.backward();
        var t2 = Stopwatch.GetTimestamp();
        optimizer.step();
        var t3 = Stopwatch.GetTimestamp();
        return new StepTiming(Ms(t0, t3), Ms(t0, t1), Ms(t1, t2), Ms(t2, t3), loss.item<float>());
    }

    /// <summary>One eval-mode forward under no_grad, in milliseconds.</summary>
    public static double EvalForward(CamNet net, Tensor images)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var t0 = Stopwatch.GetTimestamp();
        net.forward(images);
        return Ms(t0, Stopwatch.GetTimestamp());
    }

    /// <summary>
    /// Runs the benchmark: sets the thread count (restored afterwards), builds net, batch and optimizer,
    /// runs the warm-up and timed steps, then the eval forwards.
    /// </summary>
    /// <param name="progress">Called with a short line before each phase (for a CLI status line).</param>
    public static StepBenchmarkResult Run(StepBenchmarkOptions options, Action<string>? progress = null, CancellationToken cancellationToken = default)
    {
        Validate(options);
        var previousThreads = get_num_threads();
        if (options.Threads > 0)
            set_num_threads(options.Threads);
        try
        {
            using var net = CreateNet(options);
            var (images, labels) = CreateBatch(options);
            using var _images = images;
            using var _labels = labels;
            using var optimizer = CreateOptimizer(net, options);

            long[] featureShape;
            using (no_grad())
            using (var one = images.narrow(0, 0, 1))
            using (var features = net.Features(one))
                featureShape = features.shape[1..];

            progress?.Invoke($"warm-up ({options.Warmup} steps)");
            for (var i = 0; i < options.Warmup; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                TrainStep(net, optimizer, images, labels);
            }

            var rows = new List<StepTiming>(options.Steps);
            for (var i = 0; i < options.Steps; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                progress?.Invoke($"step {i + 1}/{options.Steps}");
                rows.Add(TrainStep(net, optimizer, images, labels));
            }

            progress?.Invoke("eval forward");
            net.eval();
            for (var i = 0; i < options.EvalWarmup; i++)
                EvalForward(net, images);
            var eval = new List<double>(options.Steps);
            for (var i = 0; i < options.Steps; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                eval.Add(EvalForward(net, images));
            }

            return new StepBenchmarkResult(
                LibTorchVersion: __version__,
                TorchSharpVersion: typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown",
                Threads: get_num_threads(),
                Batch: options.Batch,
                Size: options.Size,
                Steps: options.Steps,
                Warmup: options.Warmup,
                Parameters: CountParameters(net),
                BackboneParameters: CountParameters(net.Backbone),
                FeatureShape: featureShape,
                Step: TimingSummary.Of(rows.Select(r => r.TotalMs).ToArray()),
                ForwardLossMs: TimingSummary.Of(rows.Select(r => r.ForwardLossMs).ToArray()).MedianMs,
                BackwardMs: TimingSummary.Of(rows.Select(r => r.BackwardMs).ToArray()).MedianMs,
                OptimizerMs: TimingSummary.Of(rows.Select(r => r.OptimizerMs).ToArray()).MedianMs,
                EvalForward: TimingSummary.Of(eval),
                LastLoss: rows[^1].Loss);
        }
        finally
        {
            set_num_threads(previousThreads);
        }
    }

    /// <summary>Rejects a workload that cannot run, naming the option.</summary>
    public static void Validate(StepBenchmarkOptions options)
    {
        const string subject = "bench step";
        if (options.Threads < 0) throw new BadInputException(subject, $"--threads must be 0 (LibTorch default) or more, got {options.Threads}");
        if (options.Batch < 1) throw new BadInputException(subject, $"--batch must be at least 1, got {options.Batch}");
        if (options.Size < ResNet18.OutputStride) throw new BadInputException(subject, $"--size must be at least {ResNet18.OutputStride} (the trunk's output stride), got {options.Size}");
        // Train-mode BatchNorm needs more than one value per channel at layer4 (about size/32 squared per image).
        var side = (options.Size + ResNet18.OutputStride - 1) / ResNet18.OutputStride;
        if ((long)options.Batch * side * side < 2) throw new BadInputException(subject, $"--batch {options.Batch} at --size {options.Size} leaves one value per channel at layer4; train-mode BatchNorm needs more (raise --batch or --size)");
        if (options.Steps < 1) throw new BadInputException(subject, $"--steps must be at least 1, got {options.Steps}");
        if (options.Warmup < 0) throw new BadInputException(subject, $"--warmup must be 0 or more, got {options.Warmup}");
        if (options.EvalWarmup < 0) throw new BadInputException(subject, $"eval warm-up must be 0 or more, got {options.EvalWarmup}");
        if (options.Classes < 1) throw new BadInputException(subject, $"classes must be at least 1, got {options.Classes}");
    }

    private static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;
}
