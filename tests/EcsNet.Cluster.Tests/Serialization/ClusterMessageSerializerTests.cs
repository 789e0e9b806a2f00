using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Hosting;
using EcsNet.Cluster.Hosting;
using EcsNet.Cluster.Jobs;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Serialization;
using EcsNet.Labels.Crf;
using EcsNet.Labels.Jobs;
using EcsNet.Labels.Propagation;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EcsNet.Cluster.Tests.Serialization;

public sealed class ClusterMessageSerializerTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly DenseCrfSettings Crf = JobMessages.ToSettings(new DenseCrfOptions { Iterations = 7, BilateralSxy = 20, MaxDegreeOfParallelism = 1 });

    /// <summary>One message of every type with every field set to something other than its default.</summary>
    private static readonly IMessage[] Samples =
    {
        Crf,
        JobMessages.ToSettings(new AffinityLabelOptions { AlphaLow = 3, AlphaHigh = 30, Stride = 4, NoScoreThreshold = 1e-4f }),
        JobMessages.ToSettings(new RandomWalkOptions { Beta = 6, LogT = 5, Radius = 3, Alpha = 12, Stride = 4, Threads = 2 }),
        new CrfLabelJobRequest { ImageId = "2007_000032", Attempt = 2, ImagePath = "/data/a.jpg", CamDir = "/run/cam", OutputPath = "/run/crf/a.png", BackgroundThreshold = 0.15, Crf = Crf },
        new AffinityMapsJobRequest
        {
            ImageId = "2007_000033", Attempt = 1, ImagePath = "/data/b.jpg", CamDir = "/run/cam", OutputPath = "/run/aff/maps/b.npz",
            Labels = JobMessages.ToSettings(new AffinityLabelOptions()), Crf = Crf,
        },
        new PropagationJobRequest
        {
            ImageId = "2007_000039", Attempt = 3, FeaturesPath = "/run/rw/features/c.npy", CamDir = "/run/cam", Height = 375, Width = 500,
            OutputPath = "/run/rw/labels/c.png", Walk = JobMessages.ToSettings(new RandomWalkOptions()),
        },
        new JobAccepted { ImageId = "x", Attempt = 4, Node = "akka.tcp://ecsnet@10.0.0.7:4053" },
        new JobDone { ImageId = "x", Attempt = 5, Node = "akka.tcp://ecsnet@10.0.0.7:4053", OutputPath = "/run/crf/x.png", Seconds = 1.25 },
        new JobFailed { ImageId = "x", Attempt = 6, Node = "akka.tcp://ecsnet@10.0.0.7:4053", Reason = JobFailed.Types.Reason.Interrupted, Message = "image x: stopped" },
    };

    public ClusterMessageSerializerTests(ITestOutputHelper output) : base(output: output)
    {
    }

    [Fact]
    public void EveryMessageRoundTripsUnderItsDescriptorName()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var samples = Samples.Concat(TrainingMessageSamples.All).ToArray();
        Assert.Equal(ClusterMessageSerializer.BoundTypes.OrderBy(t => t.Name), samples.Select(s => s.GetType()).OrderBy(t => t.Name));
        foreach (var message in samples)
        {
            var manifest = serializer.Manifest(message);
            Assert.Equal(message.Descriptor.FullName, manifest);
            Assert.StartsWith("ecsnet.cluster.", manifest);
            var back = serializer.FromBinary(serializer.ToBinary(message), manifest);
            Assert.Equal(message, back);
            if (message.Descriptor.Fields.InDeclarationOrder().Count > 0)   // a request without fields is its empty message
                Assert.NotEqual(Activator.CreateInstance(message.GetType()), back);
        }
        Assert.True(ClusterMessageSerializer.Id >= 100);
    }

    [Fact]
    public void JobsSurviveTheTripThroughTheirMessages()
    {
        var crf = new DenseCrfOptions { Iterations = 5, GaussianSxy = 1, BilateralSxy = 20, MaxDegreeOfParallelism = 1, ReuseSmoothnessKernel = false };
        var jobs = new IImageJob[]
        {
            new CrfLabelJob("a", "/d/a.jpg", "/r/cam", "/r/crf/a.png", 0.1, crf),
            new AffinityMapsJob("b", "/d/b.jpg", "/r/cam", "/r/aff/b.npz", new AffinityLabelOptions { AlphaLow = 2, AlphaHigh = 16 }, crf),
            new PropagationJob("c", "/r/rw/c.npy", "/r/cam", 96, 128, "/r/rw/c.png", new RandomWalkOptions { LogT = 6, Threads = 1 }),
        };
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        foreach (var job in jobs)
        {
            var message = JobMessages.ToMessage(job, attempt: 2);
            var back = (IMessage)serializer.FromBinary(serializer.ToBinary(message), serializer.Manifest(message));
            Assert.Equal(job, JobMessages.ToJob(back));
            Assert.Equal((job.ImageId, 2), JobMessages.Key(back));
        }
    }

    [Fact]
    public void AMessageWithoutItsOptionsMakesAJobThatNamesTheMissingField()
    {
        var job = JobMessages.ToJob(new CrfLabelJobRequest { ImageId = "a", ImagePath = "/a.jpg", CamDir = "/c", OutputPath = "/o.png", BackgroundThreshold = 0.2 });
        var e = Assert.Throws<EcsNet.Data.BadInputException>(job.Validate);
        Assert.Equal("crf job for image 'a': CRF options are missing", e.Message);
    }

    [Fact]
    public void UnknownManifestsMalformedBytesAndForeignTypesAreRefusedByName()
    {
        var serializer = new ClusterMessageSerializer((ExtendedActorSystem)Sys);
        var unknown = Assert.Throws<SerializationException>(() => serializer.FromBinary(new byte[] { 8, 1 }, "ecsnet.cluster.Nope"));
        Assert.Contains("unknown message 'ecsnet.cluster.Nope'", unknown.Message);
        var malformed = Assert.Throws<SerializationException>(() => serializer.FromBinary(new byte[] { 0x0a, 0x7f, 1 }, JobDone.Descriptor.FullName));
        Assert.Contains("malformed 'ecsnet.cluster.JobDone'", malformed.Message);
        var foreign = Assert.Throws<SerializationException>(() => serializer.ToBinary(new NotAClusterMessage("x")));
        Assert.Contains(nameof(NotAClusterMessage), foreign.Message);
    }

    [Fact]
    public async Task ANodeBindsTheSerializerAndRefusesUnboundTypes()
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddAkka("ecsnet", (akka, _) => akka.WithEcsNetSerialization());
        using var host = builder.Build();
        await host.StartAsync();
        var serialization = host.Services.GetRequiredService<ActorSystem>().Serialization;
        foreach (var type in ClusterMessageSerializer.BoundTypes)
            Assert.IsType<ClusterMessageSerializer>(serialization.FindSerializerForType(type));
        // strict serialization: no silent JSON for a type nobody bound
        var e = Assert.ThrowsAny<SerializationException>(() => serialization.FindSerializerForType(typeof(NotAClusterMessage)));
        Assert.Contains(nameof(NotAClusterMessage), e.Message);
        await host.StopAsync();
    }

    private sealed record NotAClusterMessage(string Text);
}
