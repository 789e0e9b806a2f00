namespace EcsNet.Core.Training;

/// <summary>
/// The data-parallel group a replica trains in, when its membership may change while training runs: a worker
/// joins (scale up), leaves (scale down, shutdown) or dies. Each membership is a <em>generation</em> with its own
/// ranks and its own <see cref="IGradientSync"/>; the training loop moves from one generation to the next only
/// between steps, so every member applies the same steps:
/// <list type="number">
/// <item>A member that learns of a change (<see cref="ChangePending"/>, e.g. a newer generation was announced, or
/// this member was asked to leave) says so in the step's control reduction; then every member finishes that
/// step and switches.</item>
/// <item>A collective that fails (a peer died mid-step) abandons the step in flight on every survivor; they
/// switch at once and redo it.</item>
/// <item>After switching, the members agree on the newest completed step and copy weights and optimizer state
/// from a member that has it (a joiner has none), so training goes on from the survivors' memory rather than
/// from the last checkpoint on disk.</item>
/// </list>
/// Implementations live where the transport does (EcsNet.AllReduce); Core sees only this interface.
/// </summary>
public interface ITrainingGroup
{
    /// <summary>The current generation's gradient sync (rank, world size, collectives).</summary>
    IGradientSync Current { get; }

    /// <summary>Number of the current generation (grows by one or more at each change).</summary>
    long Generation { get; }

    /// <summary>True once this member knows the current generation should end after the step in progress.</summary>
    bool ChangePending { get; }

    /// <summary>True when this member was asked to leave the group (it leaves after the step in progress).</summary>
    bool LeaveRequested { get; }

    /// <summary>
    /// Ends this member's part in the current generation and waits for the next one that includes it; returns
    /// its sync (the previous one is disposed). <paramref name="failure"/> is the collective failure that ended
    /// the generation, if one did (it is reported so the failed peer is dropped).
    /// </summary>
    /// <exception cref="GroupMembershipException">This member was dropped, or no generation formed in time.</exception>
    IGradientSync NextGeneration(Exception? failure, CancellationToken cancellationToken);

    /// <summary>Leaves the group for good (after this member's last step); the others form a generation without it.</summary>
    void Leave();
}

/// <summary>A member of an <see cref="ITrainingGroup"/> cannot go on: it was dropped, or no new generation formed in time.</summary>
public sealed class GroupMembershipException(string message, Exception? inner = null) : Exception(message, inner);
