using EcsNet.AllReduce.Wire;
using Grpc.Core;

namespace EcsNet.AllReduce.Ring;

/// <summary>
/// Serves this worker's ring successor: checks who it is and which generation it belongs to, then streams
/// the ring's outgoing chunks to it in order.
/// </summary>
internal sealed class RingPeerService(PeerServer server) : RingPeer.RingPeerBase
{
    public override async Task Pull(PullRequest request, IServerStreamWriter<RingChunk> responseStream, ServerCallContext context)
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
