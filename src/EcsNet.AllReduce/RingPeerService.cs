using System.Globalization;
using Grpc.Core;
using EcsNet.AllReduce.Wire;

namespace EcsNet.AllReduce;

/// <summary>
/// Serves the stream from this worker's ring predecessor: checks who it is and which generation it
/// belongs to, then hands every chunk to the local ring in arrival order.
/// </summary>
internal sealed class RingPeerService(PeerServer server) : RingPeer.RingPeerBase
{
    public override async Task<StreamReply> Stream(IAsyncStreamReader<RingChunk> requestStream, ServerCallContext context)
    {
        var generation = HeaderNumber(context, PeerServer.GenerationHeader);
        var sender = (int)HeaderNumber(context, PeerServer.RankHeader);
        var link = await server.LinkForAsync(generation, context.CancellationToken);
        if (sender != link.Predecessor.Rank)
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"rank {sender} is not the ring predecessor of rank {link.Self.Rank} in generation {generation} (expected rank {link.Predecessor.Rank})"));
        if (!link.TryClaim())
            throw new RpcException(new Status(StatusCode.AlreadyExists,
                $"a second stream claims rank {sender} in generation {generation}: rank {link.Self.Rank} already receives from rank {sender}"));

        using var both = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, link.Closing.Token);
        try
        {
            while (await requestStream.MoveNext(both.Token))
                await link.Chunks.Writer.WriteAsync(requestStream.Current, both.Token);
            link.Chunks.Writer.TryComplete();
            return new StreamReply();
        }
        catch (Exception) when (link.Closing.IsCancellationRequested)
        {
            link.Chunks.Writer.TryComplete();
            throw new RpcException(new Status(StatusCode.Aborted, link.AbortReason ?? $"rank {link.Self.Rank} closed its ring"));
        }
        catch (Exception e)
        {
            link.Chunks.Writer.TryComplete(new PeerFailedException(link.Predecessor.Rank, link.Predecessor.Address,
                $"stream from {link.Predecessor} broke: {e.Message}", e));
            throw;
        }
    }

    private static long HeaderNumber(ServerCallContext context, string key)
    {
        var text = context.RequestHeaders.GetValue(key);
        if (text is null || !long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"ring stream without a valid '{key}' header"));
        return value;
    }
}
