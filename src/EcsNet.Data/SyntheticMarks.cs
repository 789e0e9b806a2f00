namespace EcsNet.Data;

/// <summary>
/// The <see cref="SynthFamily.Marks"/> generator: a second synthetic family whose class evidence is spread
/// over two cues of different reliability, on scenes with distractors. Each object is an ellipse body whose
/// stripes (orientation and period fixed per class, in image axes) carry the class, plus a small mark inside
/// the body; for half the classes the mark's colour names the class (its shape is random), for the other half
/// its shape does (its colour is a neutral shared one). Unlabelled clutter of random shape and colour, some of
/// it striped, lies behind the objects and sometimes in front of them (partial occlusion); objects may run off
/// the border; body sizes span a wider range than <see cref="SynthFamily.Parts"/>. Images are never square,
/// each side drawn from [MinSide, MaxSide]. All of it is a project choice, not from the paper: it makes a
/// plain CAM's job harder in ways real photos do (a distractor that looks like the cue, a cue that is hidden
/// or cut off, objects of very different sizes).
/// </summary>
internal static class SyntheticMarks
{
    private const int ShapeCount = 6; // disc, square, triangle, diamond, cross, ring

    /// <summary>Neutral mark colours shared by the shape-coded classes (so their colour says nothing).</summary>
    private static readonly (double R, double G, double B)[] Neutrals = { (235, 235, 230), (30, 30, 35) };

    private static readonly (double R, double G, double B)[] Furs = { (150, 118, 84), (128, 124, 120), (170, 150, 118), (110, 92, 78) };

    /// <summary>Whether class number <paramref name="k"/> (its position in the class list) is named by its mark's colour; otherwise by its shape.</summary>
    public static bool ColourCoded(int k) => k % 2 == 0;

    public static SyntheticImage Render(string id, int seed, SynthOptions o)
    {
        var rng = new Random(seed);
        int w = rng.Next(o.MinSide, o.MaxSide + 1), h;
        do h = rng.Next(o.MinSide, o.MaxSide + 1); while (h == w);

        var image = SyntheticVoc.Background(w, h, rng);
        int behind = rng.Next(2, 6);
        var clutter = new bool[w * h];
        for (int i = 0; i < behind; i++)
            Clutter.Draw(w, h, rng).Paint(image, clutter, w, h, rng);

        var objects = new List<Creature>();
        int wanted = rng.Next(o.MinObjects, o.MaxObjects + 1);
        for (int n = 0; n < wanted; n++)
            for (int attempt = 0; attempt < 40; attempt++)
            {
                var c = Creature.Draw(w, h, o, rng);
                if (Acceptable(objects.Append(c).ToList(), new List<Clutter>(), w, h, newObject: true))
                {
                    objects.Add(c);
                    break;
                }
            }
        if (objects.Count == 0)
            objects.Add(Creature.Centred(w, h, o, rng));

        // Occluders: clutter in front of the objects, kept only where every object stays recognisable.
        var front = new List<Clutter>();
        int wantedFront = rng.Next(0, 3);
        for (int n = 0; n < wantedFront; n++)
            for (int attempt = 0; attempt < 20; attempt++)
            {
                var c = Clutter.Draw(w, h, rng);
                if (Acceptable(objects, front.Append(c).ToList(), w, h, newObject: false))
                {
                    front.Add(c);
                    break;
                }
            }

        var (owner, onMark) = Stamp(objects, front, w, h);
        var mask = new byte[w * h];
        var parts = new byte[w * h];
        var instances = new byte[w * h];
        for (int p = 0; p < owner.Length; p++)
        {
            if (owner[p] < 0)
                continue;
            clutter[p] = false; // an object covers the clutter behind it
            var c = objects[owner[p]];
            mask[p] = (byte)c.ClassIndex;
            instances[p] = (byte)(owner[p] + 1);
            if (onMark[p])
                parts[p] = (byte)c.ClassIndex;
            var (r, g, b) = onMark[p] ? c.MarkTone : c.BodyColour(p % w, p / w);
            SyntheticVoc.Put(image, p, r + SyntheticVoc.Noise(rng, 5), g + SyntheticVoc.Noise(rng, 5), b + SyntheticVoc.Noise(rng, 5));
        }
        foreach (var c in front)
            c.Paint(image, clutter, w, h, rng);

        var found = new List<SynthObject>();
        for (int k = 0; k < objects.Count; k++)
        {
            int minX = w, minY = h, maxX = -1, maxY = -1, count = 0, markCount = 0;
            for (int p = 0; p < owner.Length; p++)
            {
                if (owner[p] != k)
                    continue;
                int x = p % w, y = p / w;
                count++;
                if (onMark[p])
                    markCount++;
                minX = Math.Min(minX, x); maxX = Math.Max(maxX, x);
                minY = Math.Min(minY, y); maxY = Math.Max(maxY, y);
            }
            bool truncated = minX == 0 || minY == 0 || maxX == w - 1 || maxY == h - 1;
            found.Add(new SynthObject(objects[k].ClassIndex, new PixelBox(minX, minY, maxX - minX + 1, maxY - minY + 1), count, markCount, truncated));
        }
        return new SyntheticImage(id, new RgbImage(w, h, image), new LabelMask(w, h, mask), new LabelMask(w, h, parts), found)
        {
            Instances = new LabelMask(w, h, instances),
            Clutter = new LabelMask(w, h, clutter.Select(v => (byte)(v ? 1 : 0)).ToArray()),
        };
    }

