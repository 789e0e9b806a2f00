using EcsNet.AllReduce.DataParallel;
using EcsNet.AllReduce.Ring;
using EcsNet.AllReduce.Topology;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Samples;
using EcsNet.Core.Stages;
using EcsNet.Core.Training;
using EcsNet.Data;

namespace EcsNet.Cluster.Training;

/// <summary>Training records of Core and AllReduce ↔ their protobuf messages (protos/cluster/training.proto), field for field.</summary>
public static class TrainingMessages
{
    public static TrainingJobSpec ToSpec(TrainingJob job) => new()
    {
        Stage = job.Stage, ExperimentFile = job.ExperimentFile, VocRoot = job.VocRoot, Split = job.Split, Voc = SampleMessages.ToSettings(job.Voc),
        RunDir = job.RunDir, CamRun = job.CamRun ?? "", LabelDir = job.LabelDir ?? "", MapsDir = job.MapsDir ?? "",
    };

    /// <exception cref="BadInputException">A required field is empty (named).</exception>
    public static TrainingJob ToJob(TrainingJobSpec? spec)
    {
        if (spec is null)
            throw new BadInputException("training job", "the message carries no job");
        static string Need(string value, string field) =>
            value.Length > 0 ? value : throw new BadInputException($"training job.{field}", "is empty");
        return new TrainingJob
        {
            Stage = Need(spec.Stage, "stage"), ExperimentFile = Need(spec.ExperimentFile, "experimentFile"), VocRoot = Need(spec.VocRoot, "vocRoot"),
            Split = Need(spec.Split, "split"), Voc = SampleMessages.ToOptions(spec.Voc), RunDir = Need(spec.RunDir, "runDir"),
            CamRun = Empty(spec.CamRun), LabelDir = Empty(spec.LabelDir), MapsDir = Empty(spec.MapsDir),
        };
    }

    public static DataParallelSettings ToSettings(DataParallelTraining o) => new()
    {
        BucketBytes = o.BucketBytes, Compression = o.Compression.ToString(), PeerTimeoutSeconds = o.PeerTimeout.TotalSeconds,
        GenerationTimeoutSeconds = o.GenerationTimeout.TotalSeconds, Transport = TransportNames.Name(o.Transport),
    };

    /// <exception cref="BadInputException">A value is out of range (named).</exception>
    public static DataParallelTraining ToOptions(DataParallelSettings? s)
    {
        if (s is null)
            return new DataParallelTraining();
        if (!Enum.TryParse<WireCompression>(s.Compression, ignoreCase: true, out var compression))
            throw new BadInputException("dataParallel.compression", $"'{s.Compression}' is not None or Float16");
        var transport = Transport.Auto;
        if (s.Transport.Length > 0 && !TransportNames.TryParse(s.Transport, out transport))
            throw new BadInputException("dataParallel.transport", $"'{s.Transport}' is not one of {TransportNames.List}");
        var o = new DataParallelTraining
        {
            BucketBytes = s.BucketBytes, Compression = compression, PeerTimeout = TimeSpan.FromSeconds(s.PeerTimeoutSeconds),
            GenerationTimeout = TimeSpan.FromSeconds(s.GenerationTimeoutSeconds), Transport = transport,
        };
        o.Validate();
        return o;
    }

    public static TrainingProgress ToMessage(string training, StepReport r)
    {
        var m = new TrainingProgress
        {
            Training = training, Step = r.Step, MaxSteps = r.MaxSteps, Epoch = r.Epoch, LearningRate = r.LearningRate,
            Generation = r.Generation, Rank = r.Rank, WorldSize = r.WorldSize, Seconds = r.Seconds,
        };
        m.Terms.AddRange(r.Terms.Select(t => new LossValue { Name = t.Name, Value = t.Value }));
        return m;
    }

    public static GenerationJoined ToMessage(string training, GenerationChange g) => new()
    {
        Training = training, Generation = g.Generation, Rank = g.Rank, WorldSize = g.WorldSize, ResumedStep = g.ResumedStep,
        StateFrom = g.StateFrom, AbandonedStep = g.AbandonedStep ?? -1, Reason = g.Reason,
    };

    public static GenerationChange ToChange(GenerationJoined m) =>
        new(m.Generation, m.Rank, m.WorldSize, m.ResumedStep, m.StateFrom, m.AbandonedStep >= 0 ? m.AbandonedStep : null, m.Reason);

    public static IReadOnlyList<(string Name, double Value)> Terms(IEnumerable<LossValue> values) => values.Select(v => (v.Name, v.Value)).ToArray();

    private static string? Empty(string value) => value.Length == 0 ? null : value;
}

/// <summary>How the members of a cluster training sync their gradients and follow membership (one per training).</summary>
public sealed record DataParallelTraining
{
    /// <summary>Gradient bucket cap (PyTorch DDP's default 25 MiB).</summary>
    public long BucketBytes { get; init; } = 25L << 20;

    /// <summary>Gradients on the wire: as they are, or rounded to float16.</summary>
    public WireCompression Compression { get; init; } = WireCompression.None;

    /// <summary>
    /// A silent peer fails a collective after this. Lost nodes are dropped by cluster membership within seconds,
    /// so this only has to exceed the longest step plus a checkpoint (a joiner waits one step for the others).
    /// </summary>
    public TimeSpan PeerTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>How long a member waits for the next generation that includes it.</summary>
    public TimeSpan GenerationTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Shared memory among the workers of a host and gRPC between hosts (auto), or one of them for all.</summary>
    public Transport Transport { get; init; } = Transport.Auto;

    public DataParallelOptions DataParallel => new() { BucketBytes = BucketBytes, Compression = Compression };

    public void Validate()
    {
        if (BucketBytes < 1)
            throw new BadInputException("dataParallel.bucketBytes", $"{BucketBytes} must be at least 1");
        if (PeerTimeout <= TimeSpan.Zero || GenerationTimeout <= TimeSpan.Zero)
            throw new BadInputException("dataParallel", $"peer timeout {PeerTimeout} and generation timeout {GenerationTimeout} must be positive");
    }
}
