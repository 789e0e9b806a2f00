using EcsNet.Core.Nets;
using EcsNet.Core.Weights;
using EcsNet.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace EcsNet.Core.Tests.Weights;

/// <summary>
/// A toy trunk with PSA ResNet-38 names (conv1a, a projected pre-activation block b2, bn7); mirrored by the Python
/// script that wrote the fixtures (Fixtures/make_weight_fixtures.py).
/// </summary>
internal sealed class TinyPsaTrunk : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1a;
    private readonly BatchNorm2d bn7;

    public TinyPsaTrunk(int width = 4) : base(nameof(TinyPsaTrunk))
    {
        conv1a = Conv2d(3, width, 3, padding: 1, bias: false);
        register_module("conv1a", conv1a);
        register_module("b2", new Block(width, 8));
        bn7 = BatchNorm2d(8);
        register_module("bn7", bn7);
    }

    public override Tensor forward(Tensor x) => throw new NotSupportedException("only its state is used");

    private sealed class Block : Module<Tensor, Tensor>
    {
        public Block(int cin, int cout) : base("b2")
        {
            register_module("bn_branch2a", BatchNorm2d(cin));
            register_module("conv_branch2a", Conv2d(cin, cout, 3, stride: 2, padding: 1, bias: false));
            register_module("bn_branch2b1", BatchNorm2d(cout));
            register_module("conv_branch2b1", Conv2d(cout, cout, 3, padding: 1, bias: false));
            register_module("conv_branch1", Conv2d(cin, cout, 1, stride: 2, bias: false));
        }

        public override Tensor forward(Tensor x) => throw new NotSupportedException();
    }
}

