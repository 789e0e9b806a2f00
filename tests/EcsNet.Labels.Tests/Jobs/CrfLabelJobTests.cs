using EcsNet.Data;
using EcsNet.Labels.Cams;
using EcsNet.Labels.Crf;
using EcsNet.Labels.Jobs;

namespace EcsNet.Labels.Tests.Jobs;

public sealed class CrfLabelJobTests
{
    private static readonly DenseCrfOptions Crf = new() { MaxDegreeOfParallelism = 1 };

    [Fact]
    public void WritesWhatTheCrfStepComputesAndTheSameBytesWhenRunAgain()
    {
        using var inputs = new JobInputs();
        foreach (var id in inputs.Ids)
        {
            var job = new CrfLabelJob(id, inputs.ImagePath(id), inputs.CamDir, inputs.Out("crf", id + ".png"), 0.2, Crf);
            var result = job.Run();
            Assert.Equal((id, job.OutputPath), (result.ImageId, result.OutputPath));
            var expected = ImageCodec.EncodeLabelPng(CamCrf.Refine(ImageCodec.ReadRgb(inputs.ImagePath(id)),
                CamStore.Read(inputs.CamDir, id), CamBackground.Constant(0.2), Crf));
            var first = File.ReadAllBytes(job.OutputPath);
            Assert.Equal(expected, first);
            job.Run();
            Assert.Equal(first, File.ReadAllBytes(job.OutputPath));
        }
        var labels = ImageCodec.ReadLabelPng(inputs.Out("crf", inputs.Ids[0] + ".png"));
        Assert.Contains(labels.Labels, l => l != 0);
        Assert.Equal(inputs.Ids.Count, Directory.GetFiles(inputs.Out("crf", "")).Length);
    }

    [Fact]
    public void AMissingCamFileIsNamed()
    {
        using var inputs = new JobInputs(1);
        File.Delete(Path.Combine(inputs.CamDir, "img_0.npy"));
        var job = new CrfLabelJob("img_0", inputs.ImagePath("img_0"), inputs.CamDir, inputs.Out("crf", "img_0.png"), 0.2, Crf);
        var e = Assert.Throws<BadInputException>(() => job.Run());
        Assert.Contains("img_0.npy: CAM file is missing", e.Message);
        Assert.False(File.Exists(job.OutputPath));
    }

    [Theory]
    [InlineData("", "img", "crf job: image id is empty")]
    [InlineData("a/b", "img", "crf job for image 'a/b': image id must be a file name")]
    [InlineData("x", "", "crf job for image 'x': image path is empty")]
    public void BadFieldsAreNamed(string id, string image, string expected)
    {
        var job = new CrfLabelJob(id, image, "/cams", "/out/x.png", 0.2, Crf);
        Assert.StartsWith(expected, Assert.Throws<BadInputException>(job.Validate).Message);
    }

    [Fact]
    public void OutOfRangeOptionsAreNamed()
    {
        var job = new CrfLabelJob("x", "/x.png", "/cams", "/out/x.png", 1.5, Crf);
        Assert.Contains("background threshold must lie in (0, 1], got 1.5", Assert.Throws<BadInputException>(job.Validate).Message);
        job = job with { BackgroundThreshold = 0.2, Crf = Crf with { Iterations = -1 } };
        Assert.Contains("iterations must be ≥ 0", Assert.Throws<BadInputException>(job.Validate).Message);
        job = job with { Crf = null! };
        Assert.Contains("CRF options are missing", Assert.Throws<BadInputException>(job.Validate).Message);
    }
}
