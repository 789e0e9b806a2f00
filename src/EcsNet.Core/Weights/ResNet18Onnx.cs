using System.Reflection;
using System.Security.Cryptography;
using EcsNet.Core.Nets;
using EcsNet.Core.Weights.Onnx;
using EcsNet.Data;
using static TorchSharp.torch;

namespace EcsNet.Core.Weights;

/// <summary>Which input a loaded <see cref="ResNet18Trunk"/> expects.</summary>
public enum ResNet18Input
{
    /// <summary>
    /// The project's input: RGB, (pixel/255 − ImageNet mean) / ImageNet std (<see cref="AugmentOptions.ImageNetMean"/>,
    /// <see cref="AugmentOptions.ImageNetStd"/>). The file's preprocessing is folded into conv1 and bn1.
    /// </summary>
    ImageNetNormalized,

    /// <summary>The file's own input: BGR, 0–255 minus a mean (the package's ResNetPreprocess.onnx). For checks.</summary>
    OnnxBgr,
}

/// <summary>
/// The ImageNet ResNet-18 that installs with the build: <c>tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx</c> of the
/// NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1 (MIT; ML.NET's image featurizer, exported from
/// CNTK), fetched into the NuGet cache by EcsNet.Core's <c>PackageDownload</c>. The file is checked against its
/// sha256 and read with the ONNX reader of <see cref="OnnxModel"/>; its initializers are given our names by walking
/// the graph from the input (Conv → BatchNormalization → Relu … Add → Relu per block), never by their names.
/// docs/WEIGHTS.md has the layout, the preprocessing and what was measured.
/// </summary>
public static class ResNet18Onnx
{
    public const string PackageId = "Microsoft.ML.DnnImageFeaturizer.ResNet18";
    public const string PackageVersion = "0.23.1";

    /// <summary>sha256 of the package's ResNet18.onnx.</summary>
    public const string Sha256 = "e2552f19db2dfdb01b3669537b6a0f1b44da38d18279535492ed5dfc2ef1ff8f";

    /// <summary>Environment variable that points the default path elsewhere (e.g. a copy in a container image).</summary>
    public const string PathVariable = "ECSNET_RESNET18_ONNX";

    /// <summary>
    /// Per-channel means (B, G, R, 0–255 scale) the network expects subtracted: the channel averages of the
    /// 224×224 mean image in the package's ResNetPreprocess.onnx (that graph subtracts the whole image; a
    /// per-channel mean is what works at any input size).
    /// </summary>
    public static readonly IReadOnlyList<double> BgrMean = new[] { 103.06262401521815, 115.90288236463556, 123.1516307762691 };

