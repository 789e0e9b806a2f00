using System.Globalization;
using System.Xml.Linq;

namespace EcsNet.Data;

/// <summary>One generated object: its class, where its visible pixels are, and how many belong to its part.</summary>
public sealed record SynthObject(int ClassIndex, PixelBox Box, int Pixels, int PartPixels, bool Truncated);

/// <summary>A generated picture with its ground truth. <see cref="Parts"/> marks the discriminative parts by class.</summary>
public sealed record SyntheticImage(string Id, RgbImage Image, LabelMask Mask, LabelMask Parts, IReadOnlyList<SynthObject> Objects)
{
    /// <summary>VOC SegmentationObject-style instance mask (object k of <see cref="Objects"/> is k + 1), or null where the family writes none.</summary>
    public LabelMask? Instances { get; init; }

    /// <summary>1 where unlabelled clutter shows (background in <see cref="Mask"/>), or null where the family has none.</summary>
    public LabelMask? Clutter { get; init; }

    public IReadOnlySet<int> Labels => new SortedSet<int>(Objects.Select(o => o.ClassIndex));
}

/// <summary>What <see cref="SyntheticVoc.Generate"/> wrote.</summary>
/// <param name="Root">The VOC2012 folder.</param>
/// <param name="ImagesPerClass">21 entries: images (train + val) holding class c.</param>
public sealed record SynthResult(string Root, IReadOnlyList<string> TrainIds, IReadOnlyList<string> ValIds, IReadOnlyList<int> ImagesPerClass);

/// <summary>
/// A synthetic PASCAL-VOC-layout data set built as a test bed for weak supervision. Each object is a large
/// textured ellipse "body" whose look is shared by all classes (only a mild tint differs) plus a small disc
/// "part" at one end in a saturated class-specific colour and pattern. A classifier trained on image labels
/// can find the class from the part alone, so a plain CAM covers the part; once the part is erased, only the
/// body is left to find, which is what ECS-Net's erase-and-relearn exploits. Masks mark body and part with
/// the class. 1–3 objects per image, later ones may partly cover earlier ones (each stays at least half
/// visible with its part mostly visible), on textured noisy backgrounds of muted colours.
/// Layout written: OUT/VOC2012/{JPEGImages, Annotations, SegmentationClass, ImageSets/Segmentation/{train,val,trainval}.txt}
/// plus SyntheticParts/ (palette PNGs of the parts only, for analysis; not part of VOC).
/// </summary>
public static class SyntheticVoc
{
    public const string PartsFolder = "SyntheticParts";

    /// <summary>VOC's per-instance mask folder (written by <see cref="SynthFamily.Marks"/>).</summary>
    public const string ObjectsFolder = "SegmentationObject";

    /// <summary>Writes the data set under <paramref name="outDir"/>/VOC2012 and returns what it holds.</summary>
    public static SynthResult Generate(string outDir, SynthOptions options, IProgress<int>? progress = null)
    {
        options.Validate();
        var root = Path.Combine(Path.GetFullPath(outDir), "VOC2012");
        foreach (var dir in new[] { VocLayout.Images, VocLayout.Annotations, VocLayout.SegmentationMasks, VocLayout.SegmentationLists, PartsFolder })
            Directory.CreateDirectory(Path.Combine(root, dir));
        if (options.Family == SynthFamily.Marks)
            Directory.CreateDirectory(Path.Combine(root, ObjectsFolder));
        var layout = new VocLayout(root);

        int total = options.TrainImages + options.ValImages;
        var labels = new IReadOnlySet<int>[total];
        int done = 0;
        Parallel.For(0, total, i =>
        {
            var s = Render(i, options);
            ImageCodec.WriteRgbJpeg(layout.ImagePath(s.Id), s.Image, options.JpegQuality);
            ImageCodec.WriteLabelPng(layout.MaskPath(s.Id), s.Mask);
            ImageCodec.WriteLabelPng(layout.MaskPath(s.Id, PartsFolder), s.Parts);
            if (s.Instances is { } instances)
                ImageCodec.WriteLabelPng(layout.MaskPath(s.Id, ObjectsFolder), instances);
            Annotation(s).Save(layout.AnnotationPath(s.Id));
            labels[i] = s.Labels;
            progress?.Report(Interlocked.Increment(ref done));
        });

        var ids = Enumerable.Range(0, total).Select(IdOf).ToList();
        var train = ids.Take(options.TrainImages).ToList();
        var val = ids.Skip(options.TrainImages).ToList();
        var lists = Path.Combine(root, VocLayout.SegmentationLists);
        File.WriteAllLines(Path.Combine(lists, "train.txt"), train);
        File.WriteAllLines(Path.Combine(lists, "val.txt"), val);
        File.WriteAllLines(Path.Combine(lists, "trainval.txt"), ids);

        var perClass = new int[VocClasses.Count];
        foreach (var set in labels)
            foreach (int c in set)
                perClass[c]++;
        return new SynthResult(root, train, val, perClass);
    }

