using Akka.Actor;

namespace EcsNet.Cluster.Hosting;

/// <summary>
/// Work a node does when it is asked to leave (SIGTERM, Ctrl-C, host stop) while it is still a cluster member:
/// finish the training step, write a checkpoint, tell the coordinator. Register implementations in DI
/// (<c>services.AddSingleton&lt;INodeShutdownTask, MyTask&gt;()</c>); each runs in CoordinatedShutdown's
/// <c>before-cluster-shutdown</c> phase (Akka.NET docs, "Coordinated Shutdown"), after the node stopped serving
/// and before its shards are handed off and it leaves. Tasks of that phase run concurrently; the token is
/// cancelled after <see cref="EcsNetNodeOptions.ShutdownTaskTimeout"/>, after which shutdown goes on regardless.
/// </summary>
public interface INodeShutdownTask
{
    /// <summary>A short name for logs (e.g. "checkpoint").</summary>
    string Name { get; }

    Task RunAsync(ActorSystem system, CancellationToken cancellationToken);
}
