using System.Text.Json;
using EcsNet.Core.Nets;
using EcsNet.Core.Stages;
using EcsNet.Core.Weights;
using EcsNet.Core.Weights.Onnx;
using EcsNet.Data;
using EcsNet.Testing;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace EcsNet.Core.Tests.Weights;

/// <summary>
/// The packaged ImageNet ResNet-18 (NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18, downloaded by EcsNet.Core's
/// build). Reference values: Fixtures/resnet18-onnx.json, written by Fixtures/make_resnet18_onnx_fixture.py (a NumPy
/// evaluator of the ONNX graphs) for Fixtures/resnet18-onnx-input.png (VOC 2007_000123, 224×224).
/// </summary>
public class ResNet18OnnxTests
{
    private readonly ITestOutputHelper output;

    public ResNet18OnnxTests(ITestOutputHelper output) => this.output = output;

    private static string OnnxPath => ResNet18Onnx.DefaultPath ?? throw new InvalidOperationException("no recorded path");

    private static JsonElement Reference { get; } =
        JsonDocument.Parse(File.ReadAllText(StateDictListing.FixturePath("resnet18-onnx.json"))).RootElement;

    private static float[] ReferenceValues(string key) =>
        Reference.GetProperty(key).EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();

    [Fact]
    public void BuildRecordsThePackagedFileAndItHasThePinnedSha256()
    {
        Assert.EndsWith("microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx",
            OnnxPath.Replace('\\', '/'), StringComparison.Ordinal);
        ResNet18Onnx.Verify(OnnxPath);
        Assert.Equal(ResNet18Onnx.Sha256, Reference.GetProperty("resnet18Sha256").GetString());
    }

    [Fact]
    public void MissingOrDifferentFileIsAnErrorNamingIt()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-{Guid.NewGuid():N}.onnx");
        var e = Assert.Throws<BadInputException>(() => ResNet18Onnx.Verify(missing));
        Assert.Equal(missing, e.Subject);
        Assert.Contains("file not found", e.Problem);
        Assert.Contains("--no-pretrained", e.Problem);

