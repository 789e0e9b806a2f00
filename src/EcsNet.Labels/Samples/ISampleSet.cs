namespace EcsNet.Labels.Samples;

/// <summary>
/// The training images of one stage as augmented samples of a fixed crop size. A sample is a pure function of
/// (index, the generator's seed): the caller seeds the generator per (run seed, step, position in the
/// global batch), so any process that makes the sample makes the same one.
/// </summary>
public interface ISampleSet
{
    int Count { get; }

    /// <summary>The image id of <paramref name="index"/> (for messages that name a bad sample).</summary>
    string IdAt(int index);

    /// <summary>The sample of image <paramref name="index"/>, augmented with draws from <paramref name="rng"/> in a fixed order.</summary>
    TrainingSample Sample(int index, Random rng);
}
