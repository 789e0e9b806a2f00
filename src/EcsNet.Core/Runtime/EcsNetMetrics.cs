using System.Diagnostics.Metrics;

namespace EcsNet.Core.Runtime;

/// <summary>
/// The process's metrics as System.Diagnostics.Metrics instruments of one meter, <see cref="MeterName"/>
/// (docs/METRICS.md lists them). A node host publishes the meter at <c>/metrics</c> in Prometheus text format, where
/// each instrument appears as <c>ecsnet_&lt;instrument name&gt;</c>; any other meter listener (OpenTelemetry,
/// dotnet-counters) can read it too. Nothing here depends on Prometheus.
/// <para>
/// Counts are kept here as <see cref="Tally"/> totals and gauges as <see cref="Level"/> sums, both read by observable
/// instruments when a listener collects: every series exists from the start (at zero), a counter never restarts
/// while the process lives, and an actor never has its state read from another thread (it only adds to a tally or
/// sets its share of a level). Step times are a histogram.
/// </para>
/// </summary>
public static class EcsNetMetrics
{
    public const string MeterName = "EcsNet";

    /// <summary>What a Prometheus exporter puts before an instrument's name (the meter's name, lower case).</summary>
    public const string PrometheusPrefix = "ecsnet_";

    /// <summary>The stages that train; their step series exist (at zero) before their first step.</summary>
    public static readonly IReadOnlyList<string> TrainingStages = new[] { "cam", "aff", "seg" };

    /// <summary>Upper bounds (seconds) of the step-time histogram's buckets: 10 ms to about 20 min.</summary>
    public static readonly double[] StepSecondsBuckets =
    {
        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000,
    };

    public static readonly Meter Meter = new(MeterName);

    // ---------------------------------------------------------------------------------- training (the root rank)

    /// <summary>Steps trained, by stage: counted by the root rank only, so the sum over the cluster's nodes is the steps run.</summary>
    public static readonly Tally TrainingSteps = new("stage", TrainingStages);

    /// <summary>Images trained on (each step's global batch), by stage: counted by the root rank only.</summary>
    public static readonly Tally TrainingImages = new("stage", TrainingStages);

    private static readonly Histogram<double> StepSeconds = Meter.CreateHistogram<double>("training_step_seconds", "s",
        "Duration of one training step on the root rank (samples, forward, backward with its all-reduce, optimizer)");

    // ---------------------------------------------------------------------------------- all-reduce (every rank)

    /// <summary>Gradient bytes all-reduced by this process's ranks.</summary>
    public static readonly Tally AllReduceBytes = new();

    /// <summary>Summed duration of the gradient buckets' all-reduces (partly hidden behind backward).</summary>
    public static readonly Tally AllReduceSeconds = new();

    /// <summary>Communication left after backward returned: the part of the all-reduce a step waited for.</summary>
    public static readonly Tally AllReduceWaitSeconds = new();

    /// <summary>Synchronised backward passes (one per rank and step).</summary>
    public static readonly Tally AllReduceSyncs = new();

    // ---------------------------------------------------------------------------------- workers and coordinator

    /// <summary>Worker actors on this node.</summary>
    public static readonly Level Workers = new();

    /// <summary>Worker actors on this node that are in a training.</summary>
    public static readonly Level BusyWorkers = new();

    /// <summary>Workers the training coordinator knows (on the node that hosts the singleton).</summary>
    public static readonly Level CoordinatorWorkers = new();

    /// <summary>Runs the coordinator is driving (0 or 1: runs go one at a time).</summary>
    public static readonly Level ActiveRuns = new();

    /// <summary>Runs waiting in the coordinator's queue.</summary>
    public static readonly Level QueuedRuns = new();

    /// <summary>Data-parallel generations formed (a training's first, and one after each membership change).</summary>
    public static readonly Tally GenerationsFormed = new();

    /// <summary>
    /// Members a training lost, by kind: <c>lost</c> (its node became unreachable or was removed, or its actor stopped),
    /// <c>dropped</c> (the member reported it was dropped from its group), <c>failed</c> (its training failed there).
    /// </summary>
    public static readonly Tally MemberLosses = new("kind", new[] { "lost", "dropped", "failed" });

