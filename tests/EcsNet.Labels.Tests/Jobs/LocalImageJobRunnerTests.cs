using EcsNet.Data;
using EcsNet.Labels.Jobs;

namespace EcsNet.Labels.Tests.Jobs;

public sealed class LocalImageJobRunnerTests
{
    /// <summary>A job whose behaviour the test picks.</summary>
    private sealed record FakeJob(string ImageId, Func<ImageJobResult> Body) : IImageJob
    {
        public string OutputPath => "/out/" + ImageId;
        public void Validate() { }
        public ImageJobResult Run(CancellationToken cancellationToken = default) => Body();
    }

    private static FakeJob Ok(string id) => new(id, () => new ImageJobResult(id, "/out/" + id, 0.01));

    [Fact]
    public async Task ResultsComeInJobOrderAndProgressCountsEachJobOnce()
    {
        var jobs = Enumerable.Range(0, 20).Select(i => (IImageJob)Ok($"i{i}")).ToList();
        var seen = new System.Collections.Concurrent.ConcurrentBag<(int Done, int Total, string Id)>();
        var results = await new LocalImageJobRunner(3).RunAsync(jobs, (done, total, r) => seen.Add((done, total, r.ImageId)));
        Assert.Equal(jobs.Select(j => j.ImageId), results.Select(r => r.ImageId));
        Assert.All(results, r => Assert.Equal(LocalImageJobRunner.NodeName, r.Node));
        Assert.Equal(Enumerable.Range(1, 20), seen.Select(s => s.Done).Order());
        Assert.All(seen, s => Assert.Equal(20, s.Total));
        Assert.Equal(jobs.Select(j => j.ImageId).Order(), seen.Select(s => s.Id).Order());
    }

    [Fact]
    public async Task BadInputNamesTheImage()
    {
        var jobs = new IImageJob[] { Ok("a"), new FakeJob("b", () => throw new BadInputException("crf", "CAMs are 3x3 but the image is 4x4")) };
        var e = await Assert.ThrowsAsync<BadInputException>(() => new LocalImageJobRunner(1).RunAsync(jobs));
        Assert.Equal("image b: crf: CAMs are 3x3 but the image is 4x4", e.Message);
    }

    [Fact]
    public async Task OtherFailuresNameTheImageAndTheNode()
    {
        var jobs = new IImageJob[] { new FakeJob("c", () => throw new InvalidOperationException("boom")) };
        var e = await Assert.ThrowsAsync<ImageJobFailedException>(() => new LocalImageJobRunner().RunAsync(jobs));
        Assert.Equal("image c on local: InvalidOperationException: boom", e.Message);
        Assert.Equal("c", e.ImageId);
    }

    [Fact]
    public async Task CancellationStopsTheRun()
    {
        using var cts = new CancellationTokenSource();
        var jobs = Enumerable.Range(0, 50).Select(i => (IImageJob)new FakeJob($"i{i}", () =>
        {
            cts.Cancel();
            return new ImageJobResult($"i{i}", "/x", 0);
        })).ToList();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new LocalImageJobRunner(1).RunAsync(jobs, null, cts.Token));
    }
}
