using Akka.Actor;
using EcsNet.Cluster.Messages;
using EcsNet.Control.Hosting;
using EcsNet.Control.Registry;
using EcsNet.Control.Runs;
using EcsNet.Control.V1;
using EcsNet.Data;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EcsNet.Control.Api;

/// <summary>
/// The gRPC control API (protos/control/v1/control.proto): requests are checked field by field, runs go through
/// the <see cref="RunManager"/>, and errors become status codes a client can act on — INVALID_ARGUMENT with a
/// google.rpc.BadRequest detail, NOT_FOUND, FAILED_PRECONDITION, UNAVAILABLE (docs/CONTROL.md, "Errors").
/// </summary>
public sealed class ControlService(RunManager runs, ActorSystem system, IOptions<ControlOptions> options,
    ILogger<ControlService> log) : V1.Control.ControlBase
{
    public override Task<Run> SubmitExperiment(SubmitExperimentRequest request, ServerCallContext context) =>
        Guard(() => runs.SubmitAsync(request.Experiment, context.CancellationToken));

    public override Task<ListRunsReply> ListRuns(ListRunsRequest request, ServerCallContext context) => Guard(async () =>
    {
        if (request.Limit is < 0 or > 1000)
            throw Invalid("limit", $"must lie in 0..1000, got {request.Limit}");
        for (int i = 0; i < request.States.Count; i++)
            if (!System.Enum.IsDefined(request.States[i]) || request.States[i] == RunState.Unspecified)
                throw Invalid($"states[{i}]", $"not a run state: {(int)request.States[i]}");
        var reply = new ListRunsReply();
        reply.Runs.AddRange(await runs.ListAsync(request.States.Select(RunMessages.FromProto).ToArray(), request.Limit, context.CancellationToken));
        return reply;
    });

    public override Task<Run> GetRun(RunRef request, ServerCallContext context) =>
        Guard(() => runs.GetAsync(RunId(request.Run), context.CancellationToken));

    public override Task WatchRun(RunRef request, IServerStreamWriter<RunEvent> responseStream, ServerCallContext context) => Guard(async () =>
    {
        await foreach (var e in runs.WatchAsync(RunId(request.Run), context.CancellationToken))
            await responseStream.WriteAsync(e, context.CancellationToken);
        return 0;
    });

    public override Task<Run> ScaleWorkers(ScaleWorkersRequest request, ServerCallContext context) =>
        Guard(() => runs.ScaleAsync(RunId(request.Run), request.Workers, context.CancellationToken));

    public override Task<Run> PauseRun(RunRef request, ServerCallContext context) =>
        Guard(() => runs.PauseAsync(RunId(request.Run), context.CancellationToken));

    public override Task<Run> ResumeRun(RunRef request, ServerCallContext context) =>
        Guard(() => runs.ResumeAsync(RunId(request.Run), context.CancellationToken));

    public override Task<Run> StopRun(RunRef request, ServerCallContext context) =>
        Guard(() => runs.StopAsync(RunId(request.Run), context.CancellationToken));

    public override Task GetArtifacts(GetArtifactsRequest request, IServerStreamWriter<ArtifactChunk> responseStream, ServerCallContext context) => Guard(async () =>
    {
        var id = RunId(request.Run);
        for (int i = 0; i < request.Kinds.Count; i++)
            if (!RunFolder.Kinds.Contains(request.Kinds[i]))
                throw Invalid($"kinds[{i}]", $"unknown kind '{request.Kinds[i]}'; the kinds are {string.Join(", ", RunFolder.Kinds)}");
        var runDir = await runs.RunDirAsync(id, context.CancellationToken);
        var kinds = request.Kinds.Count > 0 ? request.Kinds.ToHashSet() : RunFolder.Kinds.ToHashSet();
        if (kinds.Contains("report"))
            RunFolder.WriteReport(runDir);
        var buffer = new byte[options.Value.ArtifactChunkBytes];
        foreach (var artifact in RunFolder.Artifacts(runDir).Where(a => kinds.Contains(a.Kind)))
            await SendFileAsync(runDir, artifact, buffer, responseStream, context.CancellationToken);
        return 0;
    });

    private static async Task SendFileAsync(string runDir, ArtifactRecord artifact, byte[] buffer, IServerStreamWriter<ArtifactChunk> stream, CancellationToken ct)
    {
        await using var file = new FileStream(Path.Combine(runDir, artifact.Path), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        long size = file.Length, offset = 0;
        do
        {
            int n = await file.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, size - offset)), ct);
            await stream.WriteAsync(new ArtifactChunk { Path = artifact.Path, Kind = artifact.Kind, Offset = offset, Size = size, Data = ByteString.CopyFrom(buffer, 0, n) }, ct);
            offset += n;
            if (n == 0)
                break;
        }
        while (offset < size);
    }

    public override Task<ClusterStatus> GetStatus(GetStatusRequest request, ServerCallContext context) => Guard(async () =>
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        var state = cluster.State;
        var status = new ClusterStatus { Version = typeof(ControlService).Assembly.GetName().Version?.ToString() ?? "" };
        foreach (var m in state.Members.OrderBy(m => m.Address.ToString(), StringComparer.Ordinal))
        {
            var member = new ClusterMember { Address = m.Address.ToString(), Status = state.Unreachable.Contains(m) ? "unreachable" : m.Status.ToString() };
            member.Roles.AddRange(m.Roles.Order(StringComparer.Ordinal));
            status.Members.Add(member);
        }
        var info = await runs.Coordinator.Ask<CoordinatorInfo>(new GetCoordinatorInfo(), TimeSpan.FromSeconds(10), context.CancellationToken);
        status.Coordinator = info.Address;
        status.Workers = info.Workers;
        status.ActiveRuns.AddRange(runs.LiveRuns.Order(StringComparer.Ordinal));
        return status;
    });

    private static string RunId(string run) => run.Length == 0 ? throw Invalid("run", "is required") : run;

    private static InvalidRequestException Invalid(string field, string description) => new(new[] { new FieldProblem(field, description) });

    /// <summary>Runs a call and turns what went wrong into the status a client can act on.</summary>
    private async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (InvalidRequestException e)
        {
            throw ToRpc(e);
        }
        catch (BadInputException e)
        {
            throw ToRpc(Invalid(e.Subject, e.Problem));
        }
        catch (RunNotFoundException e)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.NotFound, e.Message));
        }
        catch (RunStateException e)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.FailedPrecondition, e.Message));
        }
        catch (AskTimeoutException e)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.Unavailable, $"the training coordinator did not answer: {e.Message}"));
        }
        catch (Exception e) when (e is not RpcException and not OperationCanceledException)
        {
            log.LogError(e, "control call failed");
            throw new RpcException(new Grpc.Core.Status(StatusCode.Internal, $"{e.GetType().Name}: {e.Message}"));
        }
    }

    /// <summary>INVALID_ARGUMENT with a google.rpc.BadRequest detail naming every bad field.</summary>
    public static RpcException ToRpc(InvalidRequestException e)
    {
        var bad = new BadRequest();
        bad.FieldViolations.AddRange(e.Problems.Select(p => new BadRequest.Types.FieldViolation { Field = p.Field, Description = p.Description }));
        return new Google.Rpc.Status { Code = (int)Code.InvalidArgument, Message = e.Message, Details = { Any.Pack(bad) } }.ToRpcException();
    }
}
