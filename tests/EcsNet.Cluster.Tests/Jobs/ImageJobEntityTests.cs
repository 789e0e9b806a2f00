using Akka.Actor;
using Akka.Cluster.Sharding;
using EcsNet.Cluster.Hosting;
using EcsNet.Cluster.Jobs;
using EcsNet.Cluster.Messages;
using EcsNet.Labels.Jobs;

namespace EcsNet.Cluster.Tests.Jobs;

/// <summary>One job entity on its own (a child of a test probe standing in for its shard).</summary>
public sealed class ImageJobEntityTests : Akka.TestKit.Xunit2.TestKit
{
    private const string Config = $$"""
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp.hostname = 127.0.0.1
        akka.remote.dot-netty.tcp.port = 0
        {{EcsNetClusterHosting.JobDispatcher}} {
          type = ForkJoinDispatcher
          throughput = 1
          dedicated-thread-pool.thread-count = 2
        }
        """;

    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    public ImageJobEntityTests(ITestOutputHelper output) : base(Config, output)
    {
    }

    private static ImageJobEntitySettings Settings(double idleSeconds = 60) =>
        new(EcsNetClusterHosting.JobDispatcher, TimeSpan.FromSeconds(idleSeconds));

    private string Node => Akka.Cluster.Cluster.Get(Sys).SelfAddress.ToString();

    private IActorRef Entity(string id, ImageJobEntitySettings? settings = null, Akka.TestKit.TestProbe? shard = null) =>
        (shard ?? CreateTestProbe()).ChildActorOf(ImageJobEntity.PropsFor(id, settings ?? Settings()));

    [Fact]
    public void EachKindOfRequestIsAcceptedThenDoneWritingWhatTheJobWritesInProcess()
    {
        using var data = JobData.Create(1);
        var id = data.Ids[0];
        var jobs = new IImageJob[] { data.CrfJob(id, "crf"), data.MapsJob(id, "maps"), data.WalkJob(id, "rw") };
        foreach (var job in jobs)
        {
            var entity = Entity(id);
            entity.Tell(JobMessages.ToMessage(job, attempt: 1));
            var accepted = ExpectMsg<JobAccepted>();
            Assert.Equal((id, 1, Node), (accepted.ImageId, accepted.Attempt, accepted.Node));
            var done = ExpectMsg<JobDone>(Long);
            Assert.Equal((id, 1, Node, job.OutputPath), (done.ImageId, done.Attempt, done.Node, done.OutputPath));
            Assert.True(done.Seconds > 0);
            var written = File.ReadAllBytes(job.OutputPath);
            var local = job switch
            {
                CrfLabelJob j => j with { OutputPath = j.OutputPath + ".local.png" },
                AffinityMapsJob j => j with { OutputPath = j.OutputPath + ".local.npz" },
                PropagationJob j => (IImageJob)(j with { OutputPath = j.OutputPath + ".local.png" }),
                _ => throw new InvalidOperationException(),
            };
            local.Run();
            Assert.Equal(File.ReadAllBytes(local.OutputPath), written);
        }
    }

    [Fact]
    public void TheSameJobSentAgainWhileItRunsJoinsThatRun()
    {
        using var data = JobData.Create(1, size: 128);
        var id = data.Ids[0];
        var job = data.CrfJob(id, "crf", JobData.Crf with { Iterations = 40 });
        var entity = Entity(id);
        entity.Tell(JobMessages.ToMessage(job, 1));
        entity.Tell(JobMessages.ToMessage(job, 2));
        ExpectMsg<JobAccepted>(a => a.Attempt == 1);
        ExpectMsg<JobAccepted>(a => a.Attempt == 2);
        var first = ExpectMsg<JobDone>(Long);
        var second = ExpectMsg<JobDone>(Long);
        Assert.Equal(new[] { 1, 2 }, new[] { first.Attempt, second.Attempt }.Order());
        // one run answered both: the same measured time
        Assert.Equal(first.Seconds, second.Seconds);
    }

    [Fact]
    public void BadInputIsAnsweredWithTheReasonAndNotRetried()
    {
        using var data = JobData.Create(1);
        var id = data.Ids[0];
        File.Delete(Path.Combine(data.CamDir, id + ".npy"));
        var entity = Entity(id);
        entity.Tell(JobMessages.ToMessage(data.CrfJob(id, "crf"), 1));
        ExpectMsg<JobAccepted>();
        var failed = ExpectMsg<JobFailed>(Long);
        Assert.Equal(JobFailed.Types.Reason.BadInput, failed.Reason);
        Assert.Contains($"{id}.npy: CAM file is missing", failed.Message);
        Assert.Equal(Node, failed.Node);
    }