    /// <summary>Owner of each pixel (object index or −1) after the objects in order and the front clutter over them.</summary>
    private static (int[] Owner, bool[] OnMark) Stamp(List<Creature> objects, List<Clutter> front, int w, int h)
    {
        var owner = new int[w * h];
        var onMark = new bool[w * h];
        Array.Fill(owner, -1);
        for (int k = 0; k < objects.Count; k++)
            objects[k].Stamp(owner, onMark, k, w, h);
        foreach (var c in front)
            c.Clear(owner, w, h);
        return (owner, onMark);
    }

    /// <summary>
    /// Every object keeps ≥ 45 % of its body's full area in view and ≥ 50 % (and ≥ 6 px) of its mark; a newly
    /// drawn object must itself show ≥ 55 % (it may run off the border by the rest).
    /// </summary>
    private static bool Acceptable(List<Creature> objects, List<Clutter> front, int w, int h, bool newObject)
    {
        var (owner, onMark) = Stamp(objects, front, w, h);
        var visible = new int[objects.Count];
        var visibleMark = new int[objects.Count];
        for (int p = 0; p < owner.Length; p++)
        {
            if (owner[p] < 0)
                continue;
            visible[owner[p]]++;
            if (onMark[p])
                visibleMark[owner[p]]++;
        }
        for (int k = 0; k < objects.Count; k++)
        {
            double needArea = newObject && k == objects.Count - 1 ? 0.55 : 0.45;
            if (visible[k] < needArea * objects[k].FullArea || visibleMark[k] < 0.5 * objects[k].FullMarkArea || visibleMark[k] < 6)
                return false;
        }
        return true;
    }

    /// <summary>Whether (dx, dy), in the shape's own frame, lies in shape <paramref name="kind"/> of radius r.</summary>
    private static bool InShape(int kind, double dx, double dy, double r)
    {
        double ax = Math.Abs(dx), ay = Math.Abs(dy), d2 = dx * dx + dy * dy;
        return kind switch
        {
            0 => d2 <= r * r,
            1 => ax <= 0.8 * r && ay <= 0.8 * r,
            2 => dy >= -r && dy <= 0.7 * r && ax <= (dy + r) / 1.7,
            3 => ax + ay <= r,
            4 => (ax <= 0.3 * r && ay <= r) || (ay <= 0.3 * r && ax <= r),
            _ => d2 <= r * r && d2 >= 0.25 * r * r,
        };
    }

    private static int CountInShape(int kind, double r, double cos, double sin)
    {
        int n = 0, reach = (int)Math.Ceiling(r) + 1;
        for (int y = -reach; y <= reach; y++)
            for (int x = -reach; x <= reach; x++)
                if (InShape(kind, x * cos + y * sin, -x * sin + y * cos, r))
                    n++;
        return n;
    }

    /// <summary>A striped ellipse body with a small mark inside it.</summary>
    private sealed class Creature
    {
        public int ClassIndex;
        public (double R, double G, double B) MarkTone;
        public int FullArea, FullMarkArea;
        private double centreX, centreY, semiMajor, semiMinor, cos, sin;
        private double markX, markY, markRadius, markCos, markSin;
        private int markShape;
        private (double R, double G, double B) bodyTone;
        private double stripeCos, stripeSin, stripePeriod, stripePhase;

