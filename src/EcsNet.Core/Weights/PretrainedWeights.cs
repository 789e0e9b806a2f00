using System.Buffers.Binary;
using System.Collections;
using EcsNet.Core.Nets;
using EcsNet.Data;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace EcsNet.Core.Weights;

/// <summary>Container formats <see cref="PretrainedWeights"/> reads, told apart by their first bytes.</summary>
public enum WeightFileFormat
{
    /// <summary><c>torch.save(state_dict)</c> of PyTorch ≥ 1.6 (a zip archive), via TorchSharp.PyBridge.</summary>
    PyTorchZip,

    /// <summary><c>torch.save(state_dict)</c> of PyTorch ≤ 1.5 or with <c>_use_new_zipfile_serialization=False</c>.</summary>
    PyTorchLegacy,

    /// <summary>Hugging Face safetensors.</summary>
    Safetensors,

    /// <summary>MXNet <c>nd.save</c> list (<c>.params</c>), e.g. the ademxapp ResNet-38 ImageNet weights.</summary>
    MxNetParams,

    /// <summary>ONNX model (the packaged ImageNet ResNet-18, read by <see cref="ResNet18Onnx"/>; not told apart by <see cref="PretrainedWeights.Detect"/>).</summary>
    Onnx,
}

/// <summary>How a weight file is matched against a module.</summary>
public sealed record WeightLoadOptions
{
    /// <summary>
    /// Every tensor of the module must come from the file and every (kept) tensor of the file must exist in the
    /// module; otherwise nothing is loaded and one <see cref="BadInputException"/> lists the differences. BatchNorm
    /// <c>num_batches_tracked</c> counters are exempt (files converted from MXNet/Caffe have none). Shape
    /// mismatches are errors in both modes, as in PyTorch's <c>load_state_dict</c>.
    /// </summary>
    public bool Strict { get; init; } = true;

    /// <summary>Skip file tensors whose (mapped) name starts with one of <see cref="ClassifierPrefixes"/>.</summary>
    public bool IgnoreClassifier { get; init; } = true;

    /// <summary>
    /// Prefixes of ImageNet classifiers and task heads that are not part of a trunk: <c>fc8.</c> (PSA/SEAM
    /// classifier), <c>fc.</c> (torchvision ResNets), <c>classifier.</c> (torchvision VGG), <c>linear1000</c>
    /// (MXNet ResNet-38).
    /// </summary>
    public IReadOnlyList<string> ClassifierPrefixes { get; init; } = new[] { "fc8.", "fc.", "classifier.", "linear1000" };

    /// <summary>
    /// File name → module name, or null to drop the tensor. Null here means the module's default: for a
    /// <see cref="Backbone"/>, <see cref="WeightNameMaps.ForBackbone"/>; otherwise
    /// <see cref="WeightNameMaps.StripModulePrefix"/>.
    /// </summary>
    public Func<string, string?>? MapName { get; init; }

    /// <summary>How many names each list in an error message shows before "… and N more".</summary>
    public int MaxNamesListed { get; init; } = 8;
}

/// <summary>What a load did: module names loaded, file names skipped (by the map or as classifier), module
/// names left as they were (non-strict, or exempt counters), and file names that matched nothing (non-strict).</summary>
public sealed record WeightLoadReport(
    string Path,
    WeightFileFormat Format,
    IReadOnlyList<string> Loaded,
    IReadOnlyList<string> Skipped,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected);

