using System.Text.Json;
using static TorchSharp.torch;

namespace EcsNet.Core.Tests;

/// <summary>
/// Compares a trunk's stage outputs with the reference implementation's: both get every weight from the same
/// formula (mirrors formula_weight / formula_input in Fixtures/make_weight_fixtures.py), and the reference's
/// outputs were summarised into Fixtures/*-forward.json by that script.
/// </summary>
internal static class ReferenceForward
{
    public static void FillWithFormula(nn.Module module)
    {
        var sd = module.state_dict();
        var order = sd.Keys.Order(StringComparer.Ordinal).ToList();
        using var _ = no_grad();
        foreach (var (name, t) in sd)
        {
            using var scope = NewDisposeScope();
            t.copy_(Weight(name, t.shape, order.IndexOf(name)));
        }
    }

    private static Tensor Weight(string name, long[] shape, int k)
    {
        if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) return zeros(shape, int64);
        var j = arange(shape.Aggregate(1L, (a, b) => a * b), dtype: float64);
        var last = name[(name.LastIndexOf('.') + 1)..];
        Tensor v;
        if (shape.Length == 4) v = (0.37 * j + k).sin() * Math.Sqrt(3.0 / (shape[1] * shape[2] * shape[3]));
        else if (last == "running_mean") v = 0.05 * (2 * j + k).sin();
        else if (last == "running_var") v = 1 + 0.25 * (1 + (3 * j + k).sin());
        else if (last == "weight") v = 1 + 0.1 * (j + k).sin();
        else v = 0.1 * (j + k).cos();
        return v.to(float32).reshape(shape);
    }

    public static Tensor Input(params long[] shape)
    {
        var j = arange(shape.Aggregate(1L, (a, b) => a * b), dtype: float64);
        return (0.01 * j + 0.5).sin().to(float32).reshape(shape);
    }

    /// <summary>Asserts <paramref name="ours"/> matches the summary <paramref name="key"/> in <paramref name="file"/>.</summary>
    public static void AssertMatches(string file, string key, Tensor ours)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(StateDictListing.FixturePath(file)));
        var r = doc.RootElement.GetProperty(key);
        Assert.Equal(r.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()), ours.shape);
        using var scope = NewDisposeScope();
        var flat = ours.detach().to(float64).reshape(-1);
        long n = flat.numel();
        double absSum = r.GetProperty("abs_sum").GetDouble();
        double sumTol = 1e-5 * absSum;
        Assert.InRange(flat.sum().item<double>(), r.GetProperty("sum").GetDouble() - sumTol, r.GetProperty("sum").GetDouble() + sumTol);
        Assert.InRange(flat.abs().sum().item<double>(), absSum - sumTol, absSum + sumTol);
        var weighted = (flat * (0.1 * arange(n, dtype: float64)).sin()).sum().item<double>();
        Assert.InRange(weighted, r.GetProperty("weighted_sum").GetDouble() - sumTol, r.GetProperty("weighted_sum").GetDouble() + sumTol);
        double max = r.GetProperty("max").GetDouble();
        Assert.InRange(flat.max().item<double>(), max * (1 - 1e-4), max * (1 + 1e-4));
        var indices = r.GetProperty("indices").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var values = r.GetProperty("values").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < indices.Length; i++)
            Assert.InRange(flat[indices[i]].item<double>(), values[i] - 1e-4 * max, values[i] + 1e-4 * max);
    }
}