    public static string IdOf(int index) => $"synth_{index:D6}";

    /// <summary>Renders image <paramref name="index"/> of the set in memory (the same pixels Generate writes).</summary>
    public static SyntheticImage Render(int index, SynthOptions options)
    {
        options.Validate();
        if (options.Family == SynthFamily.Marks)
            return SyntheticMarks.Render(IdOf(index), MixSeed(options.Seed, index), options);
        var rng = new Random(MixSeed(options.Seed, index));
        int shortSide = (int)Math.Round(options.Size * (0.75 + 0.25 * rng.NextDouble()));
        var (w, h) = rng.Next(2) == 0 ? (options.Size, shortSide) : (shortSide, options.Size);

        var image = Background(w, h, rng);
        var placed = Place(w, h, options, rng);

        // Owner map: later objects cover earlier ones; a part covers its own body.
        var owner = new int[w * h];
        var onPart = new bool[w * h];
        Array.Fill(owner, -1);
        for (int k = 0; k < placed.Count; k++)
            placed[k].Stamp(owner, onPart, k, w, h);

        var mask = new byte[w * h];
        var parts = new byte[w * h];
        for (int p = 0; p < owner.Length; p++)
        {
            if (owner[p] < 0)
                continue;
            var shape = placed[owner[p]];
            int x = p % w, y = p / w;
            mask[p] = (byte)shape.ClassIndex;
            if (onPart[p])
                parts[p] = (byte)shape.ClassIndex;
            var (r, g, b) = onPart[p] ? shape.PartColour(x, y) : shape.BodyColour(x, y);
            Put(image, p, r + Noise(rng, 5), g + Noise(rng, 5), b + Noise(rng, 5));
        }

        var objects = new List<SynthObject>();
        for (int k = 0; k < placed.Count; k++)
        {
            int minX = w, minY = h, maxX = -1, maxY = -1, count = 0, partCount = 0;
            for (int p = 0; p < owner.Length; p++)
            {
                if (owner[p] != k)
                    continue;
                int x = p % w, y = p / w;
                count++;
                if (onPart[p])
                    partCount++;
                minX = Math.Min(minX, x); maxX = Math.Max(maxX, x);
                minY = Math.Min(minY, y); maxY = Math.Max(maxY, y);
            }
            bool truncated = minX == 0 || minY == 0 || maxX == w - 1 || maxY == h - 1;
            objects.Add(new SynthObject(placed[k].ClassIndex, new PixelBox(minX, minY, maxX - minX + 1, maxY - minY + 1), count, partCount, truncated));
        }
        return new SyntheticImage(IdOf(index), new RgbImage(w, h, image), new LabelMask(w, h, mask), new LabelMask(w, h, parts), objects);
    }

    /// <summary>A VOC-style annotation: size, and per object its name and 1-based bounding box.</summary>
    internal static XDocument Annotation(SyntheticImage s) => new(
        new XElement("annotation",
            new XElement("folder", "VOC2012"),
            new XElement("filename", s.Id + ".jpg"),
            new XElement("source", new XElement("database", "EcsNet synthetic VOC")),
            new XElement("size",
                new XElement("width", s.Image.Width), new XElement("height", s.Image.Height), new XElement("depth", 3)),
            new XElement("segmented", 1),
            s.Objects.Select(o => new XElement("object",
                new XElement("name", VocClasses.Names[o.ClassIndex]),
                new XElement("pose", "Unspecified"),
                new XElement("truncated", o.Truncated ? 1 : 0),
                new XElement("difficult", 0),
                new XElement("bndbox",
                    new XElement("xmin", (o.Box.X + 1).ToString(CultureInfo.InvariantCulture)),
                    new XElement("ymin", (o.Box.Y + 1).ToString(CultureInfo.InvariantCulture)),
                    new XElement("xmax", (o.Box.X + o.Box.Width).ToString(CultureInfo.InvariantCulture)),
                    new XElement("ymax", (o.Box.Y + o.Box.Height).ToString(CultureInfo.InvariantCulture)))))));

