using System.Diagnostics;
using EcsNet.AllReduce.DataParallel;
using EcsNet.AllReduce.Rendezvous;
using EcsNet.Core.Training;
using static EcsNet.AllReduce.Tests.Rendezvous.LocalJob;

namespace EcsNet.AllReduce.Tests.DataParallel;

/// <summary>
/// Elastic data-parallel training over rank sessions in this process: members join, leave and are lost between
/// or during steps, and the others go on from their in-memory weights without skipping or repeating a step.
/// </summary>
[Collection(TorchGlobalRng.Name)]
public sealed class ElasticTrainingGroupTests
{
    private const int Steps = 30;

    /// <summary>The loops below train for 30 steps; far longer than they take, only there to stop a hang.</summary>
    private static readonly TimeSpan LoopBound = TimeSpan.FromSeconds(90);

    private static Task<ElasticTrainingGroup[]> JoinAll(IEnumerable<RankSession> sessions, TimeSpan? timeout = null) =>
        Task.WhenAll(sessions.Select(s => ElasticTrainingGroup.JoinAsync(s, new DataParallelOptions { BucketBytes = 1024 }, timeout ?? Bound)));

    private static void AssertSameWeights(float[][] expected, ElasticLoop loop, float tolerance)
    {
        var actual = ElasticLoop.Weights(loop.Model);
        Assert.Equal(expected.Length, actual.Length);
        for (var p = 0; p < expected.Length; p++)
            for (var i = 0; i < expected[p].Length; i++)
                Assert.True(Math.Abs(expected[p][i] - actual[p][i]) <= tolerance,
                    $"parameter {p}[{i}] of rank {loop.Steps.LastOrDefault()?.Rank}: {actual[p][i]} vs {expected[p][i]}");
    }