/// <summary>
/// Loads pretrained (e.g. ImageNet) weights from a user-supplied file into a module by name: PyTorch state dicts
/// (zip and legacy), safetensors (F32/F16/BF16 and the integer types), and MXNet <c>.params</c>. Values are
/// copied into the module's existing tensors (converted to their dtype), so optimisers built before the load
/// keep working. Also saves a module's state as safetensors or as a PyTorch file.
/// </summary>
public static class PretrainedWeights
{
    /// <summary>Loads <paramref name="path"/> into <paramref name="module"/>; see <see cref="WeightLoadOptions"/>.</summary>
    /// <exception cref="BadInputException">Unreadable file, or (strict) names/shapes that do not match.</exception>
    public static WeightLoadReport Load(nn.Module module, string path, WeightLoadOptions? options = null)
    {
        var tensors = Read(path, out var format);
        try
        {
            return Load(module, tensors, path, format, options);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>Loads already-read tensors; <paramref name="source"/> names them in messages.</summary>
    public static WeightLoadReport Load(nn.Module module, IReadOnlyDictionary<string, Tensor> tensors, string source,
        WeightFileFormat format, WeightLoadOptions? options = null)
    {
        options ??= new WeightLoadOptions();
        var map = options.MapName
            ?? (module is Backbone b ? WeightNameMaps.ForBackbone(b.Kind) : WeightNameMaps.StripModulePrefix);

        var target = module.state_dict();
        var mapped = new Dictionary<string, (string FileName, Tensor Value)>(StringComparer.Ordinal);
        var skipped = new List<string>();
        var duplicates = new List<string>();
        foreach (var (fileName, value) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var name = map(fileName);
            if (name is null
                || (options.IgnoreClassifier && options.ClassifierPrefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal))))
            {
                skipped.Add(fileName);
                continue;
            }
            if (!mapped.TryAdd(name, (fileName, value)))
                duplicates.Add($"{mapped[name].FileName} and {fileName} → {name}");
        }

        var missing = target.Keys.Where(k => !mapped.ContainsKey(k)).ToList();
        var unexpected = mapped.Where(kv => !target.ContainsKey(kv.Key)).Select(kv => kv.Value.FileName).ToList();
        var mismatched = mapped
            .Where(kv => target.TryGetValue(kv.Key, out var t) && !t.shape.SequenceEqual(kv.Value.Value.shape))
            .Select(kv => $"{kv.Key} (file [{string.Join(", ", kv.Value.Value.shape)}], model [{string.Join(", ", target[kv.Key].shape)}])")
            .ToList();
        var counters = missing.Where(IsExemptCounter).ToList();
        var strictMissing = missing.Except(counters).ToList();

        if (mismatched.Count > 0 || duplicates.Count > 0 || (options.Strict && (strictMissing.Count > 0 || unexpected.Count > 0)))
            throw new BadInputException(source, Describe(options, strictMissing, unexpected, mismatched, duplicates,
                tensors.Keys, target.Keys, options.Strict));

        var loaded = new List<string>();
        using (no_grad())
        {
            foreach (var (name, t) in target)
            {
                if (!mapped.TryGetValue(name, out var src)) continue;
                t.copy_(src.Value);
                loaded.Add(name);
            }
        }
        return new WeightLoadReport(source, format, loaded, skipped, missing, unexpected);
    }

