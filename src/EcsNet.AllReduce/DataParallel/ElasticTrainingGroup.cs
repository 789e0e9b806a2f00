using EcsNet.AllReduce.Rendezvous;
using EcsNet.Core.Training;
using Grpc.Core;

namespace EcsNet.AllReduce.DataParallel;

/// <summary>
/// The <see cref="ITrainingGroup"/> of one rank over its <see cref="RankSession"/>: each generation the
/// coordinator forms is one ring and one <see cref="DataParallelGradientSync"/>. Membership changes reach the
/// training loop two ways: a newer generation announced (a joiner, a departure, a loss) makes
/// <see cref="ChangePending"/> true, so the members switch together after the step in progress; a member lost
/// mid-step aborts the ring (<see cref="RankSession"/>), so the collective in flight fails at once with
/// <see cref="PeerFailedException"/> and the loop switches and redoes the step. Like elastic training in
/// PyTorch (torchrun's rendezvous rounds) and Horovod, except that the survivors keep their weights in memory
/// and the state comes from a member that has it rather than from a checkpoint.
/// The group does not own the session; the training thread calls <see cref="NextGeneration"/> and
/// <see cref="Leave"/>, any thread may read <see cref="ChangePending"/> or call <see cref="RequestLeave"/>.
/// </summary>
public sealed class ElasticTrainingGroup : ITrainingGroup, IDisposable
{
    /// <summary>How long <see cref="NextGeneration"/> waits for a generation that includes this rank, unless told.</summary>
    public static readonly TimeSpan DefaultGenerationTimeout = TimeSpan.FromSeconds(60);

    private readonly DataParallelOptions options;
    private IGroupCollective ring;
    private DataParallelGradientSync? current;
    private volatile bool leaveRequested;
    private bool left;

    private ElasticTrainingGroup(RankSession session, IGroupCollective ring, DataParallelOptions options, TimeSpan generationTimeout)
    {
        Session = session;
        this.ring = ring;
        this.options = options;
        GenerationTimeout = generationTimeout;
        current = new DataParallelGradientSync(ring, options);
    }

    /// <summary>
    /// Waits (up to <paramref name="generationTimeout"/>) for the first generation that includes
    /// <paramref name="session"/>'s rank and joins its ring; <see cref="Current"/> is then that generation's sync,
    /// not yet attached to a model.
    /// </summary>
    /// <exception cref="GroupMembershipException">The rank was dropped, or no generation included it in time.</exception>
    public static async Task<ElasticTrainingGroup> JoinAsync(RankSession session, DataParallelOptions? dataParallel = null,
        TimeSpan? generationTimeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        var timeout = generationTimeout ?? DefaultGenerationTimeout;
        if (timeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(generationTimeout), timeout, "the generation timeout must be positive");
        var options = dataParallel ?? new DataParallelOptions();
        options.Validate();
        var ring = await JoinNextAsync(session, timeout, $"worker {session.WorkerId}", cancellationToken);
        return new ElasticTrainingGroup(session, ring, options, timeout);
    }

    public RankSession Session { get; }

    /// <summary>How long <see cref="NextGeneration"/> waits for a generation that includes this rank.</summary>
    public TimeSpan GenerationTimeout { get; }

    /// <summary>The current generation's gradient sync; the training loop attaches the model to it.</summary>
    public DataParallelGradientSync Current => current ?? throw new InvalidOperationException(left
        ? $"worker {Session.WorkerId} left the group"
        : $"worker {Session.WorkerId} has no generation: the last change of generation failed");

    IGradientSync ITrainingGroup.Current => Current;

    public long Generation => ring.Generation;

    public int Rank => ring.Rank;

    public int WorldSize => ring.WorldSize;

    /// <summary>
    /// True when a generation newer than the current ring's was announced, this rank was asked to leave, or it
    /// can no longer take part (dropped: <see cref="NextGeneration"/> then says why).
    /// </summary>
    public bool ChangePending =>
        leaveRequested || Session.DroppedReason is not null || (Session.Latest?.Number ?? 0) > ring.Generation;

