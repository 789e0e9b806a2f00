using EcsNet.Core.Runtime;

namespace EcsNet.Host.Tests.Metrics;

/// <summary>
/// <c>/metrics</c> on a node's HTTP endpoint (docs/METRICS.md): the EcsNet meter in Prometheus text format on a
/// plain node, and the counts of a real two-worker training on an `ecsnet serve` node.
/// </summary>
[Collection(MetricsCollection.Name)]
public sealed class MetricsEndpointTests(TrainedNode trained)
{
    /// <summary>Every family of the EcsNet meter that a node serves from its start (the step histogram comes with the first step).</summary>
    internal static readonly string[] Families =
    {
        "ecsnet_training_steps_total", "ecsnet_training_images_total",
        "ecsnet_allreduce_bytes_total", "ecsnet_allreduce_seconds_total", "ecsnet_allreduce_wait_seconds_total", "ecsnet_allreduce_syncs_total",
        "ecsnet_workers", "ecsnet_workers_busy", "ecsnet_coordinator_workers", "ecsnet_runs_active", "ecsnet_runs_queued",
        "ecsnet_generations_total", "ecsnet_training_member_losses_total", "ecsnet_trainings_failed_total", "ecsnet_runs_finished_total",
        "ecsnet_jobs_running", "ecsnet_jobs_queued", "ecsnet_jobs_in_flight", "ecsnet_jobs_waiting",
        "ecsnet_jobs_completed_total", "ecsnet_jobs_failed_total",
        "ecsnet_sample_requests_in_flight", "ecsnet_samples_made_total", "ecsnet_sample_errors_total",
    };

    [Fact]
    public async Task A_plain_node_serves_every_ecsnet_family_and_no_other_meter()
    {
        await using var app = NodeHost.Build(Array.Empty<string>(), new NodeHostSettings
        {
            Roles = new[] { "worker", "preprocess" },
            Configure = o => o.JoinSelfWithoutSeeds = false,
        });
        await app.StartAsync();
        var scrape = await PrometheusText.ScrapeAsync(app.Urls.Single());
        foreach (var family in Families)
        {
            Assert.True(scrape.Types.TryGetValue(family, out var type), $"{family} is not served");
            // prometheus-net's meter adapter serves .NET counters as gauges (it cannot tell a restarted instrument)
            Assert.Equal("gauge", type);
        }
        // labelled totals are there at zero before anything happened
        foreach (var stage in EcsNetMetrics.TrainingStages)
            Assert.Contains(scrape.Samples, s => s.Name == "ecsnet_training_steps_total" && s.Labels.GetValueOrDefault("stage") == stage);
        Assert.Contains(scrape.Samples, s => s.Name == "ecsnet_runs_finished_total" && s.Labels.GetValueOrDefault("state") == "failed");
        // only the EcsNet meter, the process's statistics and the exporter's own gauge: no ASP.NET Core or Kestrel meters
        Assert.All(scrape.Types.Keys, name => Assert.True(
            name.StartsWith("ecsnet_", StringComparison.Ordinal) || name.StartsWith("process_", StringComparison.Ordinal) ||
            name.StartsWith("dotnet_", StringComparison.Ordinal) || name.StartsWith("prometheus_net_", StringComparison.Ordinal),
            $"{name} is not an EcsNet metric"));
        await app.StopAsync();
    }

    [Fact]
    public void A_two_worker_training_counts_each_step_once_and_all_reduces_gradients()
    {
        var last = trained.Events[^1].Run;
        Assert.True(last.State == EcsNet.Control.V1.RunState.Completed, $"{last.State}: {last.Error}");
        int steps = trained.Events.Where(e => e.Run.Stage == "cam" && e.Losses.Count > 0).Max(e => e.Run.Step);
        Assert.Equal(4, steps);   // 8 images, a global batch of 4, 2 epochs

        var stage = ("stage", "cam");
        Assert.Equal(steps, trained.Growth("ecsnet_training_steps_total", stage));
        Assert.Equal("histogram", trained.After.Types["ecsnet_training_step_seconds"]);
        Assert.Equal(steps, trained.Growth("ecsnet_training_step_seconds_count", stage));
        Assert.Equal(steps, trained.Growth("ecsnet_training_step_seconds_bucket", stage, ("le", "+Inf")));
        Assert.True(trained.Growth("ecsnet_training_step_seconds_sum", stage) > 0);
        Assert.Equal(4 * steps, trained.Growth("ecsnet_training_images_total", stage));
        // no other stage trained
        Assert.Equal(0, trained.Growth("ecsnet_training_steps_total", ("stage", "aff")));

        // both ranks all-reduce their gradients at every step of a two-member generation
        Assert.True(trained.Growth("ecsnet_allreduce_bytes_total") > 0);
        Assert.InRange(trained.Growth("ecsnet_allreduce_syncs_total"), 1, 2 * steps);
        Assert.True(trained.Growth("ecsnet_allreduce_seconds_total") > 0);
        Assert.True(trained.Growth("ecsnet_allreduce_wait_seconds_total") >= 0);

        Assert.True(trained.Growth("ecsnet_generations_total") >= 1);
        Assert.Equal(1, trained.Growth("ecsnet_runs_finished_total", ("state", "completed")));
        Assert.Equal(0, trained.Growth("ecsnet_trainings_failed_total"));
        Assert.Equal(0, trained.Growth("ecsnet_training_member_losses_total"));
        Assert.True(trained.Growth("ecsnet_samples_made_total") >= 4 * steps);

        // the gauges after the run: both workers idle, no run active or waiting
        Assert.True(trained.After.Value("ecsnet_workers") >= 2);
        Assert.Equal(0, trained.After.Value("ecsnet_workers_busy"));
        Assert.Equal(2, trained.After.Value("ecsnet_coordinator_workers"));
        Assert.Equal(0, trained.After.Value("ecsnet_runs_active"));
        Assert.Equal(0, trained.After.Value("ecsnet_runs_queued"));
        Assert.Equal(0, trained.After.Value("ecsnet_sample_requests_in_flight"));
    }
}
