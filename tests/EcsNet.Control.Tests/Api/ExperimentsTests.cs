using EcsNet.Control.Api;
using EcsNet.Control.V1;
using EcsNet.Core.Nets;
using EcsNet.Core.Stages;
using EcsNet.Data;

namespace EcsNet.Control.Tests.Api;

public sealed class ExperimentsTests
{
    private const string File = """
        name: tiny-ecs
        dataset:
          synthetic: { trainImages: 8, valImages: 2, size: 64, seed: 3 }
        stages: [cam, crf]
        workers: 2
        backbone: small
        cam:
          beta: 0.7
        camTraining:
          epochs: 1
        """;

    [Fact]
    public void A_file_becomes_the_message_and_resolves_to_its_options()
    {
        var e = Experiments.FromDocument(ExperimentFile.ParseDocument(File, "exp.yaml"), "exp.yaml");
        Assert.Equal("tiny-ecs", e.Name);
        Assert.Equal(2, e.Workers);
        Assert.Equal(new[] { "cam", "crf" }, e.Stages);
        Assert.Equal(8, e.Dataset.Synthetic.TrainImages);
        Assert.Equal(64, e.Dataset.Synthetic.Size);

        var r = Experiments.Resolve(e, ExperimentConfig.SmallCpu);
        Assert.Equal(0.7, r.Config.Cam.Beta, 6);
        Assert.Equal(1, r.Config.CamTraining.Epochs);
        Assert.Equal(BackboneKind.Small, r.Config.Backbone);
        Assert.Equal(2, r.Workers);
        // the CLI's reader of the same file takes its options and passes over the run keys
        var cli = ExperimentFile.Apply(ExperimentFile.ParseDocument(File, "exp.yaml"), "exp.yaml", ExperimentConfig.SmallCpu);
        Assert.Equal(ExperimentFile.ToJson(r.Config), ExperimentFile.ToJson(cli));
    }

    [Fact]
    public void Every_bad_field_is_named_at_once()
    {
        var e = Experiments.FromDocument(ExperimentFile.ParseDocument("""
            name: "bad name!"
            stages: [cam, paint]
            workers: 99
            dataset: { voc: { root: relative/VOC2012 } }
            """, "x"), "x");
        var ex = Assert.Throws<InvalidRequestException>(() => Experiments.Resolve(e, ExperimentConfig.SmallCpu));
        var fields = ex.Problems.Select(p => p.Field).ToArray();
        Assert.Equal(new[] { "experiment.name", "experiment.stages[1]", "experiment.workers", "experiment.dataset.voc.root" }, fields);
        Assert.Contains("unknown stage 'paint'", ex.Problems[1].Description);
    }

    [Theory]
    [InlineData("cam: { gamma: 3 }", "experiment.hyperparameters", "unknown option 'cam.gamma'")]
    [InlineData("camTraining: { momentum: 1 }", "experiment.hyperparameters.camTraining.momentum", "must lie in [0, 1)")]
    [InlineData("backgroundThreshold: 2", "experiment.hyperparameters.backgroundThreshold", "must lie in (0, 1)")]
    public void Bad_hyperparameters_name_the_key(string options, string field, string description)
    {
        var e = Experiments.FromDocument(ExperimentFile.ParseDocument("dataset: { synthetic: { trainImages: 4, valImages: 1 } }\n" + options, "x"), "x");
        var ex = Assert.Throws<InvalidRequestException>(() => Experiments.Resolve(e, ExperimentConfig.SmallCpu));
        var p = Assert.Single(ex.Problems);
        Assert.Equal(field, p.Field);
        Assert.Contains(description, p.Description);
    }

    [Fact]
    public void A_missing_dataset_and_a_bad_override_are_fields_too()
    {
        var e = new Experiment { Set = { "cam.nothing=1" } };
        var ex = Assert.Throws<InvalidRequestException>(() => Experiments.Resolve(e, ExperimentConfig.SmallCpu));
        Assert.Equal(new[] { "experiment.dataset", "experiment.set" }, ex.Problems.Select(p => p.Field));
        Assert.Throws<BadInputException>(() => Experiments.FromDocument(ExperimentFile.ParseDocument("dataset: 3", "f.yaml"), "f.yaml"));
    }
}
