using System.Net;
using EcsNet.Labels.Jobs;

namespace EcsNet.Cluster.Training;

/// <summary>What the training coordinator needs from its node.</summary>
/// <param name="RendezvousBind">Address the gRPC rendezvous of each training listens on.</param>
/// <param name="RendezvousHost">Host name or address workers dial the rendezvous at.</param>
/// <param name="WorkerWait">How long a training waits for a first worker before it fails.</param>
/// <param name="WorkerExpiry">A worker not heard from for this long is no longer offered trainings.</param>
/// <param name="MaxAttempts">Fresh starts of a training (from its last checkpoint) when every member was lost.</param>
/// <param name="Jobs">Runs the per-image jobs of a pipeline run (the sharded runner).</param>
public sealed record CoordinatorSettings(IPAddress RendezvousBind, string RendezvousHost, TimeSpan WorkerWait, TimeSpan WorkerExpiry,
    int MaxAttempts, IImageJobRunner Jobs);
