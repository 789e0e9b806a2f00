using EcsNet.Core.Stages;
using EcsNet.Core.Tests.Training;
using EcsNet.Core.Training;
using EcsNet.Data;
using EcsNet.Testing;

namespace EcsNet.Core.Tests.Stages;

/// <summary>
/// What TensorBoard gets per run (docs/METRICS.md): the training loop's scalars with the learning rate at every step,
/// and, once the stage has scored its labels, the mIoU and the CAM overlays at the final step. The files are read back
/// with a reader of the record and protobuf formats of its own (<see cref="TensorBoardReader"/>).
/// </summary>
public sealed class CamTensorBoardTests
{
    private static readonly byte[] PngSignature = { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A };

    [Fact]
    public void An_event_file_holds_a_scalar_and_a_png_as_written()
    {
        using var dir = new TempDir();
        var png = dir.File("red.png");
        var pixels = Enumerable.Range(0, 5 * 3).SelectMany(_ => new byte[] { 255, 0, 0 }).ToArray();
        ImageCodec.WriteRgbPng(png, new RgbImage(5, 3, pixels));
        var events = new TensorBoardEventFile(dir.File("tb"), "eval");
        events.AddScalar("eval/mIoU", 0.25, 7);
        events.AddPng("overlays/red", File.ReadAllBytes(png), 7);

        Assert.Contains(".tfevents.", Path.GetFileName(events.FilePath));
        var values = TensorBoardReader.ReadFolder(dir.File("tb"));
        Assert.Equal(2, values.Count);
        Assert.Equal(("eval/mIoU", 7L, 0.25f), (values[0].Tag, values[0].Step, values[0].Scalar!.Value));
        var image = values[1].Image!;
        Assert.Equal(("overlays/red", 7L), (values[1].Tag, values[1].Step));
        Assert.Equal((3, 5), (image.Height, image.Width));
        Assert.Contains(image.Colorspace, new[] { 3, 4 });
        Assert.Equal(File.ReadAllBytes(png), image.Encoded);
    }

    [Fact]
    public void A_cam_stage_leaves_the_learning_rate_its_miou_and_overlays_in_tensorboard()
    {
        using var dir = new TempDir();
        var synth = SyntheticVoc.Generate(dir.File("voc"), new SynthOptions { TrainImages = 8, ValImages = 1, Size = 64, Seed = 5 });
        var config = ExperimentConfig.SmallCpu with
        {
            CamTraining = ExperimentConfig.SmallCpu.CamTraining with { Epochs = 1, BatchSize = 4, Crop = 64 },
            CamInference = new() { Scales = new[] { 1.0 } },
            Augment = ExperimentConfig.SmallCpu.Augment with { LongEdgeMin = 64, LongEdgeMax = 80 },
        };
        var context = new PipelineContext(config, synth.Root, "train", "val", dir.File("run"));
        var outcome = Assert.Single(new Pipeline(new IPipelineStage[] { new CamStage() }).Run(context));
        var runDir = Path.Combine(context.StageDir(CamStage.StageName), "run");
        var values = TensorBoardReader.ReadFolder(Path.Combine(runDir, TrainingRecorder.TensorBoardFolder));

        // the loop's learning rate at each of the 2 steps (8 images, batch 4)
        var lr = values.Where(v => v.Tag == "lr").ToList();
        Assert.Equal(new long[] { 1, 2 }, lr.Select(v => v.Step).Order());
        Assert.All(lr, v => Assert.True(v.Scalar > 0));

        // the stage's score at the final step, as its manifest has it
        var miou = Assert.Single(values, v => v.Tag == StageTensorBoard.ScoreTagPrefix + StageMetrics.MeanIoU);
        Assert.Equal(2, miou.Step);
        Assert.Equal((float)outcome.Manifest.Metrics[StageMetrics.MeanIoU], miou.Scalar);

        // CAM overlays of the images the stage drew, as the PNG files it wrote
        var images = values.Where(v => v.Image is not null).ToList();
        Assert.NotEmpty(images);
        var overlayDir = Path.Combine(context.StageDir(CamStage.StageName), "labels", CamStage.OverlayFolder);
        foreach (var image in images)
        {
            Assert.StartsWith(StageTensorBoard.OverlayTagPrefix, image.Tag);
            Assert.Equal(2, image.Step);
            var file = Path.Combine(overlayDir, image.Tag[StageTensorBoard.OverlayTagPrefix.Length..] + ".png");
            Assert.Equal(File.ReadAllBytes(file), image.Image!.Encoded);
            Assert.Equal(PngSignature, image.Image.Encoded[..8]);
            Assert.True(image.Image.Width > 0 && image.Image.Height > 0);
        }
        Assert.Contains(images, v => v.Tag == $"{StageTensorBoard.OverlayTagPrefix}{synth.TrainIds[0]}_labels");
    }
}
