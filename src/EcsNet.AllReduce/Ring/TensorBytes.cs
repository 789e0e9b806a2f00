using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace EcsNet.AllReduce.Ring;

/// <summary>Copies between float32 tensors and flat float spans (in place on the CPU, through a staging copy elsewhere).</summary>
internal static class TensorBytes
{
    public static void Read(Tensor tensor, Span<float> destination)
    {
        if (tensor.dtype != ScalarType.Float32)
            throw new ArgumentException($"data-parallel sync needs float32 tensors, got {tensor.dtype}", nameof(tensor));
        if (tensor.device_type == DeviceType.CPU && tensor.is_contiguous())
        {
            MemoryMarshal.Cast<byte, float>(tensor.bytes).CopyTo(destination);
            return;
        }
        using var staged = tensor.detach().to(CPU).contiguous();
        MemoryMarshal.Cast<byte, float>(staged.bytes).CopyTo(destination);
    }

    public static void Write(ReadOnlySpan<float> source, Tensor tensor)
    {
        if (tensor.dtype != ScalarType.Float32)
            throw new ArgumentException($"data-parallel sync needs float32 tensors, got {tensor.dtype}", nameof(tensor));
        if (tensor.device_type == DeviceType.CPU && tensor.is_contiguous())
        {
            source.CopyTo(MemoryMarshal.Cast<byte, float>(tensor.bytes));
            return;
        }
        using var staged = torch.tensor(source.ToArray(), dtype: ScalarType.Float32).view(tensor.shape);
        using (no_grad())
            tensor.copy_(staged);
    }
}
