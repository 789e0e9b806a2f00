namespace EcsNet.Core.Training;

/// <summary>
/// A collective of data-parallel training failed because of the group, not the step: a peer died, stalled or
/// was dropped. With an <see cref="ITrainingGroup"/> the loop then moves to the next generation and redoes the
/// step; without one the error ends training. Transports derive their failures from it.
/// </summary>
public class CollectiveFailedException(string message, Exception? inner = null) : Exception(message, inner);