    /// <summary>Trainings that failed (every member failed, left or was lost; the coordinator stopped).</summary>
    public static readonly Tally TrainingsFailed = new();

    /// <summary>Runs that ended, by their final state.</summary>
    public static readonly Tally RunsFinished = new("state", new[] { "completed", "failed", "stopped" });

    // ---------------------------------------------------------------------------------- jobs and samples

    /// <summary>Per-image jobs running in this node's job entities.</summary>
    public static readonly Level JobsRunning = new();

    /// <summary>Per-image jobs queued in this node's job entities behind the one that runs.</summary>
    public static readonly Level JobsQueued = new();

    /// <summary>Jobs this node's job runners sent and have no answer for.</summary>
    public static readonly Level JobsInFlight = new();

    /// <summary>Jobs this node's job runners hold back until a slot frees (at most MaxInFlight are out).</summary>
    public static readonly Level JobsWaiting = new();

    /// <summary>Per-image jobs this node's entities finished.</summary>
    public static readonly Tally JobsCompleted = new();

    /// <summary>Per-image jobs that failed on this node (bad input or an error; not the hand-off interruptions).</summary>
    public static readonly Tally JobsFailed = new();

    /// <summary>Training samples this node's workers asked for and have not received.</summary>
    public static readonly Level SampleRequestsInFlight = new();

    /// <summary>Training samples this node's sample entities made.</summary>
    public static readonly Tally SamplesMade = new();

    /// <summary>Sample requests this node's sample entities answered with an error.</summary>
    public static readonly Tally SampleErrors = new();

    static EcsNetMetrics()
    {
        Counter("training_steps_total", TrainingSteps, "{step}", "Training steps, by stage (root rank)");
        Counter("training_images_total", TrainingImages, "{image}", "Images trained on, by stage (root rank); rate() is images per second");
        Counter("allreduce_bytes_total", AllReduceBytes, "By", "Gradient bytes all-reduced by this process's ranks");
        Counter("allreduce_seconds_total", AllReduceSeconds, "s", "Summed duration of the gradient buckets' all-reduces");
        Counter("allreduce_wait_seconds_total", AllReduceWaitSeconds, "s", "All-reduce time a step waited for after backward");
        Counter("allreduce_syncs_total", AllReduceSyncs, "{sync}", "Synchronised backward passes (one per rank and step)");
        Gauge("workers", Workers, "{worker}", "Worker actors on this node");
        Gauge("workers_busy", BusyWorkers, "{worker}", "Worker actors on this node that are in a training");
        Gauge("coordinator_workers", CoordinatorWorkers, "{worker}", "Workers the training coordinator knows");
        Gauge("runs_active", ActiveRuns, "{run}", "Runs the coordinator is driving");
        Gauge("runs_queued", QueuedRuns, "{run}", "Runs waiting in the coordinator's queue");
        Counter("generations_total", GenerationsFormed, "{generation}", "Data-parallel generations formed");
        Counter("training_member_losses_total", MemberLosses, "{member}", "Members trainings lost, by kind (lost, dropped, failed)");
        Counter("trainings_failed_total", TrainingsFailed, "{training}", "Trainings that failed");
        Counter("runs_finished_total", RunsFinished, "{run}", "Runs that ended, by state (completed, failed, stopped)");
        Gauge("jobs_running", JobsRunning, "{job}", "Per-image jobs running in this node's job entities");
        Gauge("jobs_queued", JobsQueued, "{job}", "Per-image jobs queued in this node's job entities");
        Gauge("jobs_in_flight", JobsInFlight, "{job}", "Jobs this node's runners sent and have no answer for");
        Gauge("jobs_waiting", JobsWaiting, "{job}", "Jobs this node's runners hold back until a slot frees");
        Counter("jobs_completed_total", JobsCompleted, "{job}", "Per-image jobs this node's entities finished");
        Counter("jobs_failed_total", JobsFailed, "{job}", "Per-image jobs that failed on this node");
        Gauge("sample_requests_in_flight", SampleRequestsInFlight, "{sample}", "Training samples this node's workers wait for");
        Counter("samples_made_total", SamplesMade, "{sample}", "Training samples this node's sample entities made");
        Counter("sample_errors_total", SampleErrors, "{sample}", "Sample requests this node's entities answered with an error");
    }