        public static Creature Draw(int w, int h, SynthOptions o, Random rng)
        {
            // A wider scale range than the parts family: 0.6× its smallest to 1.3× its largest body (≤ 0.5).
            double shortSide = Math.Min(w, h);
            double lo = 0.6 * o.MinBody, hi = Math.Min(0.5, 1.3 * o.MaxBody);
            double a = shortSide * (lo + (hi - lo) * rng.NextDouble());
            double b = a * (0.5 + 0.3 * rng.NextDouble());
            // The centre may lie up to a fifth of the axis outside the image frame's inner margin: objects meet the border.
            double cx = -0.2 * a + rng.NextDouble() * (w + 0.4 * a);
            double cy = -0.2 * a + rng.NextDouble() * (h + 0.4 * a);
            return Build(cx, cy, a, b, rng.NextDouble() * Math.PI, o, rng);
        }

        public static Creature Centred(int w, int h, SynthOptions o, Random rng)
        {
            double a = Math.Min(w, h) * 0.3;
            return Build(w / 2.0, h / 2.0, a, a * 0.6, 0, o, rng);
        }

        private static Creature Build(double cx, double cy, double a, double b, double angle, SynthOptions o, Random rng)
        {
            int k = rng.Next(o.Classes.Count), n = o.Classes.Count;
            var c = new Creature
            {
                ClassIndex = o.Classes[k],
                centreX = cx, centreY = cy, semiMajor = a, semiMinor = b, cos = Math.Cos(angle), sin = Math.Sin(angle),
                markRadius = Math.Max(3, o.PartRadius * b * 0.8),
                // Class stripes: orientation spread over half a turn, period 4, 6 or 8 px, both in image axes.
                stripeCos = Math.Cos(Math.PI * k / n), stripeSin = Math.Sin(Math.PI * k / n),
                stripePeriod = 4 + 2 * (k % 3),
                stripePhase = rng.NextDouble() * 2 * Math.PI,
            };
            double markAngle = (rng.NextDouble() - 0.5) * 0.7; // a slight tilt, up to ±20°
            c.markCos = Math.Cos(markAngle);
            c.markSin = Math.Sin(markAngle);
            if (ColourCoded(k))
            {
                c.markShape = rng.Next(ShapeCount);
                c.MarkTone = SyntheticVoc.Hsv((double)k / n, 0.9, 0.95);
            }
            else
            {
                c.markShape = (k / 2) % ShapeCount;
                c.MarkTone = Neutrals[rng.Next(Neutrals.Length)];
            }
            // The mark sits anywhere well inside the body.
            double t = 2 * Math.PI * rng.NextDouble(), s = Math.Sqrt(rng.NextDouble()) * 0.6;
            double u = s * Math.Max(0, a - c.markRadius) * Math.Cos(t), v = s * Math.Max(0, b - c.markRadius) * Math.Sin(t);
            c.markX = cx + u * c.cos - v * c.sin;
            c.markY = cy + u * c.sin + v * c.cos;
            var fur = Furs[rng.Next(Furs.Length)];
            double jitter() => (rng.NextDouble() - 0.5) * 24;
            c.bodyTone = (fur.R + jitter(), fur.G + jitter(), fur.B + jitter());
            c.FullArea = c.CountFull(out c.FullMarkArea);
            return c;
        }

        private bool InBody(double x, double y)
        {
            double dx = x - centreX, dy = y - centreY;
            double u = dx * cos + dy * sin, v = -dx * sin + dy * cos;
            return u * u / (semiMajor * semiMajor) + v * v / (semiMinor * semiMinor) <= 1;
        }

        private bool InMark(double x, double y)
        {
            double dx = x - markX, dy = y - markY;
            return InShape(markShape, dx * markCos + dy * markSin, -dx * markSin + dy * markCos, markRadius);
        }

