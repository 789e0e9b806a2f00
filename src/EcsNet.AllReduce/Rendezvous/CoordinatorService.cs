using EcsNet.AllReduce.Wire;
using Grpc.Core;

namespace EcsNet.AllReduce.Rendezvous;

/// <summary>The gRPC face of <see cref="CoordinatorState"/>.</summary>
internal sealed class CoordinatorService(CoordinatorState state) : Coordinator.CoordinatorBase
{
    public override Task<RegisterReply> Register(RegisterRequest request, ServerCallContext context) =>
        Task.FromResult(state.Register(request));

    public override async Task Watch(WatchRequest request, IServerStreamWriter<Generation> responseStream, ServerCallContext context)
    {
        var updates = state.Watch(request.WorkerId);
        try
        {
            await foreach (var generation in updates.ReadAllAsync(context.CancellationToken))
                await responseStream.WriteAsync(generation, context.CancellationToken);
        }
        catch (Exception) when (context.CancellationToken.IsCancellationRequested)
        {
            // the worker went away; handled below
        }
        finally
        {
            if (context.CancellationToken.IsCancellationRequested)
                state.WatchEnded(request.WorkerId);
        }
    }

    public override Task<HeartbeatReply> Heartbeat(HeartbeatRequest request, ServerCallContext context) =>
        Task.FromResult(new HeartbeatReply { CurrentGeneration = state.Heartbeat(request.WorkerId) });

    public override async Task<BarrierReply> Barrier(BarrierRequest request, ServerCallContext context) =>
        new() { Generation = await state.BarrierAsync(request.WorkerId, request.Generation, request.Step, context.CancellationToken) };

    public override Task<FailureReply> ReportFailure(FailureReport request, ServerCallContext context) =>
        Task.FromResult(new FailureReply { CurrentGeneration = state.ReportFailure(request) });

    public override Task<LeaveReply> Leave(LeaveRequest request, ServerCallContext context)
    {
        state.Leave(request.WorkerId);
        return Task.FromResult(new LeaveReply());
    }

    public override Task<StatusReply> GetStatus(StatusRequest request, ServerCallContext context) =>
        Task.FromResult(state.Status());
}
