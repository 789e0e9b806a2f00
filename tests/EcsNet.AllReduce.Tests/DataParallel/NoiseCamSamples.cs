using EcsNet.Labels.Samples;

namespace EcsNet.AllReduce.Tests.DataParallel;

/// <summary>32-px noise crops whose content depends only on (index, generator), with two labels each by the index.</summary>
internal sealed class NoiseCamSamples(int count) : ISampleSet
{
    private const int Crop = 32;

    public int Count => count;

    public string IdAt(int index) => $"img{index}";

    public TrainingSample Sample(int index, Random rng)
    {
        var img = new float[3 * Crop * Crop];
        for (var i = 0; i < img.Length; i++)
            img[i] = (float)(rng.NextDouble() - 0.5) + (index % 3) * 0.3f;
        var labels = new byte[20];
        labels[index % 20] = 1;
        labels[(index * 7 + 3) % 20] = 1;
        return new TrainingSample(img, labels);
    }
}
