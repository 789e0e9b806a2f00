using Akka.Actor;
using Akka.Discovery;
using Akka.Event;
using EcsNet.Cluster.Hosting;

namespace EcsNet.Cluster.Discovery;

/// <summary>
/// Forms or joins the cluster from service discovery instead of fixed seeds (docs/DEPLOY.md, "Cluster formation"):
/// it looks up the nodes of this cluster (Kubernetes pods by label selector, or a fixed list) every few seconds;
/// once at least <see cref="EcsNetDiscoveryOptions.RequiredContactPoints"/> are found and the set has stayed the same
/// for <see cref="EcsNetDiscoveryOptions.StableMargin"/>, it hands their remoting addresses, in one order every node
/// computes alike, to Akka's seed-node process (<see cref="Akka.Cluster.Cluster.JoinSeedNodes"/>): the node first in
/// that order starts the cluster when no other answers, the others join whichever answers first. A node that comes
/// later finds the cluster up and joins it.
/// </summary>
public sealed class DiscoveryJoiner : ReceiveActor, IWithTimers
{
    private readonly EcsNetDiscoveryOptions options;
    private readonly string service;
    private readonly ILoggingAdapter log = Context.GetLogger();
    private readonly Akka.Cluster.Cluster cluster = Akka.Cluster.Cluster.Get(Context.System);
    private IReadOnlyList<Address> candidates = Array.Empty<Address>();
    private DateTime stableSince;

    public DiscoveryJoiner(EcsNetDiscoveryOptions options, string service)
    {
        this.options = options;
        this.service = service;
        Receive<Look>(_ => LookUp());
        Receive<ServiceDiscovery.Resolved>(Found);
        Receive<Status.Failure>(f => log.Warning("discovery of {0}: {1}", service, f.Cause.Message));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart() => Timers.StartPeriodicTimer("look", Look.Instance, TimeSpan.Zero, options.LookupInterval);

    private void LookUp()
    {
        if (cluster.SelfMember.Status != Akka.Cluster.MemberStatus.Removed && cluster.State.Members.Any(m => m.Address == cluster.SelfAddress))
        {
            Context.Stop(Self);   // joined: Akka's cluster takes it from here
            return;
        }
        var lookup = new Lookup(service, options.PortName, "tcp");
        Akka.Discovery.Discovery.Get(Context.System).Default.Lookup(lookup, options.LookupTimeout).PipeTo(Self);
    }

    private void Found(ServiceDiscovery.Resolved resolved)
    {
        var self = cluster.SelfAddress;
        var found = resolved.Addresses
            .Select(t => new Address(self.Protocol, self.System, t.Address?.ToString() ?? t.Host, t.Port ?? self.Port))
            .Distinct()
            .OrderBy(a => a.Host, StringComparer.Ordinal).ThenBy(a => a.Port)
            .ToList();
        if (!found.SequenceEqual(candidates))
        {
            candidates = found;
            stableSince = DateTime.UtcNow;
            log.Info("discovery of {0}: {1} node(s): {2}", service, found.Count, string.Join(", ", found));
            return;
        }
        if (found.Count < options.RequiredContactPoints || DateTime.UtcNow - stableSince < options.StableMargin)
            return;
        if (!found.Contains(self))
        {
            log.Warning("discovery of {0} does not list this node ({1}); its advertised address must be the pod's", service, self);
            return;
        }
        log.Info("joining the cluster through the {0} discovered node(s), first {1}", found.Count, found[0]);
        cluster.JoinSeedNodes(found);
        Timers.Cancel("look");
        Context.Stop(Self);
    }

    private sealed class Look
    {
        public static readonly Look Instance = new();
    }
}