        /// <summary>Pixels of the whole object and of its mark on an unbounded canvas (before the border and occluders cut them).</summary>
        private int CountFull(out int mark)
        {
            int all = 0;
            mark = 0;
            int x0 = (int)Math.Floor(centreX - semiMajor) - 1, x1 = (int)Math.Ceiling(centreX + semiMajor) + 1;
            int y0 = (int)Math.Floor(centreY - semiMajor) - 1, y1 = (int)Math.Ceiling(centreY + semiMajor) + 1;
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++)
                {
                    if (!InBody(x + 0.5, y + 0.5))
                        continue;
                    all++;
                    if (InMark(x + 0.5, y + 0.5))
                        mark++;
                }
            return all;
        }

        public void Stamp(int[] owner, bool[] onMark, int id, int w, int h)
        {
            int x0 = Math.Max(0, (int)(centreX - semiMajor) - 1), x1 = Math.Min(w - 1, (int)(centreX + semiMajor) + 1);
            int y0 = Math.Max(0, (int)(centreY - semiMajor) - 1), y1 = Math.Min(h - 1, (int)(centreY + semiMajor) + 1);
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++)
                {
                    double sx = x + 0.5, sy = y + 0.5;
                    if (!InBody(sx, sy))
                        continue;
                    owner[y * w + x] = id;
                    onMark[y * w + x] = InMark(sx, sy); // the mark lies inside the body: never outside the mask
                }
        }

        /// <summary>The body's fur modulated by the class's stripes (a smoothed square wave, ±25 %).</summary>
        public (double, double, double) BodyColour(int x, int y)
        {
            double along = (x + 0.5) * stripeCos + (y + 0.5) * stripeSin;
            double m = 1 + 0.25 * Math.Tanh(3 * Math.Sin(2 * Math.PI * along / stripePeriod + stripePhase));
            return (bodyTone.R * m, bodyTone.G * m, bodyTone.B * m);
        }
    }

    /// <summary>An unlabelled shape: random kind, size, colour and tilt; a third are striped like a body.</summary>
    private sealed class Clutter
    {
        private double x, y, radius, cos, sin, stripeCos, stripeSin, stripePeriod;
        private int kind;
        private bool striped;
        private (double R, double G, double B) tone;

        public static Clutter Draw(int w, int h, Random rng)
        {
            double angle = rng.NextDouble() * Math.PI, stripeAngle = rng.NextDouble() * Math.PI;
            return new Clutter
            {
                x = rng.NextDouble() * w, y = rng.NextDouble() * h,
                radius = Math.Min(w, h) * (0.04 + 0.12 * rng.NextDouble()),
                cos = Math.Cos(angle), sin = Math.Sin(angle),
                kind = rng.Next(ShapeCount),
                tone = SyntheticVoc.Hsv(rng.NextDouble(), rng.NextDouble(), 0.2 + 0.75 * rng.NextDouble()),
                striped = rng.Next(3) == 0,
                stripeCos = Math.Cos(stripeAngle), stripeSin = Math.Sin(stripeAngle),
                stripePeriod = 3 + 6 * rng.NextDouble(),
            };
        }

        private IEnumerable<int> Pixels(int w, int h)
        {
            int x0 = Math.Max(0, (int)(x - radius) - 1), x1 = Math.Min(w - 1, (int)(x + radius) + 1);
            int y0 = Math.Max(0, (int)(y - radius) - 1), y1 = Math.Min(h - 1, (int)(y + radius) + 1);
            for (int py = y0; py <= y1; py++)
                for (int px = x0; px <= x1; px++)
                {
                    double dx = px + 0.5 - x, dy = py + 0.5 - y;
                    if (InShape(kind, dx * cos + dy * sin, -dx * sin + dy * cos, radius))
                        yield return py * w + px;
                }
        }

        public void Clear(int[] owner, int w, int h)
        {
            foreach (int p in Pixels(w, h))
                owner[p] = -1;
        }

        public void Paint(byte[] image, bool[] clutter, int w, int h, Random rng)
        {
            foreach (int p in Pixels(w, h))
            {
                double m = 1;
                if (striped)
                {
                    double along = (p % w + 0.5) * stripeCos + (p / w + 0.5) * stripeSin;
                    m = 1 + 0.25 * Math.Tanh(3 * Math.Sin(2 * Math.PI * along / stripePeriod));
                }
                SyntheticVoc.Put(image, p, tone.R * m + SyntheticVoc.Noise(rng, 5), tone.G * m + SyntheticVoc.Noise(rng, 5), tone.B * m + SyntheticVoc.Noise(rng, 5));
                clutter[p] = true;
            }
        }
    }
}
