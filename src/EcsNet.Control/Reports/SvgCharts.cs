using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using EcsNet.Data;

namespace EcsNet.Control.Reports;

/// <summary>
/// The report's inline SVG charts (no script, no external file): loss curves as one polyline per term with
/// axes, ticks and a legend, and per-class IoU as horizontal bars in the classes' VOC palette colours.
/// </summary>
internal static class SvgCharts
{
    /// <summary>Line colours (Tableau 10), one per loss term in log order.</summary>
    private static readonly string[] Colours =
    {
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    };

    private const int LegendWidth = 170;

    /// <summary>Loss terms of one stage against the step; up to 20 points per term are also marked.</summary>
    public static string LossChart(string stage, LossLog log)
    {
        var points = log.Terms.SelectMany(t => t.Points).ToList();
        var x = Scale.Nice(points.Min(p => p.Step), points.Max(p => p.Step), integer: true);
        var y = Scale.Nice(points.Min(p => p.Value), points.Max(p => p.Value));
        var plot = new Plot(Left: 64, Top: 14, Width: 520, Height: 220);
        var svg = Open(plot, LegendWidth, "loss-chart", stage, $"{stage} training loss terms by step");
        Axes(svg, plot, x, y, "step", "loss");
        for (int i = 0; i < log.Terms.Count; i++)
        {
            var term = log.Terms[i];
            var colour = Colours[i % Colours.Length];
            var coords = string.Join(' ', term.Points.Select(p => $"{N(plot.X(x, p.Step))},{N(plot.Y(y, p.Value))}"));
            svg.Append($"<polyline class=\"loss-line\" data-term=\"{E(term.Name)}\" points=\"{coords}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.6\"/>");
            if (term.Points.Count <= 20)
                foreach (var p in term.Points)
                    svg.Append($"<circle cx=\"{N(plot.X(x, p.Step))}\" cy=\"{N(plot.Y(y, p.Value))}\" r=\"2.5\" fill=\"{colour}\"/>");
            double ly = plot.Top + 8 + 18 * i;
            svg.Append($"<g class=\"legend\"><rect x=\"{N(plot.Right + 16)}\" y=\"{N(ly - 5)}\" width=\"14\" height=\"4\" fill=\"{colour}\"/>")
               .Append($"<text x=\"{N(plot.Right + 36)}\" y=\"{N(ly)}\">{E(term.Name)}</text></g>");
        }
        return svg.Append("</svg>").ToString();
    }

    /// <summary>One bar per class, IoU in percent on a 0–100 axis.</summary>
    public static string ClassIoUChart(string stage, IReadOnlyList<ClassIoU> classes)
    {
        const int row = 18;
        var plot = new Plot(Left: 110, Top: 8, Width: 360, Height: row * classes.Count);
        var x = new Scale(0, 100, 25);
        var svg = Open(plot, 60, "iou-chart", stage, $"{stage} IoU per class");
        XAxis(svg, plot, x, "IoU %");
        for (int i = 0; i < classes.Count; i++)
        {
            var c = classes[i];
            double top = plot.Top + row * i, percent = 100 * Math.Clamp(c.IoU, 0, 1);
            svg.Append($"<g class=\"iou-row\" data-class=\"{E(c.Class)}\">")
               .Append($"<text x=\"{N(plot.Left - 6)}\" y=\"{N(top + 13)}\" text-anchor=\"end\">{E(c.Class)}</text>")
               .Append($"<rect class=\"iou-bar\" x=\"{N(plot.Left)}\" y=\"{N(top + 3)}\" width=\"{N(plot.X(x, percent) - plot.Left)}\" height=\"{row - 6}\" fill=\"{Colour(c.Class)}\"/>")
               .Append($"<text x=\"{N(plot.X(x, percent) + 4)}\" y=\"{N(top + 13)}\">{N(percent, "0.0")}</text></g>");
        }
        return svg.Append("</svg>").ToString();
    }

    /// <summary>The class's VOC palette colour (background, black in the palette, and unknown names: grey).</summary>
    private static string Colour(string name)
    {
        int index = VocClasses.IndexOf(name);
        if (index <= 0)
            return "#808080";
        var (r, g, b) = VocClasses.Palette[index];
        return $"#{r:x2}{g:x2}{b:x2}";
    }

