namespace EcsNet.Core.Tests;

/// <summary>Reads the "name AxBxC" key listings in Fixtures/ (see Fixtures/make_weight_fixtures.py).</summary>
internal static class StateDictListing
{
    public static string FixturePath(string file) => Path.Combine(AppContext.BaseDirectory, "Fixtures", file);

    public static List<(string Name, long[] Shape)> Read(string file) =>
        File.ReadAllLines(FixturePath(file))
            .Where(line => line.Length > 0)
            .Select(line =>
            {
                var parts = line.Split(' ', 2);
                var shape = parts.Length < 2 || parts[1].Length == 0
                    ? Array.Empty<long>()
                    : parts[1].Split('x').Select(long.Parse).ToArray();
                return (parts[0], shape);
            })
            .ToList();
}
