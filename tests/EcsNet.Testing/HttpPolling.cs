using System.Net;

namespace EcsNet.Testing;

/// <summary>Asks an HTTP endpoint whose answer follows state that settles a moment later (a health probe fed by events).</summary>
public static class HttpPolling
{
    /// <summary>
    /// GETs <paramref name="url"/> until it answers <paramref name="wanted"/> or <paramref name="within"/> has passed;
    /// returns the last status and body, so the caller's assertion shows what the endpoint said last.
    /// </summary>
    public static async Task<(HttpStatusCode Status, string Body)> GetUntil(HttpClient http, string url, HttpStatusCode wanted, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            using var response = await http.GetAsync(url);
            var body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == wanted || DateTime.UtcNow >= deadline)
                return (response.StatusCode, body);
            await Task.Delay(100);
        }
    }
}
