using EcsNet.Control.V1;
using EcsNet.Testing;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;

namespace EcsNet.Host.Tests.Control;

/// <summary>The control API end to end: a real gRPC client on loopback against an in-process host with the embedded cluster.</summary>
[Collection(ControlCollection.Name)]
public sealed class ControlApiTests
{
    [Fact]
    public async Task A_submitted_run_is_watched_to_completion_and_its_files_can_be_fetched()
    {
        using var dir = new TempDir();
        await using var host = await ControlHost.StartAsync(dir.File("runs"));
        var client = host.Client();

        var run = await client.SubmitExperimentAsync(new SubmitExperimentRequest { Experiment = ControlHost.TinyExperiment("tiny", epochs: 2) });
        Assert.StartsWith("tiny-", run.Id);
        Assert.Equal(RunState.Queued, run.State);

        var events = await ControlHost.WatchAsync(client, run.Id);
        var last = events[^1].Run;
        Assert.True(last.State == RunState.Completed, $"{last.State}: {last.Error}");
        // training progress came through: steps in order up to the last, with loss terms, a learning rate and a rate
        var steps = events.Where(e => e.Run.Stage == "cam" && e.Run.MaxSteps > 0 && e.Losses.Count > 0).ToList();
        Assert.NotEmpty(steps);
        Assert.Equal(steps.Select(e => e.Run.Step).Order(), steps.Select(e => e.Run.Step));
        Assert.Equal(4, steps[^1].Run.Step);
        Assert.All(steps, e => Assert.True(e.LearningRate > 0 && e.ImagesPerSecond > 0 && e.Epoch >= 1));
        var cam = Assert.Single(last.Stages);
        Assert.Equal("cam", cam.Stage);
        Assert.InRange(cam.Metrics["mIoU"], 0, 1);
        Assert.Equal(cam.Metrics["mIoU"], events[^1].Miou);

        var fetched = await client.GetRunAsync(new RunRef { Run = run.Id });
        Assert.Equal(RunState.Completed, fetched.State);
        Assert.Equal(run.Id, (await client.ListRunsAsync(new ListRunsRequest())).Runs.First().Id);

        using var call = client.GetArtifacts(new GetArtifactsRequest { Run = run.Id, Kinds = { "tables" } });
        var files = new Dictionary<string, MemoryStream>();
        await foreach (var chunk in call.ResponseStream.ReadAllAsync())
        {
            Assert.Equal("tables", chunk.Kind);
            var stream = files.TryGetValue(chunk.Path, out var s) ? s : files[chunk.Path] = new MemoryStream();
            Assert.Equal(stream.Length, chunk.Offset);
            chunk.Data.WriteTo(stream);
        }
        Assert.Contains("experiment.json", files.Keys);
        Assert.Contains("cam/manifest.json", files.Keys);
        Assert.Equal(File.ReadAllBytes(Path.Combine(run.RunDir, "cam", "manifest.json")), files["cam/manifest.json"].ToArray());
        Assert.DoesNotContain(files.Keys, k => k.StartsWith("data/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_paused_run_resumes_from_its_checkpoint_and_a_stopped_one_cannot()
    {
        using var dir = new TempDir();
        await using var host = await ControlHost.StartAsync(dir.File("runs"));
        var client = host.Client();
        var run = await client.SubmitExperimentAsync(new SubmitExperimentRequest { Experiment = ControlHost.TinyExperiment("pausing", epochs: 40) });

        await ControlHost.WatchAsync(client, run.Id, e => e.Run.Step >= 2);
        var pausing = await client.PauseRunAsync(new RunRef { Run = run.Id });
        Assert.Contains(pausing.State, new[] { RunState.Pausing, RunState.Paused });
        var paused = (await ControlHost.WatchAsync(client, run.Id))[^1].Run;
        Assert.Equal(RunState.Paused, paused.State);
        Assert.InRange(paused.Step, 2, 79);
        Assert.NotEmpty(Directory.EnumerateDirectories(Path.Combine(run.RunDir, "cam"), "step-*", SearchOption.AllDirectories));
        // a paused run cannot be paused again, or scaled
        var again = await Assert.ThrowsAsync<RpcException>(() => client.PauseRunAsync(new RunRef { Run = run.Id }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, again.StatusCode);

        var resumed = await client.ResumeRunAsync(new RunRef { Run = run.Id });
        Assert.Equal(1, resumed.Resumes);
        var firstAfter = (await ControlHost.WatchAsync(client, run.Id, e => e.Run.Step > 0 && e.Losses.Count > 0))[^1];
        Assert.True(firstAfter.Run.Step > paused.Step, $"resumed at step {firstAfter.Run.Step}, paused after {paused.Step}: it started over");

        var stopped = await client.StopRunAsync(new RunRef { Run = run.Id });
        Assert.Contains(stopped.State, new[] { RunState.Stopping, RunState.Stopped });
        Assert.Equal(RunState.Stopped, (await ControlHost.WatchAsync(client, run.Id))[^1].Run.State);
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.ResumeRunAsync(new RunRef { Run = run.Id }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("only a paused run", refused.Status.Detail);
    }

    [Fact]
    public async Task Scaling_a_running_training_from_one_to_two_workers_forms_a_new_generation()
    {
        using var dir = new TempDir();
        await using var host = await ControlHost.StartAsync(dir.File("runs"), workers: 2);
        var client = host.Client();
        var run = await client.SubmitExperimentAsync(new SubmitExperimentRequest { Experiment = ControlHost.TinyExperiment("scaling", epochs: 60, workers: 1) });
        var before = await ControlHost.WatchAsync(client, run.Id, e => e.Run.Step >= 2);
        Assert.Equal(1, before[^1].Run.Workers);

        await client.ScaleWorkersAsync(new ScaleWorkersRequest { Run = run.Id, Workers = 2 });
        var after = await ControlHost.WatchAsync(client, run.Id, e => e.Run.Workers == 2 && e.Losses.Count > 0);
        Assert.Equal(2, after[^1].Run.Workers);
        Assert.True(after[^1].Generation > before[^1].Generation);
        await client.StopRunAsync(new RunRef { Run = run.Id });
        Assert.Equal(RunState.Stopped, (await ControlHost.WatchAsync(client, run.Id))[^1].Run.State);
    }

    [Fact]
    public async Task Malformed_requests_name_each_bad_field()
    {
        using var dir = new TempDir();
        await using var host = await ControlHost.StartAsync(dir.File("runs"));
        var client = host.Client();
        var bad = ControlHost.TinyExperiment("x");
        bad.Stages.Add("paint");
        bad.Workers = 500;
        bad.Set.Add("cam.beta=2");
        var e = await Assert.ThrowsAsync<RpcException>(() => client.SubmitExperimentAsync(new SubmitExperimentRequest { Experiment = bad }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        var fields = e.GetRpcStatus()!.GetDetail<BadRequest>().FieldViolations.Select(v => v.Field).ToArray();
        Assert.Equal(new[] { "experiment.stages[1]", "experiment.workers", "experiment.hyperparameters.cam.beta" }, fields);

        var none = await Assert.ThrowsAsync<RpcException>(() => client.SubmitExperimentAsync(new SubmitExperimentRequest()).ResponseAsync);
        Assert.Equal("experiment", none.GetRpcStatus()!.GetDetail<BadRequest>().FieldViolations.Single().Field);
        var noRun = await Assert.ThrowsAsync<RpcException>(() => client.GetRunAsync(new RunRef()).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, noRun.StatusCode);
        var unknown = await Assert.ThrowsAsync<RpcException>(() => client.GetRunAsync(new RunRef { Run = "nope" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        var kinds = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = client.GetArtifacts(new GetArtifactsRequest { Run = "nope", Kinds = { "weights" } });
            await call.ResponseStream.MoveNext();
        });
        Assert.Equal("kinds[0]", kinds.GetRpcStatus()!.GetDetail<BadRequest>().FieldViolations.Single().Field);

        // a request over the size limit is refused before it is read
        var huge = ControlHost.TinyExperiment("huge");
        huge.Set.Add("cam.beta=0.5" + new string(' ', 2 << 20));
        var tooBig = await Assert.ThrowsAsync<RpcException>(() => client.SubmitExperimentAsync(new SubmitExperimentRequest { Experiment = huge }).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, tooBig.StatusCode);
    }

    [Fact]
    public async Task Every_method_refuses_a_missing_or_wrong_token_while_health_answers_and_reflection_lists_the_service()
    {
        using var dir = new TempDir();
        await using var host = await ControlHost.StartAsync(dir.File("runs"));
        foreach (var token in new[] { null, "wrong-token-0123456789", ControlHost.Token + "x" })
        {
            var client = host.Client(token);
            var calls = new Func<Task>[]
            {
                () => client.SubmitExperimentAsync(new SubmitExperimentRequest { Experiment = ControlHost.TinyExperiment("t") }).ResponseAsync,
                () => client.ListRunsAsync(new ListRunsRequest()).ResponseAsync,
                () => client.GetRunAsync(new RunRef { Run = "r" }).ResponseAsync,
                () => client.WatchRun(new RunRef { Run = "r" }).ResponseStream.MoveNext(),
                () => client.ScaleWorkersAsync(new ScaleWorkersRequest { Run = "r", Workers = 2 }).ResponseAsync,
                () => client.PauseRunAsync(new RunRef { Run = "r" }).ResponseAsync,
                () => client.ResumeRunAsync(new RunRef { Run = "r" }).ResponseAsync,
                () => client.StopRunAsync(new RunRef { Run = "r" }).ResponseAsync,
                () => client.GetArtifacts(new GetArtifactsRequest { Run = "r" }).ResponseStream.MoveNext(),
                () => client.GetStatusAsync(new GetStatusRequest()).ResponseAsync,
            };
            Assert.Equal(EcsNet.Control.V1.Control.Descriptor.Methods.Count, calls.Length);
            foreach (var call in calls)
                Assert.Equal(StatusCode.Unauthenticated, (await Assert.ThrowsAsync<RpcException>(call)).StatusCode);
        }

        var health = new Health.HealthClient(host.Channel());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving,
            (await health.CheckAsync(new HealthCheckRequest { Service = EcsNet.Control.V1.Control.Descriptor.FullName })).Status);

        var reflection = new ServerReflection.ServerReflectionClient(host.Channel().Intercept(h =>
        {
            h.Add("authorization", $"Bearer {ControlHost.Token}");
            return h;
        }));
        using var stream = reflection.ServerReflectionInfo();
        await stream.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await stream.RequestStream.CompleteAsync();
        Assert.True(await stream.ResponseStream.MoveNext());
        Assert.Contains("ecsnet.control.v1.Control", stream.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name));

        var status = await host.Client().GetStatusAsync(new GetStatusRequest());
        Assert.Equal(new[] { "coordinator", "preprocess", "worker" }, status.Members.Single().Roles);
        Assert.Equal(1, status.Workers);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ControlCollection
{
    public const string Name = "control hosts";
}