public class PretrainedWeightsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("ecsnet-weights-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>The values the Python fixture script stores: key k (ordinal order) holds ((j % 17) − 8)/8 + k/4.</summary>
    private static void AssertHoldsFixtureValues(Module module)
    {
        var sd = module.state_dict();
        var order = sd.Keys.Order(StringComparer.Ordinal).ToList();
        foreach (var (name, t) in sd)
        {
            int k = order.IndexOf(name);
            if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal))
            {
                Assert.Equal(3L * k + 1, t.item<long>());
                continue;
            }
            var j = arange(t.numel(), dtype: float64);
            var expected = ((j % 17 - 8) / 8 + k / 4.0).to(float32).reshape(t.shape);
            Assert.True(TensorAssert.Identical(t, expected), $"{name} differs from the fixture values");
        }
    }

    private static void AssertSameState(Module a, Module b)
    {
        var sa = a.state_dict();
        var sb = b.state_dict();
        Assert.Equal(sa.Keys, sb.Keys);
        foreach (var (name, t) in sa)
            Assert.True(TensorAssert.Identical(t, sb[name]), $"{name} differs");
    }

    private static TinyPsaTrunk Randomised(int seed)
    {
        torch.manual_seed(seed);
        var m = new TinyPsaTrunk();
        using (no_grad())
            foreach (var (_, t) in m.state_dict())
                if (t.is_floating_point()) t.copy_(randn_like(t));
                else t.fill_(seed);
        return m;
    }

    [Theory]
    [InlineData("tiny.pth", WeightFileFormat.PyTorchZip)]
    [InlineData("tiny-legacy.pth", WeightFileFormat.PyTorchLegacy)]
    [InlineData("tiny-f16.safetensors", WeightFileFormat.Safetensors)]
    [InlineData("tiny-bf16.safetensors", WeightFileFormat.Safetensors)]
    public void LoadsFilesWrittenByPyTorch(string file, WeightFileFormat format)
    {
        using var model = Randomised(1);
        var report = PretrainedWeights.Load(model, StateDictListing.FixturePath(file));
        Assert.Equal(format, report.Format);
        Assert.Equal(19, report.Loaded.Count);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        AssertHoldsFixtureValues(model);
    }

    [Fact]
    public void LegacyCheckpointIsUnwrappedAndModulePrefixStripped()
    {
        // tiny-legacy.pth is {"state_dict": {"module.conv1a.weight": …}, "epoch": 3}.
        var tensors = PretrainedWeights.Read(StateDictListing.FixturePath("tiny-legacy.pth"), out _);
        Assert.Contains("module.conv1a.weight", tensors.Keys);
        Assert.Equal(new long[] { 4, 3, 3, 3 }, tensors["module.conv1a.weight"].shape);
        Assert.Equal(ScalarType.Int64, tensors["module.bn7.num_batches_tracked"].dtype);
        foreach (var t in tensors.Values) t.Dispose();
    }

    [Fact]
    public void LoadsMxNetParamsWithAdemxappNamesThroughTheResNet38Map()
    {
        using var model = Randomised(2);
        var report = PretrainedWeights.Load(model, StateDictListing.FixturePath("tiny-mxnet.params"),
            new WeightLoadOptions { MapName = WeightNameMaps.ForBackbone(BackboneKind.ResNet38) });
        Assert.Equal(WeightFileFormat.MxNetParams, report.Format);
        Assert.Equal(new[] { "arg:linear1000_bias", "arg:linear1000_weight" }, report.Skipped);
        // MXNet has no num_batches_tracked counters: left as they were, and not an error in strict mode.
        Assert.Equal(3, report.Missing.Count);
        Assert.All(report.Missing, n => Assert.EndsWith("num_batches_tracked", n));
        var sd = model.state_dict();
        var order = sd.Keys.Order(StringComparer.Ordinal).ToList();
        foreach (var (name, t) in sd.Where(kv => !kv.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)))
        {
            var j = arange(t.numel(), dtype: float64);
            var expected = ((j % 17 - 8) / 8 + order.IndexOf(name) / 4.0).to(float32).reshape(t.shape);
            Assert.True(TensorAssert.Identical(t, expected), name);
        }
        Assert.Equal(2L, sd["bn7.num_batches_tracked"].item<long>());
    }

    [Fact]
    public void SafetensorsRoundTripRestoresEveryTensor()
    {
        using var saved = Randomised(3);
        using var fresh = Randomised(4);
        var path = Path.Combine(dir, "w.safetensors");
        PretrainedWeights.SaveSafetensors(saved, path, new Dictionary<string, string> { ["source"] = "test" });
        Assert.False(TensorAssert.Identical(saved.state_dict()["conv1a.weight"], fresh.state_dict()["conv1a.weight"]));
        var report = PretrainedWeights.Load(fresh, path);
        Assert.Equal(WeightFileFormat.Safetensors, report.Format);
        AssertSameState(saved, fresh);
        // The header is padded to 8 bytes so the data is aligned.
        using var s = File.OpenRead(path);
        var len = new byte[8];
        s.ReadExactly(len);
        Assert.Equal(0UL, BitConverter.ToUInt64(len) % 8);
    }

    [Fact]
    public void PyTorchFileRoundTripRestoresEveryTensor()
    {
        using var saved = Randomised(5);
        using var fresh = Randomised(6);
        var path = Path.Combine(dir, "w.pt");
        PretrainedWeights.SavePyTorch(saved, path);
        var report = PretrainedWeights.Load(fresh, path);
        Assert.Equal(WeightFileFormat.PyTorchZip, report.Format);
        AssertSameState(saved, fresh);
    }

    [Fact]
    public void SafetensorsKeepsHalfPrecisionDtypes()
    {
        var path = Path.Combine(dir, "h.safetensors");
        using var h = tensor(new float[] { 1.5f, -2.25f, 65504f }).to(float16);
        using var b = tensor(new float[] { 1.5f, -2.25f, 3e38f }).to(bfloat16);
        Safetensors.Write(path, new Dictionary<string, Tensor> { ["h"] = h, ["b"] = b });
        var back = Safetensors.Read(path);
        Assert.Equal(ScalarType.Float16, back["h"].dtype);
        Assert.Equal(ScalarType.BFloat16, back["b"].dtype);
        Assert.True(TensorAssert.Identical(back["h"], h));
        Assert.True(TensorAssert.Identical(back["b"], b));
        foreach (var t in back.Values) t.Dispose();
    }

    [Fact]
    public void StrictLoadListsMissingUnexpectedAndMismatchedNames()
    {
        using var source = Randomised(7);
        var state = source.state_dict();
        var tensors = state
            .Where(kv => kv.Key != "b2.conv_branch1.weight" && kv.Key != "bn7.bias")
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        tensors["extra.weight"] = ones(3);
        tensors["conv1a.weight"] = ones(5, 3, 3, 3);
        var path = Path.Combine(dir, "bad.safetensors");
        Safetensors.Write(path, tensors);

        using var target = Randomised(8);
        var before = target.state_dict()["b2.conv_branch2a.weight"].clone();
        var e = Assert.Throws<BadInputException>(() => PretrainedWeights.Load(target, path));
        Assert.Equal(path, e.Subject);
        Assert.Contains("2 model tensor(s) missing from the file: b2.conv_branch1.weight, bn7.bias", e.Message);
        Assert.Contains("1 file tensor(s) not in the model: extra.weight", e.Message);
        Assert.Contains("conv1a.weight (file [5, 3, 3, 3], model [4, 3, 3, 3])", e.Message);
        // Nothing was loaded.
        Assert.True(TensorAssert.Identical(target.state_dict()["b2.conv_branch2a.weight"], before));
    }

    [Fact]
    public void NonStrictLoadReportsWhatItLeftButStillRejectsShapes()
    {
        using var source = Randomised(9);
        var tensors = source.state_dict().Where(kv => kv.Key != "bn7.bias").ToDictionary(kv => kv.Key, kv => kv.Value);
        tensors["extra.weight"] = ones(3);
        var path = Path.Combine(dir, "partial.safetensors");
        Safetensors.Write(path, tensors);

        using var target = Randomised(10);
        var report = PretrainedWeights.Load(target, path, new WeightLoadOptions { Strict = false });
        Assert.Equal(new[] { "bn7.bias" }, report.Missing);
        Assert.Equal(new[] { "extra.weight" }, report.Unexpected);
        Assert.True(TensorAssert.Identical(target.state_dict()["conv1a.weight"], source.state_dict()["conv1a.weight"]));

        tensors["conv1a.weight"] = ones(5, 3, 3, 3);
        Safetensors.Write(path, tensors);
        var e = Assert.Throws<BadInputException>(() =>
            PretrainedWeights.Load(target, path, new WeightLoadOptions { Strict = false }));
        Assert.Contains("conv1a.weight (file [5, 3, 3, 3], model [4, 3, 3, 3])", e.Message);
    }

    [Fact]
    public void ClassifierTensorsAreSkippedUnlessAsked()
    {
        using var source = Randomised(11);
        var tensors = source.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        tensors["fc8.weight"] = ones(20, 8, 1, 1);
        var path = Path.Combine(dir, "cls.safetensors");
        Safetensors.Write(path, tensors);

        using var target = Randomised(12);
        var report = PretrainedWeights.Load(target, path);
        Assert.Equal(new[] { "fc8.weight" }, report.Skipped);
        var e = Assert.Throws<BadInputException>(() =>
            PretrainedWeights.Load(target, path, new WeightLoadOptions { IgnoreClassifier = false }));
        Assert.Contains("not in the model: fc8.weight", e.Message);
    }

    [Fact]
    public void ForeignNamesGetAHintAndMapsFixThem()
    {
        using var source = Randomised(13);
        var tensors = source.state_dict().ToDictionary(kv => "backbone." + kv.Key, kv => kv.Value);
        var path = Path.Combine(dir, "prefixed.safetensors");
        Safetensors.Write(path, tensors);

        using var target = Randomised(14);
        var e = Assert.Throws<BadInputException>(() => PretrainedWeights.Load(target, path, new WeightLoadOptions { MaxNamesListed = 2 }));
        // 19 tensors, less the three num_batches_tracked counters that may be absent.
        Assert.Contains("16 model tensor(s) missing from the file: conv1a.weight, b2.bn_branch2a.weight, … and 14 more", e.Message);
        Assert.Contains("19 file tensor(s) not in the model", e.Message);
        Assert.Contains("file names look like 'backbone.b2.bn_branch2a.bias'", e.Message);

        PretrainedWeights.Load(target, path, new WeightLoadOptions { MapName = WeightNameMaps.StripPrefix("backbone.") });
        AssertSameState(source, target);
    }

    [Fact]
    public void BadFilesGiveOneClearError()
    {
        using var model = new TinyPsaTrunk();
        var missing = Path.Combine(dir, "nope.pth");
        Assert.Equal("file not found", Assert.Throws<BadInputException>(() => PretrainedWeights.Load(model, missing)).Problem);

        var text = Path.Combine(dir, "notes.pth");
        File.WriteAllText(text, "these are not weights");
        Assert.Contains("unknown weight format", Assert.Throws<BadInputException>(() => PretrainedWeights.Load(model, text)).Problem);

        // A safetensors file cut short: the header promises more data than there is.
        var good = Path.Combine(dir, "good.safetensors");
        PretrainedWeights.SaveSafetensors(model, good);
        var cut = Path.Combine(dir, "cut.safetensors");
        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(cut, bytes[..^40]);
        var e = Assert.Throws<BadInputException>(() => PretrainedWeights.Load(model, cut));
        Assert.Equal(cut, e.Subject);
        Assert.Contains("data_offsets", e.Problem);

        // A zip that is not a torch.save archive.
        var zip = Path.Combine(dir, "other.pt");
        using (var archive = System.IO.Compression.ZipFile.Open(zip, System.IO.Compression.ZipArchiveMode.Create))
            archive.CreateEntry("readme.txt");
        Assert.Contains("cannot read as PyTorchZip", Assert.Throws<BadInputException>(() => PretrainedWeights.Load(model, zip)).Problem);

        // A pickle that is not a torch.save file (protocol 2: an empty dict).
        var pickle = Path.Combine(dir, "plain.pkl");
        File.WriteAllBytes(pickle, new byte[] { 0x80, 0x02, (byte)'}', (byte)'q', 0x00, (byte)'.' });
        Assert.Contains("bad magic number", Assert.Throws<BadInputException>(() => PretrainedWeights.Load(model, pickle)).Problem);

        // A legacy file cut inside its storage data.
        var legacy = Path.Combine(dir, "cut-legacy.pth");
        var legacyBytes = File.ReadAllBytes(StateDictListing.FixturePath("tiny-legacy.pth"));
        File.WriteAllBytes(legacy, legacyBytes[..^100]);
        Assert.Equal("legacy PyTorch file is truncated", Assert.Throws<BadInputException>(() => PretrainedWeights.Load(model, legacy)).Problem);

        // A truncated MXNet file.
        var mx = Path.Combine(dir, "cut.params");
        File.WriteAllBytes(mx, File.ReadAllBytes(StateDictListing.FixturePath("tiny-mxnet.params"))[..200]);
        Assert.StartsWith("MXNet file is truncated", Assert.Throws<BadInputException>(() => PretrainedWeights.Load(model, mx)).Problem);
    }
}