    // ---- placement -------------------------------------------------------------------------------------

    private static List<Creature> Place(int w, int h, SynthOptions o, Random rng)
    {
        int wanted = rng.Next(o.MinObjects, o.MaxObjects + 1);
        var placed = new List<Creature>();
        for (int n = 0; n < wanted; n++)
        {
            for (int attempt = 0; attempt < 40; attempt++)
            {
                var c = Creature.Draw(w, h, o, rng);
                if (Acceptable(placed, c, w, h))
                {
                    placed.Add(c);
                    break;
                }
            }
        }
        if (placed.Count == 0)
        {
            // Tiny images can defeat the random draws: fall back to one centred, medium object.
            placed.Add(Creature.Centred(w, h, o, rng));
        }
        return placed;
    }

    /// <summary>
    /// The new object must lie mostly inside the image (≥ 70 % of its area, ≥ 85 % of its part) and must
    /// leave every earlier object at least half visible with ≥ 70 % of its part showing.
    /// </summary>
    private static bool Acceptable(List<Creature> placed, Creature candidate, int w, int h)
    {
        var all = new List<Creature>(placed) { candidate };
        var owner = new int[w * h];
        var onPart = new bool[w * h];
        Array.Fill(owner, -1);
        for (int k = 0; k < all.Count; k++)
            all[k].Stamp(owner, onPart, k, w, h);
        var visible = new int[all.Count];
        var visiblePart = new int[all.Count];
        for (int p = 0; p < owner.Length; p++)
        {
            if (owner[p] < 0)
                continue;
            visible[owner[p]]++;
            if (onPart[p])
                visiblePart[owner[p]]++;
        }
        for (int k = 0; k < all.Count; k++)
        {
            bool isNew = k == all.Count - 1;
            double needArea = isNew ? 0.7 : 0.5, needPart = isNew ? 0.85 : 0.7;
            if (visible[k] < needArea * all[k].Area || visiblePart[k] < needPart * all[k].PartArea || visiblePart[k] < 4)
                return false;
        }
        return true;
    }

    /// <summary>An ellipse body with a disc part at one end of its major axis.</summary>
    private sealed class Creature
    {
        public int ClassIndex;
        private double centreX, centreY, semiMajor, semiMinor, cos, sin, partX, partY, partRadius;
        private (double R, double G, double B) bodyTone, partTone, partAltTone;
        private int patternKind;
        private double stripePeriod, stripePhase;

        public double Area => Math.PI * semiMajor * semiMinor + Math.PI * partRadius * partRadius * 0.6; // part sticks out of the body by about this much
        public double PartArea => Math.PI * partRadius * partRadius;

        // Shared fur colours: any class may get any of them (the body is not class evidence).
        private static readonly (double, double, double)[] Furs =
        {
            (150, 118, 84), (128, 124, 120), (170, 150, 118), (110, 92, 78),
        };

        public static Creature Draw(int w, int h, SynthOptions o, Random rng)
        {
            double shortSide = Math.Min(w, h);
            double a = shortSide * (o.MinBody + (o.MaxBody - o.MinBody) * rng.NextDouble());
            double b = a * (0.45 + 0.3 * rng.NextDouble());
            double reach = a + 0.5 * o.PartRadius * b;
            double cx = reach * 0.6 + rng.NextDouble() * Math.Max(1, w - 1.2 * reach);
            double cy = reach * 0.6 + rng.NextDouble() * Math.Max(1, h - 1.2 * reach);
            return Build(cx, cy, a, b, rng.NextDouble() * Math.PI, rng.Next(2) == 0 ? 1 : -1, o, rng);
        }