    public bool LeaveRequested => leaveRequested;

    /// <summary>Asks this rank to leave after the step in progress (scale down, shutdown): <see cref="ChangePending"/> becomes true.</summary>
    public void RequestLeave() => leaveRequested = true;

    public IGradientSync NextGeneration(Exception? failure, CancellationToken cancellationToken) =>
        NextGenerationAsync(failure, cancellationToken).GetAwaiter().GetResult();

    /// <summary>
    /// Reports <paramref name="failure"/>'s peer if it names one and the coordinator has not moved on already,
    /// disposes the current sync and ring, waits (up to <see cref="GenerationTimeout"/>) for a newer generation
    /// that includes this rank, and returns its sync (not attached).
    /// </summary>
    /// <exception cref="GroupMembershipException">This rank was dropped, or no such generation formed in time.</exception>
    public async Task<DataParallelGradientSync> NextGenerationAsync(Exception? failure, CancellationToken cancellationToken = default)
    {
        if (left)
            throw new InvalidOperationException($"worker {Session.WorkerId} left the group");
        var old = ring;
        var who = $"rank {old.Rank} of generation {old.Generation} (worker {Session.WorkerId})";
        // A newer generation means the coordinator already dropped whoever it had to; a report on the old one
        // would be refused as stale (and must never drop a healthy peer that merely moved on).
        if (FindPeerFailure(failure) is { Rank: >= 0 } peer && (Session.Latest?.Number ?? 0) <= old.Generation && Session.DroppedReason is null)
        {
            try
            {
                await Session.ReportFailureAsync(peer, cancellationToken);
            }
            catch (RpcException)
            {
                // refused (a newer generation formed meanwhile, or this rank was dropped) or the coordinator is
                // unreachable: the wait below tells which
            }
        }
        current?.Dispose();
        current = null;
        await Session.CloseRingAsync();
        ring = await JoinNextAsync(Session, GenerationTimeout, who, cancellationToken);
        current = new DataParallelGradientSync(ring, options);
        return current;
    }

    public void Leave() => LeaveAsync().GetAwaiter().GetResult();

    /// <summary>
    /// Leaves the group after this rank's last step: the coordinator forms a generation without it (not logged
    /// as a loss, so the others' rings are not aborted), then this rank's sync and ring close.
    /// </summary>
    public async Task LeaveAsync(CancellationToken cancellationToken = default)
    {
        if (left)
            return;
        left = true;
        current?.Dispose();
        current = null;
        await Session.LeaveAsync(cancellationToken);
        await Session.CloseRingAsync();
    }

    /// <summary>Disposes the current sync; the ring and the session belong to the session's owner.</summary>
    public void Dispose()
    {
        current?.Dispose();
        current = null;
    }

    private static async Task<IGroupCollective> JoinNextAsync(RankSession session, TimeSpan timeout, string who, CancellationToken cancellationToken)
    {
        try
        {
            return await session.JoinRingAsync(timeout: timeout, cancellationToken: cancellationToken);
        }
        catch (Exception e) when (e is GroupMembershipException or TimeoutException)
        {
            // the session's text names the reason (dropped, left, coordinator gone) or the timeout and the latest generation
            throw new GroupMembershipException($"{who} cannot go on: {e.Message}", e);
        }
    }

    /// <summary>The peer failure behind <paramref name="failure"/>, also when wrapped (a task's AggregateException).</summary>
    private static PeerFailedException? FindPeerFailure(Exception? failure) => failure switch
    {
        null => null,
        PeerFailedException peer => peer,
        AggregateException all => all.InnerExceptions.Select(FindPeerFailure).FirstOrDefault(p => p is not null),
        _ => FindPeerFailure(failure.InnerException),
    };
}
