using EcsNet.AllReduce.Wire;
using Grpc.Core;

namespace EcsNet.AllReduce.Ring;

/// <summary>
/// The ring's peer service as gRPC binds it, written by hand the way grpc-dotnet's generated bases are
/// (<see cref="BindServiceMethodAttribute"/> names <see cref="BindService"/>; grpc-dotnet then looks up the
/// override of <see cref="Pull"/> on the mapped type), so that the stream uses <see cref="RingWire.Pull"/>
/// and its frame marshaller instead of protobuf messages.
/// </summary>
[BindServiceMethod(typeof(RingPeerBase), nameof(BindService))]
internal abstract class RingPeerBase
{
    /// <summary>Registers Pull; grpc-dotnet calls it with a null service and resolves the handler per call.</summary>
    public static void BindService(ServiceBinderBase binder, RingPeerBase? service) =>
        binder.AddMethod(RingWire.Pull, service is null ? null : service.Pull);

    public abstract Task Pull(PullRequest request, IServerStreamWriter<RingFrame> responseStream, ServerCallContext context);
}

/// <summary>
/// Serves this worker's ring successor: checks who it is and which generation it belongs to, then streams
/// the ring's outgoing chunks to it in order.
/// </summary>
internal sealed class RingPeerService(PeerServer server) : RingPeerBase
{
    public override async Task Pull(PullRequest request, IServerStreamWriter<RingFrame> responseStream, ServerCallContext context)
    {
        var link = await server.LinkForAsync(request.Generation, context.CancellationToken);
        if (request.ReceiverRank != link.Successor.Rank)
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"rank {request.ReceiverRank} is not the ring successor of rank {link.Self.Rank} in generation {request.Generation} (expected rank {link.Successor.Rank})"));
        if (!link.TryClaim())
            throw new RpcException(new Status(StatusCode.AlreadyExists,
                $"a second worker claims rank {request.ReceiverRank} in generation {request.Generation}: rank {link.Self.Rank} already streams to rank {request.ReceiverRank}"));
        await link.Serve(responseStream, context.CancellationToken);
    }
}
