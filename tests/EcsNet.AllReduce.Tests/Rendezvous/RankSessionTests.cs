using System.Diagnostics;
using EcsNet.AllReduce.Rendezvous;
using static EcsNet.AllReduce.Tests.Rendezvous.LocalJob;

namespace EcsNet.AllReduce.Tests.Rendezvous;

/// <summary>
/// A rank session follows its generations: a lost member aborts the ring in use at once, a joiner aborts
/// nothing. Several sessions live in this one process, as several worker actors would.
/// </summary>
public sealed class RankSessionTests
{
    [Fact]
    public async Task A_member_dropped_by_the_host_aborts_the_others_collective_at_once_naming_it()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 3 });
        var sessions = await StartAsync(host, 3);
        try
        {
            var rings = await Task.WhenAll(sessions.Select(s => s.JoinRingAsync(timeout: Bound)));
            var announced = new List<GenerationInfo>();
            sessions[0].GenerationAnnounced += g => { lock (announced) announced.Add(g); };
            string? droppedEvent = null;
            sessions[2].Dropped += reason => droppedEvent = reason;
            var changed = sessions[0].Changed;

            // rank 2 is frozen: registered, heartbeating, its streams open, but it never takes part
            var blocked = new[] { rings[0].AllReduceAsync(new float[5000]), rings[1].AllReduceAsync(new float[5000]) };
            await Task.Delay(300);
            Assert.All(blocked, t => Assert.False(t.IsCompleted));

            var clock = Stopwatch.StartNew();
            Assert.True(host.DropWorker(sessions[2].WorkerId, "node unreachable (partitioned in a test)"));
            foreach (var collective in blocked)
            {
                var e = await Assert.ThrowsAsync<PeerFailedException>(() => collective.WaitAsync(Bound));
                Assert.Equal(2, e.Rank);
                Assert.Equal(sessions[2].Peer.Address, e.Address);
                Assert.Contains("partitioned in a test", e.Message);
                Assert.Contains("generation 1", e.Message);
            }
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed.TotalSeconds:0.0} s against a 120 s peer timeout");

            await changed.WaitAsync(Bound);
            lock (announced)
                Assert.Equal(2, Assert.Single(announced).Number);
            Assert.Contains("partitioned in a test", await WaitFor(() => droppedEvent));
            Assert.NotNull(rings[2].Failure);

            // the survivors go on in generation 2
            var next = await Task.WhenAll(sessions.Take(2).Select(s => s.JoinRingAsync(timeout: Bound)));
            Assert.All(next, r => Assert.Equal(2, r.WorldSize));
            var buffers = next.Select(r => new[] { r.Rank + 0.5f, 4f }).ToArray();
            await Task.WhenAll(next.Select((r, i) => r.AllReduceAsync(buffers[i]))).WaitAsync(Bound);
            Assert.All(buffers, b => Assert.Equal(new[] { 2f, 8f }, b));

            // the dropped rank's owner stops it; a second disposal (an `await using` after it) is harmless
            await sessions[2].DisposeAsync();
            Assert.Null(sessions[2].Ring);
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }

    [Fact]
    public async Task A_joiner_does_not_disturb_a_collective_in_flight()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 2 });
        var sessions = await StartAsync(host, 2);
        await using var joiner = await Task.Run(async () =>
        {
            var rings = await Task.WhenAll(sessions.Select(s => s.JoinRingAsync(timeout: Bound)));
            var buffers = new[] { new[] { 1f, 2f }, new[] { 3f, 4f } };
            // rank 0 is inside a collective, waiting for rank 1, when a third worker joins
            var inFlight = rings[0].AllReduceAsync(buffers[0]);
            var third = await StartAsync(host);
            await WaitFor(() => sessions.All(s => s.Latest?.Number == 2) ? "" : null);
            Assert.All(rings, r => Assert.Null(r.Failure));

            await Task.WhenAll(inFlight, rings[1].AllReduceAsync(buffers[1])).WaitAsync(Bound);
            Assert.All(buffers, b => Assert.Equal(new[] { 4f, 6f }, b));
            return third;
        });
        try
        {
            var grown = await Task.WhenAll(sessions.Append(joiner).Select(s => s.JoinRingAsync(timeout: Bound)));
            Assert.Equal(new[] { 0, 1, 2 }, grown.Select(r => r.Rank));
            var buffers = grown.Select(r => new[] { r.Rank + 1f }).ToArray();
            await Task.WhenAll(grown.Select((r, i) => r.AllReduceAsync(buffers[i]))).WaitAsync(Bound);
            Assert.All(buffers, b => Assert.Equal(6f, b[0]));
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }
}
