using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using EcsNet.Cluster.Messages;
using EcsNet.Core.Runtime;
using EcsNet.Data;
using EcsNet.Labels.Samples;

namespace EcsNet.Cluster.Samples;

/// <summary>
/// The sharded entity of one data shard of one training set (entity id "&lt;set key&gt;/&lt;shard&gt;": a fixed subset
/// of the images). It opens the set when first asked, then makes each requested sample — decode (cached for small
/// sets), augment, normalise — and replies with it. Workers pull: an entity makes nothing it was not asked for, and
/// a worker asks for at most its next two steps, so a slow worker never makes memory grow anywhere.
/// It runs on the CPU-work dispatcher (its props say so), one request at a time, and passivates when idle.
/// </summary>
public sealed class SampleEntity : ReceiveActor
{
    private readonly string entityId;
    private readonly ILoggingAdapter log = Context.GetLogger();
    private ISampleSet? set;
    private SampleSetSettings? opened;
    private string? openError;

    public SampleEntity(string entityId, TimeSpan idleTimeout)
    {
        this.entityId = entityId;
        Receive<SampleRequest>(Make);
        Receive<ReceiveTimeout>(_ => Context.Parent.Tell(new Passivate(PoisonPill.Instance)));
        Context.SetReceiveTimeout(idleTimeout);
    }

    public static Props PropsFor(string entityId, string dispatcher, TimeSpan idleTimeout) =>
        Props.Create(() => new SampleEntity(entityId, idleTimeout)).WithDispatcher(dispatcher);

    private void Make(SampleRequest request)
    {
        var reply = new SampleReply { Index = request.Index, Seed = request.Seed };
        try
        {
            if (request.Entity != entityId)
                throw new BadInputException("sample request", $"a request for entity '{request.Entity}' reached entity '{entityId}'");
            var samples = Open(request.Set);
            if (request.Index < 0 || request.Index >= samples.Count)
                throw new BadInputException("sample request", $"image index {request.Index} is outside the set of {samples.Count} images");
            var sample = samples.Sample(request.Index, new Random(request.Seed));
            reply.Image.AddRange(sample.Image);
            reply.Target = Google.Protobuf.ByteString.CopyFrom(sample.Target);
            EcsNetMetrics.SamplesMade.Add(1);
        }
        catch (BadInputException e)
        {
            reply.Error = e.Message;
            reply.BadInput = true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            log.Warning("sample entity {0}: image {1}: {2}", entityId, request.Index, e);
            reply.Error = $"{e.GetType().Name}: {e.Message}";
        }
        if (reply.Error.Length > 0)
            EcsNetMetrics.SampleErrors.Add(1);
        Sender.Tell(reply);
    }

    /// <summary>The set of this entity (opened once; a set that failed to open fails every request the same way).</summary>
    private ISampleSet Open(SampleSetSettings settings)
    {
        if (opened is not null && !opened.Equals(settings))
            throw new BadInputException("sample request", $"entity '{entityId}' serves another sample set (its key collides)");
        if (openError is not null)
            throw new BadInputException("sample set", openError);
        if (set is not null)
            return set;
        opened = settings;
        try
        {
            set = SampleMessages.ToSpec(settings).Open();
            return set;
        }
        catch (BadInputException e)
        {
            openError = e.Message;
            throw;
        }
    }
}

/// <summary>Registry key of the training samples' shard region (or proxy).</summary>
public sealed class SampleRegion;

/// <summary>Entity id = the request's entity field ("&lt;set key&gt;/&lt;data shard&gt;").</summary>
public sealed class SampleExtractor(int shards) : HashCodeMessageExtractor(shards)
{
    public const string TypeName = "samples";

    public override string? EntityId(object message) => message is SampleRequest { Entity.Length: > 0 } r ? r.Entity : null;
}