    [Fact]
    public void MalformedRequestsAreRefusedNamingTheField()
    {
        var entity = Entity("img_a");
        entity.Tell(new CrfLabelJobRequest { ImageId = "img_b", Attempt = 1, ImagePath = "/a.jpg", CamDir = "/c", OutputPath = "/o.png", BackgroundThreshold = 0.2 });
        var wrongEntity = ExpectMsg<JobFailed>();
        Assert.Equal(JobFailed.Types.Reason.BadInput, wrongEntity.Reason);
        Assert.Contains("for image 'img_b' reached the entity of image 'img_a'", wrongEntity.Message);

        entity.Tell(new CrfLabelJobRequest { ImageId = "img_a", Attempt = 1, ImagePath = "/a.jpg", CamDir = "/c", OutputPath = "/o.png", BackgroundThreshold = 0.2 });
        Assert.Equal("crf job for image 'img_a': CRF options are missing", ExpectMsg<JobFailed>().Message);

        entity.Tell(new PropagationJobRequest { ImageId = "img_a", Attempt = 1, FeaturesPath = "/f.npy", CamDir = "/c", OutputPath = "/o.png", Walk = new RandomWalkSettings() });
        Assert.StartsWith("propagation job for image 'img_a': image size 0x0 is empty", ExpectMsg<JobFailed>().Message);
    }

    [Fact]
    public void AnIdleEntityAsksItsShardToPassivateIt()
    {
        using var data = JobData.Create(1);
        var id = data.Ids[0];
        var shard = CreateTestProbe();
        var entity = Entity(id, Settings(idleSeconds: 0.5), shard);
        Watch(entity);
        entity.Tell(JobMessages.ToMessage(data.CrfJob(id, "crf"), 1));
        ExpectMsg<JobAccepted>();
        ExpectMsg<JobDone>(Long);
        var passivate = shard.ExpectMsg<Passivate>(TimeSpan.FromSeconds(10));
        Assert.Same(FinishAndStop.Instance, passivate.StopMessage);
        // the shard answers with the stop message; an idle entity stops at once
        entity.Tell(passivate.StopMessage);
        ExpectTerminated(entity);
    }

    [Fact]
    public void OnHandOffTheRunningJobFinishesAndQueuedJobsAreInterrupted()
    {
        using var data = JobData.Create(1, size: 192);
        var id = data.Ids[0];
        var entity = Entity(id);
        Watch(entity);
        var slow = data.CrfJob(id, "crf", JobData.Crf with { Iterations = 800 });
        var other = data.CrfJob(id, "crf-other");
        entity.Tell(JobMessages.ToMessage(slow, 1));
        ExpectMsg<JobAccepted>();
        entity.Tell(JobMessages.ToMessage(other, 1));
        ExpectMsg<JobAccepted>();
        Thread.Sleep(300); // a free job thread has picked the slow job (seconds long) up by now
        entity.Tell(FinishAndStop.Instance);
        var done = ExpectMsg<JobDone>(Long);
        Assert.Equal(slow.OutputPath, done.OutputPath);
        var interrupted = ExpectMsg<JobFailed>();
        Assert.Equal(JobFailed.Types.Reason.Interrupted, interrupted.Reason);
        ExpectTerminated(entity);
        Assert.True(File.Exists(slow.OutputPath));
        Assert.False(File.Exists(other.OutputPath));
    }

    [Fact]
    public void OnHandOffAJobStillWaitingForAThreadIsGivenBack()
    {
        using var data = JobData.Create(3, size: 192);
        var slow = JobData.Crf with { Iterations = 800 };
        // two slow jobs hold both threads of the job dispatcher; the third waits for one
        var busy = data.Ids.Take(2).Select(id => (Entity(id), CreateTestProbe(), data.CrfJob(id, "crf", slow))).ToList();
        foreach (var (entity, probe, job) in busy)
        {
            entity.Tell(JobMessages.ToMessage(job, 1), probe.Ref);
            probe.ExpectMsg<JobAccepted>();
        }
        var waiting = Entity(data.Ids[2]);
        Watch(waiting);
        waiting.Tell(JobMessages.ToMessage(data.CrfJob(data.Ids[2], "crf"), 1));
        ExpectMsg<JobAccepted>();
        waiting.Tell(FinishAndStop.Instance);
        var failed = ExpectMsg<JobFailed>(Long);
        Assert.Equal(JobFailed.Types.Reason.Interrupted, failed.Reason);
        Assert.Contains("the job had not started", failed.Message);
        ExpectTerminated(waiting, Long);
        Assert.False(File.Exists(data.Out("crf", data.Ids[2] + ".png")));
        foreach (var (_, probe, _) in busy)
            probe.ExpectMsg<JobDone>(Long);
    }

    [Fact]
    public void AnEntityStoppedMidJobTellsItsWaitersAtOnce()
    {
        using var data = JobData.Create(1, size: 128);
        var id = data.Ids[0];
        var entity = Entity(id);
        entity.Tell(JobMessages.ToMessage(data.CrfJob(id, "crf", JobData.Crf with { Iterations = 40 }), 3));
        ExpectMsg<JobAccepted>();
        entity.Tell(PoisonPill.Instance);
        var failed = ExpectMsg<JobFailed>();
        Assert.Equal((JobFailed.Types.Reason.Interrupted, 3), (failed.Reason, failed.Attempt));
        Assert.Contains("stopped before the job finished", failed.Message);
    }
}
