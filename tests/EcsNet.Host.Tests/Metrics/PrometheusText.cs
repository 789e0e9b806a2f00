using System.Globalization;
using System.Text.RegularExpressions;

namespace EcsNet.Host.Tests.Metrics;

/// <summary>One sample line of a scrape: <c>name{label="value",...} value</c>.</summary>
internal sealed record PromSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>
/// A scrape of <c>/metrics</c> read as the Prometheus text exposition format (version 0.0.4): <c># TYPE</c> lines name
/// the families, the other non-comment lines are samples. Every line must parse, so a malformed exposition fails.
/// </summary>
internal sealed partial class PrometheusText
{
    private PrometheusText(Dictionary<string, string> types, List<PromSample> samples)
    {
        Types = types;
        Samples = samples;
    }

    /// <summary>Family name → type (counter, gauge, histogram, summary, untyped).</summary>
    public IReadOnlyDictionary<string, string> Types { get; }

    public IReadOnlyList<PromSample> Samples { get; }

    /// <summary>The names of the samples (a histogram's <c>_bucket</c>, <c>_sum</c> and <c>_count</c>).</summary>
    public IReadOnlySet<string> SampleNames => Samples.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>The sum of the samples of <paramref name="name"/> that carry every label of <paramref name="labels"/> (0 when none does).</summary>
    public double Value(string name, params (string Label, string Value)[] labels) =>
        Samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Label, out var v) && v == l.Value)).Sum(s => s.Value);

    public static async Task<PrometheusText> ScrapeAsync(string baseUrl)
    {
        using var http = new HttpClient();
        using var response = await http.GetAsync(baseUrl.TrimEnd('/') + NodeMetrics.Path);
        response.EnsureSuccessStatusCode();
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        return Parse(await response.Content.ReadAsStringAsync());
    }

    public static PrometheusText Parse(string text)
    {
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var samples = new List<PromSample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line.StartsWith("# HELP ", StringComparison.Ordinal))
                continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.True(parts.Length == 4, $"bad TYPE line: {line}");
                Assert.True(types.TryAdd(parts[2], parts[3]), $"family {parts[2]} is declared twice");
                continue;
            }
            var m = SampleLine().Match(line);
            Assert.True(m.Success, $"not a sample line: {line}");
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match l in LabelPair().Matches(m.Groups["labels"].Value))
                labels[l.Groups[1].Value] = Regex.Unescape(l.Groups[2].Value);
            samples.Add(new PromSample(m.Groups["name"].Value, labels, Number(m.Groups["value"].Value)));
        }
        return new PrometheusText(types, samples);
    }

    private static double Number(string s) => s switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)( -?\d+)?$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex("""([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?""")]
    private static partial Regex LabelPair();
}
