using System.Net;
using Akka.Actor;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Training;
using EcsNet.Core.Training;

namespace EcsNet.Cluster.Tests.Training;

/// <summary>The worker actor's protocol with the coordinator (a test probe plays the coordinator).</summary>
public sealed class TrainingWorkerTests : Akka.TestKit.Xunit2.TestKit
{
    private readonly ITestOutputHelper output;

    public TrainingWorkerTests(ITestOutputHelper output) : base(output: output) => this.output = output;

    private static readonly WorkerSettings Settings = new(IPAddress.Loopback, TimeSpan.FromMilliseconds(200), 1, LocalBatchSources.Instance);

    private static StartTraining Start(string training, string rendezvous) => new()
    {
        Run = "r", Training = training, Rendezvous = rendezvous,
        Job = new TrainingJobSpec { Stage = "cam", ExperimentFile = "/nowhere/experiment.json", VocRoot = "/nowhere", Split = "train", RunDir = "/nowhere/run" },
        Settings = new DataParallelSettings { BucketBytes = 1 << 20, Compression = "None", PeerTimeoutSeconds = 10, GenerationTimeoutSeconds = 5 },
    };

    [Fact]
    public void A_worker_introduces_itself_with_its_device_again_and_again()
    {
        var coordinator = CreateTestProbe();
        Sys.ActorOf(TrainingWorker.PropsFor("cuda:1", coordinator.Ref, Settings));
        for (int i = 0; i < 3; i++)
        {
            var hello = coordinator.ExpectMsg<WorkerHello>(TimeSpan.FromSeconds(5));
            Assert.Equal("cuda:1", hello.Device);
            Assert.Equal("", hello.Training);
        }
    }

    [Fact]
    public void A_worker_that_cannot_reach_the_rendezvous_says_so_and_a_second_training_is_refused_while_busy()
    {
        var coordinator = CreateTestProbe();
        var worker = Sys.ActorOf(TrainingWorker.PropsFor("cpu", coordinator.Ref, Settings));
        coordinator.ExpectMsg<WorkerHello>();
        // port 9 (discard) on loopback: nothing answers gRPC there
        worker.Tell(Start("r/cam/1", "http://127.0.0.1:9"), coordinator.Ref);
        worker.Tell(Start("r/seg/2", "http://127.0.0.1:9"), coordinator.Ref);
        var busy = coordinator.FishForMessage<TrainingEnded>(m => m.Training == "r/seg/2", TimeSpan.FromSeconds(5));
        Assert.Equal(TrainingEnded.Types.Outcome.Failed, busy.Outcome);
        Assert.Contains("busy with training r/cam/1", busy.Error);
        var ended = coordinator.FishForMessage<TrainingEnded>(m => m.Training == "r/cam/1", TimeSpan.FromSeconds(60));
        output.WriteLine($"{ended.Outcome}: {ended.Error}");
        Assert.NotEqual(TrainingEnded.Types.Outcome.Completed, ended.Outcome);
        Assert.NotEmpty(ended.Error);
        // idle again: says so at once
        coordinator.FishForMessage<WorkerHello>(h => h.Training == "", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task An_idle_worker_drains_at_once()
    {
        var coordinator = CreateTestProbe();
        var worker = Sys.ActorOf(TrainingWorker.PropsFor("cpu", coordinator.Ref, Settings));
        var draining = await worker.Ask<TrainingWorker.Draining>(TrainingWorker.LeaveAll.Instance, TimeSpan.FromSeconds(5));
        Assert.True(draining.Done.IsCompleted);
    }

    [Fact]
    public void A_worker_with_a_malformed_device_is_refused_naming_it()
    {
        var e = Assert.Throws<EcsNet.Data.BadInputException>(() => new EcsNet.Cluster.Hosting.EcsNetTrainingOptions { Devices = new[] { "gpu0" } }.Validate());
        Assert.Contains("EcsNet:Training:Devices:0", e.Message);
    }
}