    /// <summary>The svg element of a chart whose plot area is <paramref name="plot"/>, with <paramref name="extraWidth"/> on its right.</summary>
    private static StringBuilder Open(Plot plot, int extraWidth, string cssClass, string stage, string label)
    {
        int width = (int)plot.Right + extraWidth, height = (int)plot.Bottom + 40;
        return new StringBuilder().Append(
            $"<svg class=\"{cssClass}\" data-stage=\"{E(stage)}\" role=\"img\" aria-label=\"{E(label)}\" " +
            $"width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-size=\"11\" font-family=\"sans-serif\">");
    }

    private static void Axes(StringBuilder svg, Plot plot, Scale x, Scale y, string xLabel, string yLabel)
    {
        XAxis(svg, plot, x, xLabel);
        svg.Append("<g class=\"y-axis\">");
        foreach (var v in y.Ticks())
        {
            var py = N(plot.Y(y, v));
            svg.Append($"<line x1=\"{N(plot.Left)}\" x2=\"{N(plot.Right)}\" y1=\"{py}\" y2=\"{py}\" stroke=\"#e4e4e4\"/>")
               .Append($"<text x=\"{N(plot.Left - 6)}\" y=\"{py}\" dy=\"4\" text-anchor=\"end\">{N(v, "G4")}</text>");
        }
        svg.Append($"<line x1=\"{N(plot.Left)}\" x2=\"{N(plot.Left)}\" y1=\"{N(plot.Top)}\" y2=\"{N(plot.Bottom)}\" stroke=\"#333\"/>")
           .Append($"<text transform=\"translate({N(plot.Left - 48)},{N(plot.Top + plot.Height / 2)}) rotate(-90)\" text-anchor=\"middle\">{E(yLabel)}</text></g>");
    }

    /// <summary>The bottom axis: a baseline, a tick and a label at each tick of <paramref name="x"/>, and the axis title.</summary>
    private static void XAxis(StringBuilder svg, Plot plot, Scale x, string label)
    {
        svg.Append("<g class=\"x-axis\">")
           .Append($"<line x1=\"{N(plot.Left)}\" x2=\"{N(plot.Right)}\" y1=\"{N(plot.Bottom)}\" y2=\"{N(plot.Bottom)}\" stroke=\"#333\"/>");
        foreach (var v in x.Ticks())
        {
            var px = N(plot.X(x, v));
            svg.Append($"<line x1=\"{px}\" x2=\"{px}\" y1=\"{N(plot.Bottom)}\" y2=\"{N(plot.Bottom + 4)}\" stroke=\"#333\"/>")
               .Append($"<text x=\"{px}\" y=\"{N(plot.Bottom + 16)}\" text-anchor=\"middle\">{N(v, "G6")}</text>");
        }
        svg.Append($"<text x=\"{N(plot.Left + plot.Width / 2)}\" y=\"{N(plot.Bottom + 32)}\" text-anchor=\"middle\">{E(label)}</text></g>");
    }

    private static string E(string text) => HtmlEncoder.Default.Encode(text);

    private static string N(double v, string format = "0.##") => v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>The plot area of a chart, in pixels.</summary>
    private sealed record Plot(double Left, double Top, double Width, double Height)
    {
        public double Right => Left + Width;
        public double Bottom => Top + Height;
        public double X(Scale s, double v) => Left + Width * (v - s.Min) / (s.Max - s.Min);
        public double Y(Scale s, double v) => Bottom - Height * (v - s.Min) / (s.Max - s.Min);
    }
}

/// <summary>An axis range with round ends and a round tick step (1, 2 or 5 times a power of ten).</summary>
internal sealed record Scale(double Min, double Max, double Step)
{
    /// <summary>A range that holds [lo, hi] with about <paramref name="ticks"/> steps; a single value gets a range around it.</summary>
    public static Scale Nice(double lo, double hi, bool integer = false, int ticks = 5)
    {
        if (!(hi > lo))
        {
            double pad = lo == 0 ? 1 : Math.Abs(lo) / 2;
            (lo, hi) = (lo - pad, hi + pad);
        }
        double raw = (hi - lo) / ticks, magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw))), unit = raw / magnitude;
        double step = (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * magnitude;
        if (integer)
            step = Math.Max(1, Math.Round(step));
        return new Scale(Math.Floor(lo / step) * step, Math.Ceiling(hi / step) * step, step);
    }

    /// <summary>Min, Min + Step, … up to Max (computed by multiplication, so no rounding drift).</summary>
    public IEnumerable<double> Ticks()
    {
        int count = (int)Math.Round((Max - Min) / Step);
        for (int i = 0; i <= count; i++)
            yield return Min + i * Step;
    }
}
