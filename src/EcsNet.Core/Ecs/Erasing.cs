using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace EcsNet.Core.Ecs;

/// <summary>
/// Erasing of paper §3.1: the region R = {s > δ}, upsampled to the image, is replaced by a Gaussian-blurred
/// copy of the image. Nothing here is back-propagated (the caller passes detached inputs; we detach again).
/// </summary>
public static class Erasing
{
    /// <summary>R at image size: nearest-upsampled {s &gt; δ}, [B, 1, H, W] of 0/1.</summary>
    public static Tensor Region(Tensor score, double delta, long height, long width)
    {
        using var _ = no_grad();
        var r = (score.detach() > delta).to_type(ScalarType.Float32).unsqueeze(1);
        return F.interpolate(r, new long[] { height, width }, mode: InterpolationMode.Nearest);
    }

    /// <summary>I' = R ⊙ blur(I) + (1 − R) ⊙ I.</summary>
    public static Tensor Erase(Tensor image, Tensor region, double sigma)
    {
        using var _ = no_grad();
        var blurred = GaussianBlur(image.detach(), sigma);
        return region * blurred + (1 - region) * image.detach();
    }

    /// <summary>Separable Gaussian blur per channel, kernel 2⌈3σ⌉+1, reflect padding.</summary>
    public static Tensor GaussianBlur(Tensor image, double sigma)
    {
        int radius = Math.Max(1, (int)Math.Ceiling(3 * sigma));
        long channels = image.shape[1];
        var k = new float[2 * radius + 1];
        double sum = 0;
        for (int i = -radius; i <= radius; i++)
            sum += k[i + radius] = (float)Math.Exp(-0.5 * i * i / (sigma * sigma));
        for (int i = 0; i < k.Length; i++)
            k[i] = (float)(k[i] / sum);
        var kernel = tensor(k, device: image.device);
        var kx = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, k.Length);
        var ky = kernel.view(1, 1, -1, 1).expand(channels, 1, k.Length, 1);
        // Reflect padding needs pad < size; clamp for tiny inputs.
        int padX = (int)Math.Min(radius, image.shape[3] - 1), padY = (int)Math.Min(radius, image.shape[2] - 1);
        var x = F.pad(image, new long[] { padX, padX, padY, padY }, PaddingModes.Reflect);
        if (padX < radius || padY < radius)
            x = F.pad(x, new long[] { radius - padX, radius - padX, radius - padY, radius - padY }, PaddingModes.Replicate);
        x = F.conv2d(x, kx, groups: channels);
        return F.conv2d(x, ky, groups: channels);
    }
}
