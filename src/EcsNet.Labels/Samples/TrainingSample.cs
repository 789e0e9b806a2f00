namespace EcsNet.Labels.Samples;

/// <summary>
/// One training sample as a training step consumes it: an augmented, normalised crop (CHW floats) and its
/// target as bytes — image-level labels (0/1 per foreground class) for the CAM network, a label map
/// (class or 255) for the segmentation network, a stride-8 affinity label grid for AffinityNet.
/// Plain arrays, no tensors: samples are made where no LibTorch is loaded (a preprocessing node) and may
/// cross the network.
/// </summary>
public sealed record TrainingSample(float[] Image, byte[] Target);
