using System.Net;
using System.Text.RegularExpressions;

namespace EcsNet.Control.Tests.Reports;

/// <summary>
/// Finds the report's elements by their ids and classes (docs/REPORT.md) in its HTML, or in the DOM Chromium
/// serialises after loading it (attributes keep their order; empty SVG elements get a closing tag).
/// </summary>
internal static class ReportHtml
{
    /// <summary>The text of the section with <paramref name="id"/>, up to its end.</summary>
    public static string Section(string html, string id)
    {
        int at = html.IndexOf($"id=\"{id}\"", StringComparison.Ordinal);
        Assert.True(at >= 0, $"no element with id=\"{id}\" in the page");
        int end = html.IndexOf("</section>", at, StringComparison.Ordinal);
        return end < 0 ? html[at..] : html[at..end];
    }

    /// <summary>Each svg element of <paramref name="cssClass"/> by its data-stage.</summary>
    public static Dictionary<string, string> Charts(string html, string cssClass) =>
        Regex.Matches(html, $"<svg[^>]*class=\"{cssClass}\"[^>]*>.*?</svg>", RegexOptions.Singleline)
            .ToDictionary(m => Attribute(m.Value, "data-stage"), m => m.Value);

    /// <summary>The opening tags of the <paramref name="tag"/> elements whose class is <paramref name="cssClass"/>.</summary>
    public static List<string> Elements(string html, string tag, string cssClass) =>
        Regex.Matches(html, $"<{tag}\\b[^>]*class=\"{cssClass}\"[^>]*>").Select(m => m.Value).ToList();

    /// <summary>An attribute of an opening tag, HTML-decoded ("" when absent).</summary>
    public static string Attribute(string element, string name) =>
        WebUtility.HtmlDecode(Regex.Match(element, $"\\b{name}=\"([^\"]*)\"").Groups[1].Value);

    /// <summary>The stage table's cells (decoded text) by stage, in table order.</summary>
    public static List<(string Stage, string[] Cells)> StageRows(string html) =>
        Regex.Matches(Section(html, "stages"), "<tr data-stage=\"([^\"]*)\">(.*?)</tr>", RegexOptions.Singleline)
            .Select(m => (m.Groups[1].Value, Regex.Matches(m.Groups[2].Value, "<td[^>]*>(.*?)</td>", RegexOptions.Singleline)
                .Select(c => WebUtility.HtmlDecode(c.Groups[1].Value)).ToArray()))
            .ToList();

    /// <summary>The number of "x,y" pairs in a polyline's points.</summary>
    public static int PointCount(string polyline) =>
        Attribute(polyline, "points").Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
}
