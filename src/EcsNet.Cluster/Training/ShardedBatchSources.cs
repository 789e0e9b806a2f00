using Akka.Actor;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Samples;
using EcsNet.Core.Runtime;
using EcsNet.Core.Training;
using EcsNet.Data;
using EcsNet.Labels.Samples;
using SampleMessage = EcsNet.Cluster.Messages.SampleRequest;

namespace EcsNet.Cluster.Training;

/// <summary>How a worker pulls its samples from the sample entities.</summary>
/// <param name="DataShards">Entities per training set (each a fixed subset of the images).</param>
/// <param name="Timeout">A request not answered within this is sent again (its node may be gone).</param>
/// <param name="MaxTries">Sends of one request before training fails naming the image.</param>
public sealed record SampleSourceSettings(int DataShards, TimeSpan Timeout, int MaxTries);

/// <summary>
/// The batch sources of a worker: samples made by the sample entities on preprocess nodes (this one too, in the
/// embedded cluster). A source asks for the samples of the step it needs and of the next one (made while this
/// step trains), and no more.
/// </summary>
public sealed class ShardedBatchSources(IActorRef region, SampleSourceSettings settings) : IBatchSources
{
    public IBatchSource Open(SampleSetSpec spec)
    {
        // The worker counts the images itself (the step plan needs it); the entities open the same split with the
        // same options, so they see the same list.
        int count = VocDataset.Open(spec.VocRoot, spec.Split, spec.Voc with { VerifyImages = false }).Count;
        var message = SampleMessages.ToSettings(spec);
        return new ShardedBatchSource(region, settings, message, SampleMessages.Key(message), count);
    }
}

/// <summary>One training set's samples, pulled from its entities.</summary>
internal sealed class ShardedBatchSource(IActorRef region, SampleSourceSettings settings, SampleSetSettings set, string key, int count) : IBatchSource
{
    private readonly Dictionary<SampleMessage, Task<SampleReply>> inFlight = new();

    public int Count => count;

    public IReadOnlyList<TrainingSample> Take(IReadOnlyList<Core.Training.SampleRequest> now, IReadOnlyList<Core.Training.SampleRequest>? next, CancellationToken cancellationToken)
    {
        var wanted = now.Select(Message).ToArray();
        var ahead = (next ?? Array.Empty<Core.Training.SampleRequest>()).Select(Message).ToArray();
        // forget prefetches the plan no longer wants (the shard changed with a new generation)
        foreach (var stale in inFlight.Keys.Except(wanted).Except(ahead).ToList())
            inFlight.Remove(stale);
        foreach (var m in wanted.Concat(ahead))
            if (!inFlight.ContainsKey(m))
                inFlight[m] = Ask(m, cancellationToken);
        var samples = new TrainingSample[wanted.Length];
        for (int i = 0; i < wanted.Length; i++)
        {
            var reply = inFlight[wanted[i]].GetAwaiter().GetResult();
            inFlight.Remove(wanted[i]);
            if (reply.Error.Length > 0)
                throw reply.BadInput
                    ? new BadInputException($"training sample of image {reply.Index}", reply.Error)
                    : new InvalidOperationException($"training sample of image {reply.Index}: {reply.Error}");
            samples[i] = new TrainingSample(reply.Image.ToArray(), reply.Target.ToByteArray());
        }
        return samples;
    }

    private SampleMessage Message(Core.Training.SampleRequest r) =>
        new() { Entity = SampleMessages.Entity(key, r.Index, settings.DataShards), Set = set, Index = r.Index, Seed = r.Seed };

    private async Task<SampleReply> Ask(SampleMessage message, CancellationToken cancellationToken)
    {
        EcsNetMetrics.SampleRequestsInFlight.Add(1);
        try
        {
            return await AskWithRetries(message, cancellationToken);
        }
        finally
        {
            EcsNetMetrics.SampleRequestsInFlight.Add(-1);
        }
    }

    private async Task<SampleReply> AskWithRetries(SampleMessage message, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await region.Ask<SampleReply>(message, settings.Timeout, cancellationToken);
            }
            catch (AskTimeoutException) when (attempt < settings.MaxTries)
            {
                // the entity's node may have been lost: the region sends it to the shard's new home
            }
            catch (AskTimeoutException e)
            {
                throw new TimeoutException($"training sample of image {message.Index} (entity {message.Entity}) was not made after {attempt} tries of " +
                                           $"{settings.Timeout.TotalSeconds:0.#} s: are the preprocess nodes up?", e);
            }
        }
    }

    public void Dispose() => inFlight.Clear();
}
