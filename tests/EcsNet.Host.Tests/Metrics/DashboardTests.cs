using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace EcsNet.Host.Tests.Metrics;

/// <summary>
/// The Grafana dashboard shipped at docs/grafana/ecsnet-dashboard.json cannot drift from the code: every metric its
/// PromQL names is one that a node that has trained serves at <c>/metrics</c>, and it takes its Prometheus data
/// source as the <c>DS_PROMETHEUS</c> input of an exported dashboard.
/// </summary>
[Collection(MetricsCollection.Name)]
public sealed partial class DashboardTests(TrainedNode trained)
{
    private static readonly string DashboardFile = Path.Combine(AppContext.BaseDirectory, "grafana", "ecsnet-dashboard.json");

    [Fact]
    public void Every_metric_the_dashboard_queries_is_served_by_a_node()
    {
        var dashboard = JsonNode.Parse(File.ReadAllText(DashboardFile))!;
        var queries = Queries(dashboard).ToList();
        Assert.True(queries.Count >= 20, $"only {queries.Count} queries");
        var served = trained.After.SampleNames;
        var named = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var query in queries)
        {
            var names = MetricNames(query);
            Assert.True(names.Count > 0, $"no metric in: {query}");
            foreach (var name in names)
            {
                Assert.True(served.Contains(name), $"{name} (in: {query}) is not served at /metrics");
                named.Add(name);
            }
        }
        // the dashboard shows every family the meter has (the histogram through its buckets)
        foreach (var family in MetricsEndpointTests.Families.Append("ecsnet_training_step_seconds"))
            Assert.Contains(named, n => n == family || n == family + "_bucket");
    }

    [Fact]
    public void The_dashboard_takes_its_prometheus_as_an_input()
    {
        var dashboard = JsonNode.Parse(File.ReadAllText(DashboardFile))!;
        var input = Assert.Single(dashboard["__inputs"]!.AsArray());
        Assert.Equal(("DS_PROMETHEUS", "datasource", "prometheus"),
            ((string?)input!["name"], (string?)input["type"], (string?)input["pluginId"]));
        var panels = dashboard["panels"]!.AsArray().Where(p => (string?)p!["type"] != "row").ToList();
        Assert.NotEmpty(panels);
        foreach (var panel in panels)
            foreach (var source in new[] { panel!["datasource"] }.Concat(panel["targets"]!.AsArray().Select(t => t!["datasource"])))
                Assert.Equal(("prometheus", "${DS_PROMETHEUS}"), ((string?)source!["type"], (string?)source["uid"]));
    }

    /// <summary>The PromQL of the panels' targets and of the template variables' queries.</summary>
    private static IEnumerable<string> Queries(JsonNode dashboard)
    {
        foreach (var panel in dashboard["panels"]!.AsArray())
            foreach (var target in panel!["targets"]?.AsArray() ?? new JsonArray())
                yield return (string)target!["expr"]!;
        foreach (var variable in dashboard["templating"]!["list"]!.AsArray())
            if ((string?)variable!["type"] == "query")
                yield return variable["query"] is JsonObject q ? (string)q["query"]! : (string)variable["query"]!;
    }

    /// <summary>
    /// The metric names of a PromQL expression (Prometheus docs, "Querying basics"): what is left once strings, label
    /// matchers, range selectors, grouping clauses, Grafana variables, function calls and operators' keywords are
    /// taken out. Grafana's <c>label_values(metric, label)</c> names only its metric.
    /// </summary>
    internal static IReadOnlySet<string> MetricNames(string expr)
    {
        var s = LabelValues().Replace(expr, "$1");
        s = QuotedString().Replace(s, " ");
        s = Braces().Replace(s, " ");
        s = Brackets().Replace(s, " ");
        s = Grouping().Replace(s, " ");
        s = Variable().Replace(s, " ");
        return Identifier().Matches(s).Select(m => m.Groups[1].Value)
            .Where(name => !Keywords.Contains(name)).ToHashSet(StringComparer.Ordinal);
    }

    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal) { "and", "or", "unless", "offset", "bool", "inf", "nan" };

    [GeneratedRegex(@"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,[^)]*\)")]
    private static partial Regex LabelValues();

    [GeneratedRegex("""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")]
    private static partial Regex QuotedString();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex Braces();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex Brackets();

    [GeneratedRegex(@"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")]
    private static partial Regex Grouping();

    [GeneratedRegex(@"\$\{?\w+\}?")]
    private static partial Regex Variable();

    /// <summary>A name not glued to a number (1e9) and not called (a function).</summary>
    [GeneratedRegex(@"(?<![\w.:])((?>[a-zA-Z_:][a-zA-Z0-9_:]*))(?!\s*\()")]
    private static partial Regex Identifier();
}