        public static Creature Centred(int w, int h, SynthOptions o, Random rng)
        {
            double a = Math.Min(w, h) * 0.3;
            return Build(w / 2.0, h / 2.0, a, a * 0.6, 0, 1, o, rng);
        }

        private static Creature Build(double cx, double cy, double a, double b, double angle, int end, SynthOptions o, Random rng)
        {
            int k = rng.Next(o.Classes.Count);
            var c = new Creature
            {
                ClassIndex = o.Classes[k],
                centreX = cx, centreY = cy, semiMajor = a, semiMinor = b, cos = Math.Cos(angle), sin = Math.Sin(angle),
                partRadius = Math.Max(2.5, o.PartRadius * b),
                patternKind = k % 3,
                stripePeriod = Math.Max(3, a / 4),
                stripePhase = rng.NextDouble() * 2 * Math.PI,
            };
            double d = end * (a - 0.5 * c.partRadius);
            c.partX = cx + d * c.cos;
            c.partY = cy + d * c.sin;

            // Body: a shared fur colour, jittered per object, plus a mild class tint.
            var fur = Furs[rng.Next(Furs.Length)];
            double tintAngle = 2 * Math.PI * k / o.Classes.Count;
            double jitter() => (rng.NextDouble() - 0.5) * 24;
            c.bodyTone = (
                fur.Item1 + jitter() + o.BodyTint * Math.Cos(tintAngle),
                fur.Item2 + jitter() + o.BodyTint * Math.Cos(tintAngle + 2 * Math.PI / 3),
                fur.Item3 + jitter() + o.BodyTint * Math.Cos(tintAngle + 4 * Math.PI / 3));

            // Part: a saturated class hue (classes spread round the colour wheel), with a darker second tone for its pattern.
            c.partTone = Hsv((double)k / o.Classes.Count, 0.9, 0.95);
            c.partAltTone = Hsv((double)k / o.Classes.Count, 0.9, 0.55);
            return c;
        }

        private bool InBody(double x, double y)
        {
            double dx = x - centreX, dy = y - centreY;
            double u = dx * cos + dy * sin, v = -dx * sin + dy * cos;
            return u * u / (semiMajor * semiMajor) + v * v / (semiMinor * semiMinor) <= 1;
        }

        private bool InPart(double x, double y) => (x - partX) * (x - partX) + (y - partY) * (y - partY) <= partRadius * partRadius;

        public void Stamp(int[] owner, bool[] onPart, int id, int w, int h)
        {
            double reach = semiMajor + partRadius;
            int x0 = Math.Max(0, (int)(centreX - reach)), x1 = Math.Min(w - 1, (int)(centreX + reach) + 1);
            int y0 = Math.Max(0, (int)(centreY - reach)), y1 = Math.Min(h - 1, (int)(centreY + reach) + 1);
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++)
                {
                    double sx = x + 0.5, sy = y + 0.5;
                    bool part = InPart(sx, sy);
                    if (part || InBody(sx, sy))
                    {
                        owner[y * w + x] = id;
                        onPart[y * w + x] = part;
                    }
                }
        }

        /// <summary>Fur: soft stripes across the major axis, the same for every class.</summary>
        public (double, double, double) BodyColour(int x, int y)
        {
            double u = (x + 0.5 - centreX) * cos + (y + 0.5 - centreY) * sin;
            double m = 1 + 0.12 * Math.Sin(2 * Math.PI * u / stripePeriod + stripePhase);
            return (bodyTone.R * m, bodyTone.G * m, bodyTone.B * m);
        }

