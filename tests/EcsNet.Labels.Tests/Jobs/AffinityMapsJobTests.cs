using System.IO.Compression;
using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Crf;
using EcsNet.Labels.Jobs;
using EcsNet.Labels.Propagation;

namespace EcsNet.Labels.Tests.Jobs;

public sealed class AffinityMapsJobTests
{
    private static readonly DenseCrfOptions Crf = new() { MaxDegreeOfParallelism = 1 };

    [Fact]
    public void TheFileHoldsExactlyTheMapsTheCrfComputed()
    {
        using var inputs = new JobInputs(2);
        var options = new AffinityLabelOptions();
        foreach (var id in inputs.Ids)
        {
            var job = new AffinityMapsJob(id, inputs.ImagePath(id), inputs.CamDir, inputs.Out("maps", id + AffinityMapsFile.Extension), options, Crf);
            job.Run();
            var cams = CamStore.Read(inputs.CamDir, id);
            var expected = AffinityLabels.ScoreMaps(ImageCodec.ReadRgb(inputs.ImagePath(id)), cams.FullStack(), cams.Classes, options,
                (img, probs, labels) => DenseCrf.Infer(img, probs, labels, Crf));
            var read = AffinityMapsFile.Read(job.OutputPath);
            Assert.Equal((expected.Width, expected.Height), (read.Width, read.Height));
            Assert.Equal(expected.Classes, read.Classes);
            Assert.Equal(new[] { 0 }.Concat(cams.Classes), read.Classes);
            // bit for bit: float32 on disk is what training used when the maps never left memory
            Assert.Equal(expected.La, read.La);
            Assert.Equal(expected.Ha, read.Ha);
        }
    }

    [Fact]
    public void TheSameMapsMakeTheSameBytesWhenever()
    {
        // zip entries carry a modification time; the clock's would make a job run twice (a resend, another node)
        // write different bytes a second apart, so every entry carries the same fixed time
        using var inputs = new JobInputs(1);
        var id = inputs.Ids[0];
        var job = new AffinityMapsJob(id, inputs.ImagePath(id), inputs.CamDir, inputs.Out("maps", id + AffinityMapsFile.Extension), new AffinityLabelOptions(), Crf);
        job.Run();
        using (var zip = ZipFile.OpenRead(job.OutputPath))
        {
            Assert.Equal(3, zip.Entries.Count);
            Assert.All(zip.Entries, e => Assert.Equal(AffinityMapsFile.EntryTime.DateTime, e.LastWriteTime.DateTime));
        }
        var again = job with { OutputPath = job.OutputPath + ".again.npz" };
        again.Run();
        Assert.Equal(File.ReadAllBytes(job.OutputPath), File.ReadAllBytes(again.OutputPath));
    }

    [Fact]
    public void TheFileIsAnNpzNumpyCanRead()
    {
        using var inputs = new JobInputs(1);
        var path = inputs.Out("maps", "img_0.npz");
        new AffinityMapsJob("img_0", inputs.ImagePath("img_0"), inputs.CamDir, path, new AffinityLabelOptions(), Crf).Run();
        using var zip = ZipFile.OpenRead(path);
        Assert.Equal(new[] { "classes.npy", "ha.npy", "la.npy" }, zip.Entries.Select(e => e.FullName).Order());
        Assert.All(zip.Entries, e => Assert.Equal(e.Length, e.CompressedLength));
        using var la = zip.GetEntry("la.npy")!.Open();
        var header = new byte[80];
        la.ReadExactly(header);
        var text = System.Text.Encoding.Latin1.GetString(header);
        Assert.Contains($"'descr': '<f4'", text);
        Assert.Contains($"'shape': (3, {inputs.Height}, {inputs.Width})", text);
    }

    [Fact]
    public void ABrokenFileIsNamed()
    {
        using var inputs = new JobInputs(1);
        var path = inputs.Out("maps", "bad.npz");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, new byte[] { 1, 2, 3, 4 });
        var e = Assert.Throws<BadInputException>(() => AffinityMapsFile.Read(path));
        Assert.Equal(path, e.Subject);
        Assert.Contains("missing", Assert.Throws<BadInputException>(() => AffinityMapsFile.Read(path + "x")).Message);
    }

    [Fact]
    public void BadOptionsAreNamed()
    {
        var job = new AffinityMapsJob("x", "/x.png", "/cams", "/maps/x.npz", new AffinityLabelOptions { AlphaLow = 40 }, Crf);
        Assert.Contains("low alpha (40) must not exceed the high alpha", Assert.Throws<BadInputException>(job.Validate).Message);
        job = job with { OutputPath = " " };
        Assert.StartsWith("affinity maps job for image 'x': output path is empty", Assert.Throws<BadInputException>(job.Validate).Message);
    }
}