    /// <summary>Reads every tensor of a weight file (CPU, the file's dtypes), whatever its format.</summary>
    /// <exception cref="BadInputException">Missing file, unknown format or a corrupt file.</exception>
    public static Dictionary<string, Tensor> Read(string path, out WeightFileFormat format)
    {
        format = Detect(path);
        try
        {
            return format switch
            {
                WeightFileFormat.Safetensors => Safetensors.Read(path),
                WeightFileFormat.MxNetParams => MxNetParams.Read(path),
                WeightFileFormat.PyTorchLegacy => TorchLegacyFormat.Read(path),
                _ => ReadPyTorchZip(path),
            };
        }
        catch (BadInputException)
        {
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new BadInputException(path, $"cannot read as {format} ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>Tells the container format from the first bytes (extensions are not trusted).</summary>
    public static WeightFileFormat Detect(string path)
    {
        if (Directory.Exists(path))
            throw new BadInputException(path, "is a directory, expected a weight file (.pth, .pt, .safetensors, .params)");
        if (!File.Exists(path))
            throw new BadInputException(path, "file not found");
        var head = new byte[16];
        long length;
        using (var s = File.OpenRead(path))
        {
            length = s.Length;
            int n = s.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            Array.Resize(ref head, n);
        }
        if (head.Length >= 4 && head[0] == 0x50 && head[1] == 0x4B && head[2] == 0x03 && head[3] == 0x04)
            return WeightFileFormat.PyTorchZip;
        if (Safetensors.LooksLike(head, length))
            return WeightFileFormat.Safetensors;
        if (head.Length >= 16 && BinaryPrimitives.ReadUInt64LittleEndian(head) == MxNetParams.ListMagic
            && BinaryPrimitives.ReadUInt64LittleEndian(head.AsSpan(8)) == 0)
            return WeightFileFormat.MxNetParams;
        if (TorchLegacyFormat.LooksLike(head))
            return WeightFileFormat.PyTorchLegacy;
        throw new BadInputException(path,
            $"unknown weight format (first bytes {Convert.ToHexString(head.AsSpan(0, Math.Min(8, head.Length)))}); " +
            "expected a PyTorch state dict (.pth/.pt), safetensors or MXNet .params file");
    }

    /// <summary>Saves a module's parameters and buffers (our names) as safetensors.</summary>
    public static void SaveSafetensors(nn.Module module, string path, IReadOnlyDictionary<string, string>? metadata = null) =>
        Safetensors.Write(path, module.state_dict(), metadata);

    /// <summary>Saves a module's state in PyTorch's zip format, loadable with <c>torch.load</c> (TorchSharp.PyBridge).</summary>
    public static void SavePyTorch(nn.Module module, string path) => module.save_py(path);

    private static Dictionary<string, Tensor> ReadPyTorchZip(string path)
    {
        using var stream = File.OpenRead(path);
        var table = PyTorchUnpickler.UnpickleStateDict(stream);
        // Training checkpoints often wrap the weights: {"state_dict": {...}, "epoch": ...}.
        foreach (var key in new[] { "state_dict", "model", "model_state_dict", "net" })
            if (table[key] is Hashtable inner)
                table = inner;
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in table)
            if (e.Key is string name && e.Value is Tensor t)
                result[name] = t;
        if (result.Count == 0)
            throw new BadInputException(path, "holds no tensors (expected torch.save(model.state_dict(), ...))");
        return result;
    }

    private static bool IsExemptCounter(string name) => name.EndsWith(".num_batches_tracked", StringComparison.Ordinal);

    private static string Describe(WeightLoadOptions options, List<string> missing, List<string> unexpected,
        List<string> mismatched, List<string> duplicates, IEnumerable<string> fileNames, IEnumerable<string> modelNames,
        bool strict)
    {
        string List(IReadOnlyCollection<string> names)
        {
            var shown = names.Take(options.MaxNamesListed);
            var more = names.Count > options.MaxNamesListed ? $", … and {names.Count - options.MaxNamesListed} more" : "";
            return string.Join(", ", shown) + more;
        }

        var parts = new List<string>();
        if (strict && missing.Count > 0) parts.Add($"{missing.Count} model tensor(s) missing from the file: {List(missing)}");
        if (strict && unexpected.Count > 0) parts.Add($"{unexpected.Count} file tensor(s) not in the model: {List(unexpected)}");
        if (mismatched.Count > 0) parts.Add($"{mismatched.Count} with a different shape: {List(mismatched)}");
        if (duplicates.Count > 0) parts.Add($"{duplicates.Count} name(s) mapped twice: {List(duplicates)}");
        var text = "weights do not match the model: " + string.Join("; ", parts);
        if (strict && missing.Count > 0 && unexpected.Count > 0)
            text += $" (file names look like '{fileNames.Order(StringComparer.Ordinal).First()}', model names like " +
                    $"'{modelNames.First()}': choose a name map, see docs/WEIGHTS.md)";
        return text;
    }
}
