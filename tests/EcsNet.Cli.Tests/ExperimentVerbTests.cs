using System.Text.Json.Nodes;
using EcsNet.Core.Stages;
using EcsNet.Testing;

namespace EcsNet.Cli.Tests;

/// <summary>`ecsnet experiment`: the presets, an experiment file and --set resolved in that order, and what it refuses.</summary>
[Collection(CliCollection.Name)]
public sealed class ExperimentVerbTests
{
    private static JsonObject Print(params string[] args)
    {
        var result = Ecsnet.Run(["experiment", .. args]).GetAwaiter().GetResult();
        Assert.True(result.Exit == 0, result.ToString());
        return JsonNode.Parse(result.Out)!.AsObject();
    }

    [Fact]
    public void ThePresetsAreTheSmallTrunkAndTheImageNetResNet18()
    {
        var small = Print();
        Assert.Equal("small", (string?)small["backbone"]);
        Assert.Equal(0.05, (double)small["camTraining"]!["learningRate"]!);

        var quality = Print("--preset", "quality");
        Assert.Equal("resNet18", (string?)quality["backbone"]);
        Assert.True((bool)quality["pretrained"]!);
        Assert.Equal(0.01, (double)quality["camTraining"]!["learningRate"]!);
        Assert.Equal(0.002, (double)quality["camTraining"]!["warmupLearningRate"]!);
        Assert.Equal(0.2, (double)quality["backgroundThreshold"]!);
        Assert.Equal(0.1, (double)small["backgroundThreshold"]!);
        // CAM inference: one scale for the small trunk's 128-px images, PSA's four with the pretrained trunk
        Assert.Equal("[1]", small["camInference"]!["scales"]!.ToJsonString());
        Assert.Equal("[1,0.5,1.5,2]", quality["camInference"]!["scales"]!.ToJsonString());
        // everything else is the small preset's
        Assert.Equal(small["crf"]!.ToJsonString(), quality["crf"]!.ToJsonString());
        Assert.Equal(small["seg"]!.ToJsonString(), quality["seg"]!.ToJsonString());
    }

    [Fact]
    public void AFileAndSetApplyOnTopOfThePresetAndThePrintedExperimentReadsBack()
    {
        using var dir = new TempDir();
        var file = dir.File("exp.yaml");
        File.WriteAllText(file, "camTraining:\n  epochs: 3\n");
        var printed = Print("--preset", "quality", "--config", file, "--set", "camTraining.learningRate=0.02");
        Assert.Equal("resNet18", (string?)printed["backbone"]);
        Assert.Equal(3, (int)printed["camTraining"]!["epochs"]!);
        Assert.Equal(0.02, (double)printed["camTraining"]!["learningRate"]!);

        var saved = dir.File("saved.json");
        File.WriteAllText(saved, printed.ToJsonString());
        Assert.Equal(printed.ToJsonString(), Print("--config", saved).ToJsonString());
        Assert.Equal(ExperimentConfig.PretrainedCpu with
        {
            CamTraining = ExperimentConfig.PretrainedCpu.CamTraining with { Epochs = 3, LearningRate = 0.02 },
        }, ExperimentJson.Read(saved), new ExperimentEquality());
    }

    [Fact]
    public async Task AnUnknownPresetOrABadValueIsNamed()
    {
        var preset = await Ecsnet.Run("experiment", "--preset", "huge");
        Assert.NotEqual(0, preset.Exit);
        Assert.Contains("huge", preset.Err);

        var bad = await Ecsnet.Run("experiment", "--preset", "quality", "--set", "camTraining.learningRate=-1");
        Assert.NotEqual(0, bad.Exit);
        Assert.Contains("camTraining.learningRate", bad.Err);
    }

    /// <summary>Two experiments are equal when they print the same (records hold arrays, compared by reference).</summary>
    private sealed class ExperimentEquality : IEqualityComparer<ExperimentConfig>
    {
        public bool Equals(ExperimentConfig? x, ExperimentConfig? y) => ExperimentFile.ToJson(x!) == ExperimentFile.ToJson(y!);

        public int GetHashCode(ExperimentConfig obj) => ExperimentFile.ToJson(obj).GetHashCode();
    }
}