    [Fact]
    public async Task A_joiner_makes_the_members_switch_after_their_current_step_to_a_world_of_three()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 2 });
        var sessions = new List<RankSession>(await StartAsync(host, 2));
        try
        {
            var groups = await JoinAll(sessions);
            Assert.All(groups, g => Assert.False(g.ChangePending));

            // both members hold at step 10 until they see the joiner's generation, so the switch comes after step 11
            var atTen = new CountdownEvent(2);
            void Hold(ElasticLoop loop)
            {
                if (loop.Step != 10)
                    return;
                atTen.Signal();
                if (!SpinWait.SpinUntil(() => loop.Group.ChangePending, Bound))
                    throw new TimeoutException("the joiner's generation never reached this member");
            }
            var loops = groups.Select(g => ElasticLoop.Start(g, Steps, hasState: true, Hold)).ToList();
            Assert.True(await Task.Run(() => atTen.Wait(Bound)));

            sessions.Add(await StartAsync(host));
            var joiner = await ElasticTrainingGroup.JoinAsync(sessions[2], new DataParallelOptions { BucketBytes = 1024 }, Bound);
            Assert.Equal(2, joiner.Generation);
            Assert.Equal(2, joiner.Rank);
            loops.Add(ElasticLoop.Start(joiner, Steps, hasState: false));
            var done = await Task.WhenAll(loops).WaitAsync(LoopBound);

            foreach (var (loop, rank) in done.Take(2).Select((l, r) => (l, r)))
            {
                Assert.Empty(loop.Failures);
                Assert.Equal(Enumerable.Range(1, Steps).Select(s => (long)s), loop.Steps.Select(s => s.Step));
                Assert.All(loop.Steps.Take(11), s => Assert.Equal((1L, rank, 2), (s.Generation, s.Rank, s.WorldSize)));
                Assert.Equal(new[] { 11L }, loop.Steps.Where(s => s.Switching).Select(s => s.Step));
                Assert.All(loop.Steps.Skip(11), s => Assert.Equal((2L, rank, 3), (s.Generation, s.Rank, s.WorldSize)));
            }
            var third = done[2];
            Assert.Empty(third.Failures);
            Assert.Equal(Enumerable.Range(12, Steps - 11).Select(s => (long)s), third.Steps.Select(s => s.Step));
            Assert.All(third.Steps, s => Assert.Equal((2L, 2, 3), (s.Generation, s.Rank, s.WorldSize)));

            // every replica applied the same 30 full-batch steps: bit-identical, and the one-process result
            var first = ElasticLoop.Weights(done[0].Model);
            foreach (var loop in done)
                AssertSameWeights(first, loop, 0f);
            AssertSameWeights(ElasticLoop.Reference(Steps), done[0], 1e-5f);
            Assert.Empty(host.Status().Lost);
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }

    [Fact]
    public async Task A_frozen_member_dropped_from_outside_fails_the_others_promptly_and_they_go_on_as_two()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 3 });
        var sessions = await StartAsync(host, 3);
        try
        {
            var groups = await JoinAll(sessions);
            // ranks 0 and 1 enter the step's control all-reduce; rank 2 is frozen: registered, heartbeating, its
            // connections open, but it never takes part
            var blocked = groups.Take(2).Select(g => OnThread(() =>
            {
                g.Current.SumAcrossRanks(new[] { 1.0, 2.0 });
                return 0;
            })).ToArray();
            await Task.Delay(300);
            Assert.All(blocked, t => Assert.False(t.IsCompleted));

            var clock = Stopwatch.StartNew();
            Assert.True(host.DropWorker(sessions[2].WorkerId, "node unreachable: partitioned in a test"));
            var failures = new List<PeerFailedException>();
            foreach (var t in blocked)
                failures.Add(await Assert.ThrowsAsync<PeerFailedException>(() => t.WaitAsync(Bound)));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed.TotalSeconds:0.0} s against a 120 s peer timeout");
            Assert.All(failures, e =>
            {
                Assert.Equal(2, e.Rank);
                Assert.Contains("node unreachable: partitioned in a test", e.Message);
                Assert.Contains("generation 1", e.Message);
            });
            Assert.All(groups.Take(2), g => Assert.True(g.ChangePending));
            // the frozen member hears of its drop on its watch stream, which may come a moment after the others failed
            var heard = Stopwatch.StartNew();
            while (!groups[2].ChangePending && heard.Elapsed < Bound)
                await Task.Delay(20);
            Assert.True(groups[2].ChangePending, "the dropped member never heard of the new generation");

            var syncs = await Task.WhenAll(groups.Take(2).Select((g, r) => OnThread(() => g.NextGeneration(failures[r], CancellationToken.None))));
            Assert.Equal(new[] { 0, 1 }, syncs.Select(s => s.Rank));
            Assert.All(syncs, s => Assert.Equal(2, s.WorldSize));
            Assert.All(groups.Take(2), g => Assert.Equal(2, g.Generation));
            Assert.All(groups.Take(2), g => Assert.False(g.ChangePending));
            // every session runs on this host: both generations share memory, the second in a segment of its own
            Assert.All(sessions.Take(2), s => Assert.Contains("shared memory, 2 ranks", s.Ring!.Plan));

            // the new ring is exact: sums and a broadcast from rank 1
            var values = syncs.Select(s => new[] { 0.25 + s.Rank, 3.5 * (s.Rank + 1) }).ToArray();
            var copies = syncs.Select(s => new[] { 7f * (s.Rank + 1), -1f }).ToArray();
            await Task.WhenAll(syncs.Select((s, r) => OnThread(() =>
            {
                s.SumAcrossRanks(values[r]);
                s.Broadcast(copies[r], root: 1);
                return 0;
            }))).WaitAsync(Bound);
            Assert.All(values, v => Assert.Equal(new[] { 1.5, 10.5 }, v));
            Assert.All(copies, c => Assert.Equal(new[] { 14f, -1f }, c));

            // the survivors reported nothing more: the coordinator had already dropped rank 2
            Assert.Equal("node unreachable: partitioned in a test", Assert.Single(host.Status().Lost).Reason);

            // the dropped member, when it thaws, is told why it cannot go on
            var dropped = await Assert.ThrowsAsync<GroupMembershipException>(() => OnThread(() => groups[2].NextGeneration(null, CancellationToken.None)));
            Assert.Contains("rank 2 of generation 1", dropped.Message);
            Assert.Contains("was dropped", dropped.Message);
            Assert.Contains("node unreachable: partitioned in a test", dropped.Message);
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }

    [Fact]
    public async Task A_member_asked_to_leave_leaves_after_its_step_and_the_others_go_on_as_two()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 3 });
        var sessions = await StartAsync(host, 3);
        try
        {
            var groups = await JoinAll(sessions);
            Assert.Equal(new[] { 0, 1, 2 }, groups.Select(g => g.Rank));
            var loops = groups.Select(g => ElasticLoop.Start(g, Steps, hasState: true, loop =>
            {
                if (loop.Step == 10 && loop.Group.Rank == 2)
                {
                    loop.Group.RequestLeave();
                    Assert.True(loop.Group.ChangePending);
                }
            })).ToArray();
            var done = await Task.WhenAll(loops).WaitAsync(LoopBound);

            var leaver = done[2];
            Assert.True(leaver.Left);
            Assert.Equal(Enumerable.Range(1, 11).Select(s => (long)s), leaver.Steps.Select(s => s.Step));
            Assert.True(leaver.Steps[^1].Switching);
            Assert.Contains("left the job", await WaitFor(() => sessions[2].DroppedReason));

            foreach (var (loop, rank) in done.Take(2).Select((l, r) => (l, r)))
            {
                Assert.False(loop.Left);
                Assert.Empty(loop.Failures);
                Assert.Equal(Enumerable.Range(1, Steps).Select(s => (long)s), loop.Steps.Select(s => s.Step));
                Assert.All(loop.Steps.Take(11), s => Assert.Equal((1L, rank, 3), (s.Generation, s.Rank, s.WorldSize)));
                Assert.Equal(new[] { 11L }, loop.Steps.Where(s => s.Switching).Select(s => s.Step));
                Assert.All(loop.Steps.Skip(11), s => Assert.Equal((2L, rank, 2), (s.Generation, s.Rank, s.WorldSize)));
            }
            AssertSameWeights(ElasticLoop.Weights(done[0].Model), done[1], 0f);
            AssertSameWeights(ElasticLoop.Reference(Steps), done[0], 1e-5f);
            // a departure is not a loss
            Assert.Empty(host.Status().Lost);
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }

    [Fact]
    public async Task Next_generation_times_out_with_a_clear_message_when_none_forms_and_works_once_one_does()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady with { WorldSize = 2, MinWorldSize = 2 });
        var sessions = new List<RankSession>(await StartAsync(host, 2));
        try
        {
            var groups = await JoinAll(sessions, TimeSpan.FromSeconds(1));
            Assert.True(host.DropWorker(sessions[1].WorkerId, "device lost in a test"));
            await WaitFor(() => groups[0].ChangePending ? "" : null);

            // one worker is left and the job needs two: no generation can include it
            var clock = Stopwatch.StartNew();
            var e = await Assert.ThrowsAsync<GroupMembershipException>(() => OnThread(() => groups[0].NextGeneration(null, CancellationToken.None)));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed.TotalSeconds:0.0} s against a 1 s generation timeout");
            Assert.Contains("rank 0 of generation 1", e.Message);
            Assert.Contains("within 1 s", e.Message);
            Assert.Contains("world size 0", e.Message);
            Assert.Contains("device lost in a test", e.Message);
            Assert.IsType<TimeoutException>(e.InnerException);
            Assert.Throws<InvalidOperationException>(() => groups[0].Current);

            // a joiner brings the job back, and the same member can go on
            sessions.Add(await StartAsync(host));
            var joining = ElasticTrainingGroup.JoinAsync(sessions[2], generationTimeout: Bound);
            var sync = await OnThread(() => groups[0].NextGeneration(null, CancellationToken.None));
            var joiner = await joining.WaitAsync(Bound);
            Assert.Equal(3, groups[0].Generation);
            Assert.Equal((0, 2), (sync.Rank, sync.WorldSize));
            var values = new[] { new[] { 1.0 }, new[] { 2.0 } };
            await Task.WhenAll(new[] { groups[0], joiner }.Select((g, r) => OnThread(() =>
            {
                g.Current.SumAcrossRanks(values[r]);
                return 0;
            }))).WaitAsync(Bound);
            Assert.All(values, v => Assert.Equal(3.0, v[0]));
        }
        finally
        {
            await DisposeAllAsync(sessions);
        }
    }

    [Fact]
    public async Task Bad_arguments_are_refused_with_the_name_of_the_setting()
    {
        await using var host = await CoordinatorHost.StartAsync(Steady);
        await using var session = await StartAsync(host);
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => ElasticTrainingGroup.JoinAsync(session, generationTimeout: TimeSpan.Zero));
        Assert.Equal("generationTimeout", e.ParamName);
        var bucket = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => ElasticTrainingGroup.JoinAsync(session, new DataParallelOptions { BucketBytes = 0 }));
        Assert.Equal("BucketBytes", bucket.ParamName);
        var url = await Assert.ThrowsAsync<ArgumentException>(() => RankSession.StartAsync(new WorkerOptions { Coordinator = "localhost:29500" }));
        Assert.Contains("localhost:29500", url.Message);
    }
}
