using System.Globalization;
using EcsNet.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace EcsNet.Core.Runtime;

/// <summary>
/// Where a replica trains: <c>cpu</c>, <c>cuda</c> (the first GPU) or <c>cuda:i</c>. The model, its batches and
/// its optimizer state are placed there through TorchSharp; a GPU needs the CUDA build of the project
/// (<c>-p:EcsNetCuda=true</c>, docs/BUILD.md) on a machine with that GPU.
/// </summary>
public static class Devices
{
    /// <summary>Checks the text's form (not whether the device exists): "cpu", "cuda" or "cuda:N".</summary>
    /// <exception cref="BadInputException">Names <paramref name="field"/> and the text.</exception>
    public static string Normalize(string text, string field = "--device")
    {
        var t = text.Trim().ToLowerInvariant();
        if (t == "cpu")
            return "cpu";
        if (t == "cuda")
            return "cuda:0";
        if (t.StartsWith("cuda:", StringComparison.Ordinal) &&
            int.TryParse(t.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            return $"cuda:{index}";
        throw new BadInputException(field, $"'{text}' is not a device: use cpu, cuda or cuda:N");
    }

    /// <summary>The TorchSharp device for the text, after checking that this process can use it.</summary>
    /// <exception cref="BadInputException">The device is malformed, or is a GPU that this build or machine does not have.</exception>
    public static Device Resolve(string text, string field = "--device")
    {
        var name = Normalize(text, field);
        if (name == "cpu")
            return CPU;
        int index = int.Parse(name.AsSpan(5), CultureInfo.InvariantCulture);
        if (!torch.cuda.is_available())
            throw new BadInputException(field, $"{name} asked for, but CUDA is not available here " +
                                                "(a CPU build of LibTorch, or no NVIDIA driver): build with -p:EcsNetCuda=true on a GPU node, or use cpu");
        int count = torch.cuda.device_count();
        if (index >= count)
            throw new BadInputException(field, $"{name} asked for, but this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})");
        return new Device(DeviceType.CUDA, index);
    }
}