    /// <summary>
    /// One training step finished on the root rank: its time in the histogram, one step and the global batch's images
    /// in the totals of <paramref name="stage"/>.
    /// </summary>
    public static void RecordStep(string stage, double seconds, int images)
    {
        StepSeconds.Record(seconds, new KeyValuePair<string, object?>("stage", stage));
        TrainingSteps.Add(1, stage);
        TrainingImages.Add(images, stage);
    }

    /// <summary>One synchronised backward of a rank: the bytes it all-reduced and how long that took and was waited for.</summary>
    public static void RecordAllReduce(long bytes, double communicationSeconds, double waitSeconds)
    {
        AllReduceBytes.Add(bytes);
        AllReduceSeconds.Add(communicationSeconds);
        AllReduceWaitSeconds.Add(waitSeconds);
        AllReduceSyncs.Add(1);
    }

    /// <summary>The name a Prometheus exporter gives an instrument of this meter (<c>ecsnet_training_steps_total</c>).</summary>
    public static string PrometheusName(string instrument) => PrometheusPrefix + instrument;

    private static void Counter(string name, Tally tally, string unit, string description) =>
        Meter.CreateObservableCounter(name, tally.Observe, unit, description);

    private static void Gauge(string name, Level level, string unit, string description) =>
        Meter.CreateObservableGauge(name, level.Observe, unit, description);
}

/// <summary>
/// Monotonic totals, optionally split by the values of one label, for an observable counter of
/// <see cref="EcsNetMetrics"/>. Thread-safe.
/// </summary>
public sealed class Tally
{
    private readonly string? label;
    private readonly Dictionary<string, double> totals = new(StringComparer.Ordinal);
    private readonly Lock gate = new();

    /// <summary>A total without labels.</summary>
    public Tally()
    {
        totals[""] = 0;
    }

    /// <summary>Totals by <paramref name="label"/>; the <paramref name="known"/> values are reported (at zero) before they are counted.</summary>
    public Tally(string label, IEnumerable<string> known)
    {
        this.label = label;
        foreach (var value in known)
            totals[value] = 0;
    }

    /// <summary>Adds <paramref name="amount"/> to the total of <paramref name="value"/> (leave it out when the tally has no label).</summary>
    public void Add(double amount, string value = "")
    {
        lock (gate)
            totals[value] = totals.GetValueOrDefault(value) + amount;
    }

    /// <summary>The total of <paramref name="value"/> so far.</summary>
    public double Total(string value = "")
    {
        lock (gate)
            return totals.GetValueOrDefault(value);
    }

    internal IEnumerable<Measurement<double>> Observe()
    {
        lock (gate)
            return totals.Select(t => label is null
                    ? new Measurement<double>(t.Value)
                    : new Measurement<double>(t.Value, new KeyValuePair<string, object?>(label, t.Key)))
                .ToList();
    }
}

/// <summary>
/// A gauge's value as the sum of its owners' shares (each actor that holds jobs, each worker), for an observable gauge
/// of <see cref="EcsNetMetrics"/>. Thread-safe.
/// </summary>
public sealed class Level
{
    private long value;

    public long Value => Interlocked.Read(ref value);

    /// <summary>Adds <paramref name="delta"/> (a caller that pairs its own increments and decrements).</summary>
    public void Add(long delta) => Interlocked.Add(ref value, delta);

    /// <summary>A new owner's share, at zero.</summary>
    public LevelShare Share() => new(this);

    internal Measurement<long> Observe() => new(Value);
}

/// <summary>
/// One owner's part of a <see cref="Level"/>, set by that owner alone (an actor, from its own thread); disposing it
/// takes the part back out, so an owner that stops cannot leave its count behind.
/// </summary>
public sealed class LevelShare(Level level) : IDisposable
{
    private long current;

    public void Set(long value)
    {
        level.Add(value - current);
        current = value;
    }

    public void Dispose() => Set(0);
}