        /// <summary>Part: solid, ringed, or striped in the class's two tones (pattern by class).</summary>
        public (double, double, double) PartColour(int x, int y)
        {
            double dx = x + 0.5 - partX, dy = y + 0.5 - partY;
            bool alt = patternKind switch
            {
                0 => false,
                1 => Math.Sqrt(dx * dx + dy * dy) < 0.5 * partRadius,
                _ => ((int)Math.Floor((dx + dy) / Math.Max(1.5, partRadius / 2)) & 1) == 1,
            };
            return alt ? partAltTone : partTone;
        }
    }

    // ---- background ------------------------------------------------------------------------------------

    /// <summary>Two octaves of smooth value noise blending two muted colours, a few faint strokes, pixel noise.</summary>
    internal static byte[] Background(int w, int h, Random rng)
    {
        var c0 = Hsv(rng.NextDouble(), 0.1 + 0.15 * rng.NextDouble(), 0.35 + 0.45 * rng.NextDouble());
        var c1 = Hsv(rng.NextDouble(), 0.1 + 0.15 * rng.NextDouble(), 0.35 + 0.45 * rng.NextDouble());
        var coarse = ValueNoise(w, h, 4, rng);
        var fine = ValueNoise(w, h, 12, rng);
        var px = new byte[w * h * 3];
        for (int p = 0; p < w * h; p++)
        {
            double t = Math.Clamp(0.7 * coarse[p] + 0.3 * fine[p], 0, 1);
            Put(px, p,
                c0.R + t * (c1.R - c0.R) + Noise(rng, 8),
                c0.G + t * (c1.G - c0.G) + Noise(rng, 8),
                c0.B + t * (c1.B - c0.B) + Noise(rng, 8));
        }
        int strokes = rng.Next(2, 6);
        for (int s = 0; s < strokes; s++)
        {
            var colour = Hsv(rng.NextDouble(), 0.15, 0.3 + 0.5 * rng.NextDouble());
            double x = rng.NextDouble() * w, y = rng.NextDouble() * h, angle = rng.NextDouble() * Math.PI;
            double length = (0.2 + 0.5 * rng.NextDouble()) * Math.Max(w, h);
            for (double t = 0; t < length; t += 0.5)
            {
                int sx = (int)(x + t * Math.Cos(angle)), sy = (int)(y + t * Math.Sin(angle));
                if (sx >= 0 && sx < w && sy >= 0 && sy < h)
                    Put(px, sy * w + sx, colour.R, colour.G, colour.B);
            }
        }
        return px;
    }

    /// <summary>Bilinear interpolation of a (cells+1)² grid of uniform values: smooth blobs, values in [0, 1].</summary>
    internal static double[] ValueNoise(int w, int h, int cells, Random rng)
    {
        var grid = new double[(cells + 1) * (cells + 1)];
        for (int i = 0; i < grid.Length; i++)
            grid[i] = rng.NextDouble();
        var noise = new double[w * h];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double gx = (double)x / w * cells, gy = (double)y / h * cells;
                int ix = (int)gx, iy = (int)gy;
                double fx = gx - ix, fy = gy - iy;
                fx = fx * fx * (3 - 2 * fx); // smoothstep hides the grid
                fy = fy * fy * (3 - 2 * fy);
                double top = grid[iy * (cells + 1) + ix] * (1 - fx) + grid[iy * (cells + 1) + ix + 1] * fx;
                double bottom = grid[(iy + 1) * (cells + 1) + ix] * (1 - fx) + grid[(iy + 1) * (cells + 1) + ix + 1] * fx;
                noise[y * w + x] = top * (1 - fy) + bottom * fy;
            }
        return noise;
    }

    internal static (double R, double G, double B) Hsv(double hue, double sat, double val)
    {
        hue -= Math.Floor(hue);
        double h6 = hue * 6, f = h6 - Math.Floor(h6);
        double v = val * 255, p = v * (1 - sat), q = v * (1 - sat * f), t = v * (1 - sat * (1 - f));
        return ((int)h6 % 6) switch
        {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
    }

    /// <summary>Roughly Gaussian noise (sum of three uniforms), standard deviation about <paramref name="sigma"/>.</summary>
    internal static double Noise(Random rng, double sigma) =>
        (rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 1.5) * 2 * sigma;

    internal static void Put(byte[] px, int p, double r, double g, double b)
    {
        px[3 * p] = (byte)Math.Clamp((int)Math.Round(r), 0, 255);
        px[3 * p + 1] = (byte)Math.Clamp((int)Math.Round(g), 0, 255);
        px[3 * p + 2] = (byte)Math.Clamp((int)Math.Round(b), 0, 255);
    }

    /// <summary>Seed of image <paramref name="index"/>: a SplitMix64 step over (seed, index), folded to 31 bits.</summary>
    private static int MixSeed(int seed, int index)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)index) + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }
}
