using Akka.Actor;
using Akka.Event;
using EcsNet.Cluster.Hosting;

namespace EcsNet.Cluster.Discovery;

/// <summary>
/// Forms or joins the cluster from discovery instead of fixed seeds (docs/DEPLOY.md, "Cluster formation"): it looks
/// up the nodes of this cluster (<see cref="INodeDiscovery"/>: Kubernetes pods by label selector, or a fixed list)
/// every few seconds; once at least <see cref="EcsNetDiscoveryOptions.RequiredContactPoints"/> are found and the set
/// has stayed the same for <see cref="EcsNetDiscoveryOptions.StableMargin"/>, it hands their remoting addresses, in one
/// order every node computes alike, to Akka's seed-node process (<see cref="Akka.Cluster.Cluster.JoinSeedNodes"/>):
/// the node first in that order starts the cluster when no other answers, the others join whichever answers first.
/// A node that comes later finds the cluster up and joins it.
/// </summary>
public sealed class DiscoveryJoiner : ReceiveActor, IWithTimers
{
    private readonly EcsNetDiscoveryOptions options;
    private readonly INodeDiscovery discovery;
    private readonly ILoggingAdapter log = Context.GetLogger();
    private readonly Akka.Cluster.Cluster cluster = Akka.Cluster.Cluster.Get(Context.System);
    private IReadOnlyList<Address> candidates = Array.Empty<Address>();
    private DateTime stableSince;
    private bool looking;
    private string lastProblem = "";

    public DiscoveryJoiner(EcsNetDiscoveryOptions options, INodeDiscovery discovery)
    {
        this.options = options;
        this.discovery = discovery;
        Receive<Look>(_ => LookUp());
        Receive<NodesFound>(Found);
        Receive<Status.Failure>(f =>
        {
            looking = false;
            var problem = (f.Cause is AggregateException { InnerException: { } inner } ? inner : f.Cause).Message;
            if (problem != lastProblem)   // once per new problem, not every few seconds
                log.Warning("discovery ({0}): {1}", options.Method, problem);
            lastProblem = problem;
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart() => Timers.StartPeriodicTimer("look", Look.Instance, TimeSpan.Zero, options.LookupInterval);

    protected override void PostStop() => discovery.Dispose();

    private void LookUp()
    {
        if (cluster.State.Members.Any(m => m.Address == cluster.SelfAddress))
        {
            Context.Stop(Self);   // in the cluster: Akka takes it from here
            return;
        }
        if (looking)
            return;
        looking = true;
        var limit = new CancellationTokenSource(options.LookupTimeout);
        discovery.LookupAsync(limit.Token).ContinueWith(t =>
        {
            limit.Dispose();
            return t.IsCompletedSuccessfully ? (object)new NodesFound(t.Result)
                : new Status.Failure(t.Exception ?? (Exception)new TimeoutException($"no answer in {options.LookupTimeout.TotalSeconds:0} s"));
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).PipeTo(Self);
    }

    private void Found(NodesFound m)
    {
        looking = false;
        var self = cluster.SelfAddress;
        var found = m.Nodes.Select(n => new Address(self.Protocol, self.System, n.Host, n.Port)).Distinct()
            .OrderBy(a => a.Host, StringComparer.Ordinal).ThenBy(a => a.Port).ToList();
        if (!found.SequenceEqual(candidates))
        {
            candidates = found;
            stableSince = DateTime.UtcNow;
            log.Info("discovery ({0}): {1} node(s): {2}", options.Method, found.Count, string.Join(", ", found));
            return;
        }
        if (found.Count < options.RequiredContactPoints || DateTime.UtcNow - stableSince < options.StableMargin)
            return;
        if (!found.Contains(self))
        {
            log.Warning("discovery ({0}) does not list this node ({1}): its --hostname must be the address others see (the pod IP)", options.Method, self);
            return;
        }
        log.Info("joining the cluster through the {0} discovered node(s), first {1}", found.Count, found[0]);
        cluster.JoinSeedNodes(found);
        Timers.Cancel("look");
        Context.Stop(Self);
    }

    private sealed record NodesFound(IReadOnlyList<DiscoveredNode> Nodes);

    private sealed class Look
    {
        public static readonly Look Instance = new();
    }
}