        var other = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(other, new byte[] { 8, 3, 1, 2, 3 });
            using var trunk = new ResNet18Trunk();
            e = Assert.Throws<BadInputException>(() => ResNet18Onnx.Load(trunk, other));
            Assert.Equal(other, e.Subject);
            Assert.Contains("sha256", e.Problem);
            Assert.Contains(ResNet18Onnx.Sha256, e.Problem);
        }
        finally
        {
            File.Delete(other);
        }
    }

    [Fact]
    public void GraphFactsAreTheMeasuredOnes()
    {
        var model = OnnxModel.Read(OnnxPath);
        Assert.Equal(8, model.OpsetImport.Single().Version);
        var input = Assert.Single(model.Graph.Input);
        Assert.Equal("Input247", input.Name);
        Assert.Equal(new long[] { 1, 3, 224, 224 }, OnnxModel.Shape(input));
        Assert.Equal(new long[] { 1, 512, 1, 1 }, OnnxModel.Shape(Assert.Single(model.Graph.Output)));
        Assert.Equal(110, model.Graph.Initializer.Count);
        Assert.All(model.Graph.Initializer, t => Assert.True(t.RawData.IsEmpty && t.FloatData.Count > 0));
        Assert.Equal(new[] { 2, 2, 2, 3 }, ResNet18Onnx.BlocksPerStage(OnnxPath));
    }

    [Fact]
    public void GraphWalkNamesEveryInitializerWithTorchvisionNames()
    {
        var state = ResNet18Onnx.ReadStateDict(OnnxPath, ResNet18Input.OnnxBgr);
        try
        {
            // Stem 5 + 9 blocks × 2 conv/BN pairs × 5 + 3 projections × 5.
            Assert.Equal(110, state.Count);
            Assert.Equal(new long[] { 64, 3, 7, 7 }, state["conv1.weight"].shape);
            Assert.Equal(new long[] { 128, 64, 1, 1 }, state["layer2.0.downsample.0.weight"].shape);
            Assert.Equal(new long[] { 512, 512, 3, 3 }, state["layer4.2.conv2.weight"].shape);
            Assert.Equal(new long[] { 512 }, state["layer4.2.bn2.running_var"].shape);
            Assert.False(state.ContainsKey("layer1.0.downsample.0.weight"));
            // Running variances are positive, as trained batch-norm statistics are.
            Assert.All(state.Where(kv => kv.Key.EndsWith("running_var", StringComparison.Ordinal)),
                kv => Assert.True(kv.Value.min().item<float>() > 0, kv.Key));
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
    }

    [Theory]
    [InlineData(3, 0)]
    [InlineData(2, 10)]
    public void LoadsStrictlyIntoEitherLayer4Depth(int layer4Blocks, int skipped)
    {
        using var trunk = new ResNet18Trunk(new TrunkOptions { Layer4Blocks = layer4Blocks });
        var report = ResNet18Onnx.Load(trunk);
        Assert.Equal(WeightFileFormat.Onnx, report.Format);
        Assert.Equal(110 - skipped, report.Loaded.Count);
        Assert.Equal(skipped, report.Skipped.Count);
        Assert.All(report.Skipped, name => Assert.StartsWith("layer4.2.", name));
        Assert.Empty(report.Unexpected);
        Assert.All(report.Missing, name => Assert.EndsWith("num_batches_tracked", name));
    }

    [Fact]
    public void ForwardOnTheFilesInputEqualsTheOnnxGraph()
    {
        using var scope = NewDisposeScope();
        var image = ImageCodec.ReadRgb(StateDictListing.FixturePath("resnet18-onnx-input.png"));
        var prepPath = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(OnnxPath))!, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        var prep = OnnxModel.Read(prepPath);
        var meanImage = Assert.Single(prep.Graph.Initializer);
        Assert.Equal(new long[] { 1, 3, 224, 224 }, meanImage.Dims);

        // The package's preprocessing: RGB 0–255 → BGR → minus the mean image.
        var rgb = tensor(image.Pixels.Select(p => (float)p).ToArray(), new long[] { 224, 224, 3 }).permute(2, 0, 1).unsqueeze(0);
        var input = rgb.flip(1) - tensor(OnnxModel.ToFloats(meanImage), meanImage.Dims.ToArray());

        using var trunk = new ResNet18Trunk(new TrunkOptions { OutputStride = 32, Layer4Blocks = 3 });
        ResNet18Onnx.Load(trunk, input: ResNet18Input.OnnxBgr);
        trunk.eval();
        using var _ = no_grad();
        var map = trunk.forward(input);
        Assert.Equal(new long[] { 1, 512, 7, 7 }, map.shape);
        var pooled = map.mean(new long[] { 2, 3 }).flatten().data<float>().ToArray();
        var diff = MaxAbsDiff(pooled, ReferenceValues("package"));
        output.WriteLine($"max |ours − ONNX graph| over 512 pooled features (package preprocessing): {diff:G3}");
        Assert.True(diff <= 1e-4, $"max abs diff {diff}");
    }

    [Fact]
    public void ForwardOnTheProjectsNormalisationEqualsTheFoldedReference()
    {
        using var scope = NewDisposeScope();
        var image = ImageCodec.ReadRgb(StateDictListing.FixturePath("resnet18-onnx-input.png"));
        var input = tensor(Augmentation.Normalize(image), new long[] { 1, 3, 224, 224 });
        using var trunk = new ResNet18Trunk(new TrunkOptions { OutputStride = 32, Layer4Blocks = 3 });
        ResNet18Onnx.Load(trunk);
        trunk.eval();
        using var _ = no_grad();
        var pooled = trunk.forward(input).mean(new long[] { 2, 3 }).flatten().data<float>().ToArray();
        var diff = MaxAbsDiff(pooled, ReferenceValues("folded"));
        var border = MaxAbsDiff(pooled, ReferenceValues("channelMean"));
        output.WriteLine($"max |ours − reference| (folded input): {diff:G3}; vs the graph on per-channel means, where only conv1's padding differs: {border:G3}");
        Assert.True(diff <= 1e-4, $"max abs diff {diff}");
    }

    /// <summary>
    /// On the VOC sample, foreground and background cells of the feature map (ground-truth masks shrunk to the
    /// grid) are told apart by their two class prototypes (cosine, balanced accuracy) better with the ImageNet
    /// weights than with torchvision's random initialisation.
    /// </summary>
    [RealDataFact]
    public void PretrainedFeaturesSeparateForegroundFromBackgroundBetterThanRandom()
    {
        var variants = new (string Name, TrunkOptions Options, bool Pretrained)[]
        {
            ("pretrained, stride 8, layer4 2 blocks (default)", new TrunkOptions(), true),
            ("pretrained, stride 8, layer4 3 blocks", new TrunkOptions { Layer4Blocks = 3 }, true),
            ("pretrained, stride 16, layer4 2 blocks", new TrunkOptions { OutputStride = 16 }, true),
            ("random init, stride 8, layer4 2 blocks", new TrunkOptions(), false),
        };
        var scores = new Dictionary<string, double>();
        foreach (var (name, options, pretrained) in variants)
        {
            using var trunk = CamStage.Seeded(1, () => new ResNet18Trunk(options));
            if (pretrained) ResNet18Onnx.Load(trunk);
            trunk.eval();
            var perImage = RealVocSample.MaskClasses.Keys.Select(id => Separability(trunk, id)).ToList();
            scores[name] = perImage.Average();
            output.WriteLine($"{name}: mean balanced accuracy {scores[name]:F3} ({string.Join(", ", perImage.Select(s => s.ToString("F3")))})");
        }
        Assert.True(scores[variants[0].Name] > scores[variants[3].Name] + 0.05,
            $"pretrained {scores[variants[0].Name]:F3}, random {scores[variants[3].Name]:F3}");
        Assert.True(scores[variants[0].Name] > 0.8, $"pretrained {scores[variants[0].Name]:F3}");
    }

    // Nearest-prototype foreground/background accuracy on one sample image (long side 256 px).
    private static double Separability(ResNet18Trunk trunk, string id)
    {
        using var scope = NewDisposeScope();
        var voc = Path.Combine(RealVocSample.Root!, "VOCdevkit", "VOC2012");
        var image = ImageCodec.ReadRgb(Path.Combine(voc, "JPEGImages", id + ".jpg"));
        double s = 256.0 / Math.Max(image.Width, image.Height);
        int w = (int)Math.Round(image.Width * s), h = (int)Math.Round(image.Height * s);
        image = Resize.Bilinear(image, w, h);
        using var _ = no_grad();
        var features = trunk.forward(tensor(Augmentation.Normalize(image), new long[] { 1, 3, h, w }))[0];
        int gh = (int)features.shape[1], gw = (int)features.shape[2];
        var mask = Resize.Nearest(ImageCodec.ReadLabelPng(Path.Combine(RealVocSample.MaskFolder, id + ".png")), gw, gh);
        var cells = nn.functional.normalize(features.reshape(features.shape[0], -1).t(), p: 2, dim: 1);   // [gh·gw, C]
        var labels = mask.Labels;
        var fg = tensor(labels.Select(l => l is > 0 and < 255).ToArray());
        var bg = tensor(labels.Select(l => l == 0).ToArray());
        var fgProto = cells[fg].mean(new long[] { 0 });
        var bgProto = cells[bg].mean(new long[] { 0 });
        var saysFg = (cells.matmul(fgProto) > cells.matmul(bgProto)).data<bool>().ToArray();
        int tp = 0, fgCount = 0, tn = 0, bgCount = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] == 255) continue;
            if (labels[i] > 0) { fgCount++; if (saysFg[i]) tp++; }
            else { bgCount++; if (!saysFg[i]) tn++; }
        }
        return 0.5 * ((double)tp / fgCount + (double)tn / bgCount);
    }

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(b.Length, a.Length);
        return a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
    }
}
