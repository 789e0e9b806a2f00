using Akka.Actor;
using Akka.Cluster.Sharding;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Samples;
using EcsNet.Cluster.Training;
using EcsNet.Data;
using EcsNet.Labels.Samples;
using EcsNet.Testing;
using SampleMessage = EcsNet.Cluster.Messages.SampleRequest;

namespace EcsNet.Cluster.Tests.Samples;

/// <summary>The sample entities and the workers' pull from them.</summary>
public sealed class SampleEntityTests(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(output: output), IDisposable
{
    private readonly TempDir dir = new();

    void IDisposable.Dispose()
    {
        dir.Dispose();
        base.Dispose();
    }

    private CamSampleSpec Spec()
    {
        var synth = SyntheticVoc.Generate(dir.File("voc"), new SynthOptions { TrainImages = 4, ValImages = 1, Size = 48, Seed = 2 });
        return new CamSampleSpec { VocRoot = synth.Root, Split = "train", Augment = new AugmentOptions { LongEdgeMin = 32, LongEdgeMax = 40, CropSize = 32 } };
    }

    [Fact]
    public void An_entity_makes_the_sample_a_process_would_make_and_names_bad_requests()
    {
        var spec = Spec();
        var settings = SampleMessages.ToSettings(spec);
        var key = SampleMessages.Key(settings);
        var entityId = SampleMessages.Entity(key, 1, 4);
        var parent = CreateTestProbe();
        var entity = parent.ChildActorOf(SampleEntity.PropsFor(entityId, "akka.actor.default-dispatcher", TimeSpan.FromMinutes(1)));

        entity.Tell(new SampleMessage { Entity = entityId, Set = settings, Index = 1, Seed = 77 }, TestActor);
        var reply = ExpectMsg<SampleReply>(TimeSpan.FromSeconds(20));
        Assert.Equal("", reply.Error);
        var local = spec.Open().Sample(1, new Random(77));
        Assert.Equal(local.Image, reply.Image.ToArray());
        Assert.Equal(local.Target, reply.Target.ToByteArray());

        entity.Tell(new SampleMessage { Entity = "someone-else/0", Set = settings, Index = 1, Seed = 1 }, TestActor);
        var wrong = ExpectMsg<SampleReply>();
        Assert.True(wrong.BadInput);
        Assert.Contains("reached entity", wrong.Error);
        entity.Tell(new SampleMessage { Entity = entityId, Set = settings, Index = 99, Seed = 1 }, TestActor);
        var outside = ExpectMsg<SampleReply>();
        Assert.True(outside.BadInput);
        Assert.Contains("outside the set of 4 images", outside.Error);
    }

    [Fact]
    public void A_set_that_cannot_be_opened_fails_every_request_naming_the_folder()
    {
        var settings = SampleMessages.ToSettings(new CamSampleSpec { VocRoot = dir.File("missing"), Split = "train", Augment = new AugmentOptions() });
        var entity = CreateTestProbe().ChildActorOf(SampleEntity.PropsFor("k/0", "akka.actor.default-dispatcher", TimeSpan.FromMinutes(1)));
        entity.Tell(new SampleMessage { Entity = "k/0", Set = settings, Index = 0, Seed = 1 }, TestActor);
        var reply = ExpectMsg<SampleReply>(TimeSpan.FromSeconds(10));
        Assert.True(reply.BadInput);
        Assert.Contains("missing", reply.Error);
    }

    [Fact]
    public void An_idle_entity_asks_its_shard_to_passivate_it()
    {
        var parent = CreateTestProbe();
        parent.ChildActorOf(SampleEntity.PropsFor("k/0", "akka.actor.default-dispatcher", TimeSpan.FromMilliseconds(300)));
        parent.ExpectMsg<Passivate>(TimeSpan.FromSeconds(5));
    }

    /// <summary>
    /// Credits: a worker's source asks for the samples of the step it needs and of the next one, never more, so a
    /// slow worker never makes work (or memory) pile up on the preprocess nodes.
    /// </summary>
    [Fact]
    public async Task A_source_asks_for_this_step_and_the_next_and_no_more()
    {
        var spec = Spec();
        var region = CreateTestProbe();
        using var source = new ShardedBatchSources(region.Ref, new SampleSourceSettings(4, TimeSpan.FromSeconds(20), 1)).Open(spec);
        Assert.Equal(4, source.Count);
        var step0 = new[] { new EcsNet.Core.Training.SampleRequest(0, 10), new EcsNet.Core.Training.SampleRequest(1, 11) };
        var step1 = new[] { new EcsNet.Core.Training.SampleRequest(2, 12), new EcsNet.Core.Training.SampleRequest(3, 13) };
        var step2 = new[] { new EcsNet.Core.Training.SampleRequest(1, 14), new EcsNet.Core.Training.SampleRequest(0, 15) };

        List<(SampleMessage Message, IActorRef From)> Asked(int count)
        {
            var asked = new List<(SampleMessage, IActorRef)>();
            for (int i = 0; i < count; i++)
                asked.Add((region.ExpectMsg<SampleMessage>(TimeSpan.FromSeconds(10)), region.Sender));
            region.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
            return asked;
        }
        void Answer(IEnumerable<(SampleMessage Message, IActorRef From)> asked)
        {
            foreach (var (m, from) in asked)
                from.Tell(new SampleReply { Index = m.Index, Seed = m.Seed, Image = { m.Seed }, Target = Google.Protobuf.ByteString.CopyFrom((byte)m.Index) });
        }

        var first = Task.Run(() => source.Take(step0, step1, CancellationToken.None));
        var asked = Asked(4);
        Assert.Equal(new[] { 10, 11, 12, 13 }, asked.Select(a => a.Message.Seed).Order());
        Answer(asked);
        Assert.Equal(new[] { 10f, 11f }, (await first).Select(s => s.Image[0]));

        // the next step was asked for already: only its successor goes out now
        var second = Task.Run(() => source.Take(step1, step2, CancellationToken.None));
        var more = Asked(2);
        Assert.Equal(new[] { 14, 15 }, more.Select(a => a.Message.Seed).Order());
        Answer(more);
        Assert.Equal(new[] { 12f, 13f }, (await second).Select(s => s.Image[0]));
    }
}