    /// <summary>
    /// Where the file is: <see cref="PathVariable"/> when set, otherwise its place in the NuGet cache as the build
    /// recorded it; null when neither is known.
    /// </summary>
    public static string? DefaultPath =>
        Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment
            : typeof(ResNet18Onnx).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "EcsNet.ResNet18Onnx")?.Value;

    /// <summary>Checks that <paramref name="path"/> exists and has <see cref="Sha256"/>.</summary>
    /// <exception cref="BadInputException">Missing file or another sha256, naming the file and what to do.</exception>
    public static void Verify(string path)
    {
        if (!File.Exists(path))
            throw new BadInputException(path,
                $"file not found: the ImageNet ResNet-18 of NuGet package {PackageId} {PackageVersion}, which building " +
                $"EcsNet.Core downloads (dotnet restore); or set {PathVariable} to a copy, or train without it (--no-pretrained)");
        string actual;
        using (var stream = File.OpenRead(path))
            actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        if (actual != Sha256)
            throw new BadInputException(path,
                $"sha256 {actual}, expected {Sha256} (ResNet18.onnx of {PackageId} {PackageVersion}); " +
                "a damaged or different file: delete the package's folder in the NuGet cache and restore again");
    }

    /// <summary>Verifies, reads and loads the weights into <paramref name="trunk"/> (strict: every tensor must match).</summary>
    /// <param name="path">null: <see cref="DefaultPath"/>.</param>
    /// <param name="input">The input the loaded trunk will get (the project's normalisation unless checking the file).</param>
    public static WeightLoadReport Load(ResNet18Trunk trunk, string? path = null, ResNet18Input input = ResNet18Input.ImageNetNormalized)
    {
        path ??= DefaultPath ?? throw new BadInputException(PackageId,
            $"location unknown: this build recorded no NuGet cache path; set {PathVariable} or train without it (--no-pretrained)");
        var tensors = ReadStateDict(path, input);
        try
        {
            // A two-block layer4 (torchvision's) leaves the file's third block out.
            var options = new WeightLoadOptions
            {
                MapName = trunk.Options.Layer4Blocks == 2
                    ? name => name.StartsWith("layer4.2.", StringComparison.Ordinal) ? null : name
                    : WeightNameMaps.Identity,
            };
            return PretrainedWeights.Load(trunk, tensors, path, WeightFileFormat.Onnx, options);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>
    /// The file's weights under our (torchvision) names, for every block the file has: <c>conv1.weight</c>,
    /// <c>bn1.running_mean</c>, <c>layer4.2.conv2.weight</c>, <c>layer2.0.downsample.1.bias</c>, …
    /// </summary>
    public static Dictionary<string, Tensor> ReadStateDict(string path, ResNet18Input input = ResNet18Input.ImageNetNormalized)
    {
        Verify(path);
        var model = OnnxModel.Read(path);
        var walk = new GraphWalk(model.Graph, path);
        var result = walk.Run();
        if (input == ResNet18Input.ImageNetNormalized)
            FoldInput(result);
        return result;
    }

    /// <summary>BasicBlocks per stage, found by walking the graph (the package's file: 2, 2, 2, 3).</summary>
    public static IReadOnlyList<int> BlocksPerStage(string path)
    {
        var walk = new GraphWalk(OnnxModel.Read(path).Graph, path);
        foreach (var t in walk.Run().Values) t.Dispose();
        return walk.Blocks;
    }

    /// <summary>
    /// Makes conv1 + bn1 take the project's input z_c = (p_c/255 − m_c)/s_c (RGB) instead of the file's
    /// u_k = p_(2−k) − M_k (BGR): u_k = 255·s_c·z_c + (255·m_c − M_k) with c = 2 − k, so conv1's input channels are
    /// reversed and scaled by 255·s_c, and the constant's response Σ W (255·m − M) moves into bn1's running mean.
    /// Exact away from the image border; at the border conv1's zero padding now stands for the ImageNet mean colour
    /// rather than the file's mean colour (they differ by under one grey level).
    /// </summary>
    private static void FoldInput(Dictionary<string, Tensor> state)
    {
        var w = state["conv1.weight"];
        var mean = AugmentOptions.ImageNetMean;
        var std = AugmentOptions.ImageNetStd;
        using var wd = w.to_type(ScalarType.Float64);
        using var rgb = wd.flip(1);   // file channel order B, G, R → ours R, G, B
        using var scale = tensor(new[] { 255.0 * std[0], 255.0 * std[1], 255.0 * std[2] }, float64).view(1, 3, 1, 1);
        using var shift = tensor(new[] { 255.0 * mean[0] - BgrMean[2], 255.0 * mean[1] - BgrMean[1], 255.0 * mean[2] - BgrMean[0] }, float64).view(1, 3, 1, 1);
        using var folded = rgb * scale;
        using var response = (rgb * shift).sum(new long[] { 1, 2, 3 });
        using var runningMean = state["bn1.running_mean"].to_type(ScalarType.Float64) - response;
        ReplaceWith(state, "conv1.weight", folded.to_type(ScalarType.Float32));
        ReplaceWith(state, "bn1.running_mean", runningMean.to_type(ScalarType.Float32));
    }

    private static void ReplaceWith(Dictionary<string, Tensor> state, string name, Tensor value)
    {
        state[name].Dispose();
        state[name] = value;
    }

    /// <summary>Follows the graph from its input and names each Conv/BatchNormalization pair it meets.</summary>
    private sealed class GraphWalk
    {
        private readonly GraphProto graph;
        private readonly string path;
        private readonly Dictionary<string, TensorProto> initializers;
        private readonly ILookup<string, NodeProto> consumers;
        private readonly Dictionary<string, Tensor> result = new(StringComparer.Ordinal);
        private readonly List<int> blocks = new();
        private readonly HashSet<string> used = new(StringComparer.Ordinal);

        public GraphWalk(GraphProto graph, string path)
        {
            this.graph = graph;
            this.path = path;
            initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
            consumers = graph.Node.SelectMany(n => n.Input.Select(i => (Input: i, Node: n))).ToLookup(p => p.Input, p => p.Node);
        }

        public IReadOnlyList<int> Blocks => blocks;

        public Dictionary<string, Tensor> Run()
        {
            try
            {
                Walk();
                return result;
            }
            catch
            {
                foreach (var t in result.Values) t.Dispose();
                throw;
            }
        }

        private void Walk()
        {
            var inputs = graph.Input.Where(i => !initializers.ContainsKey(i.Name)).ToList();
            if (inputs.Count != 1)
                throw Bad($"{inputs.Count} graph inputs, expected one image input");

            // Stem: conv 7×7/2 → BN → ReLU → max-pool 3×3/2.
            var stem = Next(inputs[0].Name, "Conv");
            CheckConv(stem, kernel: 7, stride: 2);
            var stemBn = Next(stem.Output[0], "BatchNormalization");
            var pool = Next(Next(stemBn.Output[0], "Relu").Output[0], "MaxPool");
            if (!OnnxModel.Ints(pool, "kernel_shape").SequenceEqual(new long[] { 3, 3 })
                || !OnnxModel.Ints(pool, "strides", 1, 1).SequenceEqual(new long[] { 2, 2 }))
                throw Bad($"node {Describe(pool)}: expected a 3×3 max-pool with stride 2");
            Take(stem, stemBn, "conv1", "bn1");

            // BasicBlocks until the global average pool. A block with a projection shortcut starts a stage.
            string x = pool.Output[0];
            int stage = 1, block = 0;
            while (true)
            {
                var next = consumers[x].ToList();
                if (next.Count == 1 && next[0].OpType == "AveragePool")
                    break;
                // The block's conv(s): the 3×3 of the main path and the 1×1 projection, if any; an identity
                // shortcut makes the block's Add another consumer (checked below).
                var convs = next.Where(n => n.OpType == "Conv").ToList();
                if (next.Any(n => n.OpType is not ("Conv" or "Add")) || convs.Count is not (1 or 2) || next.Count - convs.Count > 1)
                    throw Bad($"after {x}: {string.Join(", ", next.Select(Describe))}; expected a BasicBlock's conv(s) or the final AveragePool");
                var main = convs.SingleOrDefault(c => OnnxModel.Ints(c, "kernel_shape").SequenceEqual(new long[] { 3, 3 }))
                    ?? throw Bad($"after {x}: no 3×3 conv starting a BasicBlock");
                var down = convs.Count == 2 ? convs.Single(c => c != main) : null;
                if (down is not null && block > 0)
                {
                    blocks.Add(block);
                    stage++;
                    block = 0;
                }
                int stride = stage > 1 && block == 0 ? 2 : 1;
                CheckConv(main, kernel: 3, stride: stride);

                var bnA = Next(main.Output[0], "BatchNormalization");
                var convB = Next(Next(bnA.Output[0], "Relu").Output[0], "Conv");
                CheckConv(convB, kernel: 3, stride: 1);
                var bnB = Next(convB.Output[0], "BatchNormalization");
                var add = Next(bnB.Output[0], "Add");
                string shortcut = x;
                NodeProto? bnD = null;
                if (down is not null)
                {
                    CheckConv(down, kernel: 1, stride: stride);
                    bnD = Next(down.Output[0], "BatchNormalization");
                    shortcut = bnD.Output[0];
                }
                else if (stride != 1)
                {
                    throw Bad($"node {Describe(main)}: a strided block without a projection shortcut");
                }
                if (!add.Input.OrderBy(s => s, StringComparer.Ordinal).SequenceEqual(new[] { bnB.Output[0], shortcut }.OrderBy(s => s, StringComparer.Ordinal)))
                    throw Bad($"node {Describe(add)}: adds {string.Join(" + ", add.Input)}, expected {bnB.Output[0]} + {shortcut}");

                var prefix = $"layer{stage}.{block}.";
                Take(main, bnA, prefix + "conv1", prefix + "bn1");
                Take(convB, bnB, prefix + "conv2", prefix + "bn2");
                if (down is not null)
                    Take(down, bnD!, prefix + "downsample.0", prefix + "downsample.1");
                x = Next(add.Output[0], "Relu").Output[0];
                block++;
            }
            blocks.Add(block);
            if (blocks.Count != 4)
                throw Bad($"{blocks.Count} stages of BasicBlocks ({string.Join(", ", blocks)}), a ResNet-18 has 4");
            var unused = initializers.Keys.Except(used).ToList();
            if (unused.Count > 0)
                throw Bad($"{unused.Count} initializer(s) not reached from the input: {string.Join(", ", unused.Take(8))}");
        }

        private NodeProto Next(string value, string opType)
        {
            var next = consumers[value].ToList();
            if (next.Count != 1 || next[0].OpType != opType)
                throw Bad($"{value} feeds {(next.Count == 0 ? "nothing" : string.Join(", ", next.Select(Describe)))}, expected one {opType}");
            return next[0];
        }

        private void CheckConv(NodeProto conv, int kernel, int stride)
        {
            var k = OnnxModel.Ints(conv, "kernel_shape");
            var s = OnnxModel.Ints(conv, "strides", 1, 1);
            var d = OnnxModel.Ints(conv, "dilations", 1, 1);
            var pads = OnnxModel.Ints(conv, "pads", 0, 0, 0, 0);
            var autoPad = OnnxModel.String(conv, "auto_pad", "NOTSET");
            int p = kernel / 2;
            // Padding: torchvision's symmetric k/2, or CNTK's for stride 2, one less at the end; with an even input
            // size the last window never reaches that extra row and column, so the two give the same result.
            bool padsOk = pads.Length == 4 && pads[0] == p && pads[1] == p
                && pads[2] == pads[3] && (pads[2] == p || (stride == 2 && pads[2] == p - 1));
            if (!k.SequenceEqual(new long[] { kernel, kernel }) || !s.SequenceEqual(new long[] { stride, stride })
                || !d.SequenceEqual(new long[] { 1, 1 }) || OnnxModel.Int(conv, "group", 1) != 1
                || autoPad != "NOTSET" || !padsOk || conv.Input.Count != 2)
                throw Bad($"node {Describe(conv)}: expected a {kernel}×{kernel} conv, stride {stride}, padding {p}, no bias " +
                          $"(got kernel [{string.Join(", ", k)}], strides [{string.Join(", ", s)}], pads [{string.Join(", ", pads)}], {conv.Input.Count - 1} weight input(s))");
        }

        private void Take(NodeProto conv, NodeProto bn, string convName, string bnName)
        {
            if (bn.Input.Count != 5)
                throw Bad($"node {Describe(bn)}: {bn.Input.Count} inputs, expected x, scale, bias, mean, var");
            float eps = OnnxModel.Float(bn, "epsilon", 1e-5f);
            if (Math.Abs(eps - 1e-5f) > 1e-9f)
                throw Bad($"node {Describe(bn)}: epsilon {eps}, our BatchNorm uses 1e-5");
            if (OnnxModel.Int(bn, "spatial", 1) != 1)
                throw Bad($"node {Describe(bn)}: per-activation (spatial = 0) batch norm");
            Add(convName + ".weight", conv.Input[1]);
            Add(bnName + ".weight", bn.Input[1]);
            Add(bnName + ".bias", bn.Input[2]);
            Add(bnName + ".running_mean", bn.Input[3]);
            Add(bnName + ".running_var", bn.Input[4]);
        }

        private void Add(string name, string initializer)
        {
            if (!initializers.TryGetValue(initializer, out var t))
                throw Bad($"{initializer} (for {name}) is not an initializer");
            used.Add(initializer);
            float[] values;
            try
            {
                values = OnnxModel.ToFloats(t);
            }
            catch (InvalidDataException e)
            {
                throw Bad(e.Message);
            }
            result.Add(name, tensor(values, t.Dims.ToArray()));
        }

        private static string Describe(NodeProto n) => $"{n.OpType} {(n.Name.Length > 0 ? n.Name : string.Join(",", n.Output))}";

        private BadInputException Bad(string problem) => new(path, $"not the expected ResNet-18 graph: {problem}");
    }
}
