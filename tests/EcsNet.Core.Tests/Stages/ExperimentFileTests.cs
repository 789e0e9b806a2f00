using EcsNet.Core.Stages;
using EcsNet.Data;
using EcsNet.Testing;

namespace EcsNet.Core.Tests.Stages;

/// <summary>A value of the wrong type names the key, the value and the type, and the file line or the override it came from.</summary>
public class ExperimentFileTests
{
    private static BadInputException Set(params string[] overrides) =>
        Assert.Throws<BadInputException>(() => ExperimentFile.Load(null, ExperimentConfig.SmallCpu, overrides));

    private static BadInputException Yaml(string text, string name = "exp.yaml")
    {
        using var dir = new TempDir();
        var path = dir.File(name);
        File.WriteAllText(path, text);
        var e = Assert.Throws<BadInputException>(() => ExperimentFile.Load(path, ExperimentConfig.SmallCpu));
        // Only the file's name is compared below; its folder is the temporary one.
        return new BadInputException(e.Subject.Replace(dir.Path + Path.DirectorySeparatorChar, ""), e.Problem);
    }

    [Fact]
    public void AnOverrideOfTheWrongTypeNamesTheKeyTheValueAndTheType()
    {
        var e = Set("camTraining.epochs=2", "camTraining.momentum=abc");
        Assert.Equal("--set camTraining.momentum=abc", e.Subject);
        Assert.Equal("camTraining.momentum: \"abc\" is not a number (expected a decimal number)", e.Problem);
        Assert.DoesNotContain("LineNumber", e.Message);
        Assert.DoesNotContain("System.", e.Message);
    }

    [Theory]
    [InlineData("camTraining.epochs=1.5", "camTraining.epochs: 1.5 is not a whole number (expected a whole number)")]
    [InlineData("camTraining.epochs=many", "camTraining.epochs: \"many\" is not a number (expected a whole number)")]
    [InlineData("backbone=resnet99", "backbone: \"resnet99\" is not one of the choices (expected one of small, resNet38, vgg16 or resNet18)")]
    [InlineData("camInference.scales=[1,\"x\"]", "camInference.scales[1]: \"x\" is not a number (expected a decimal number)")]
    [InlineData("camInference.scales=0.5", "camInference.scales: 0.5 is not a list of that (expected a list of decimal numbers, e.g. [1.0, 0.5])")]
    [InlineData("camInference.flip=maybe", "camInference.flip: \"maybe\" is not true or false (expected true or false)")]
    [InlineData("cam=3", "cam: 3 is not a group of options (expected a mapping of option names to values)")]
    public void EachKindOfTypeIsNamedInWords(string set, string problem)
    {
        var e = Set(set);
        Assert.Equal($"--set {set}", e.Subject);
        Assert.Equal(problem, e.Problem);
    }

    [Fact]
    public void AYamlFileNamesItselfAndTheLineOfTheValue()
    {
        var e = Yaml("# an experiment\ncamTraining:\n  epochs: 2\n  momentum: abc\ncam: { beta: 0.7 }\n");
        Assert.Equal("exp.yaml:4", e.Subject);
        Assert.Equal("camTraining.momentum: \"abc\" is not a number (expected a decimal number)", e.Problem);

        e = Yaml("camInference:\n  scales:\n    - 1.0\n    - big\n");
        Assert.Equal("exp.yaml:4", e.Subject);
        Assert.StartsWith("camInference.scales[1]: \"big\"", e.Problem);

        e = Yaml("cam: { beta: 0.7, overlay: sometimes }\n");
        Assert.Equal("exp.yaml:1", e.Subject);
        Assert.StartsWith("cam.overlay: \"sometimes\" is not true or false", e.Problem);
    }

    [Fact]
    public void AJsonFileIsNamedWithoutALine()
    {
        var e = Yaml("{\n  \"camTraining\": {\n    \"momentum\": \"abc\"\n  }\n}\n", "exp.json");
        Assert.Equal("exp.json", e.Subject);
        Assert.Equal("camTraining.momentum: \"abc\" is not a number (expected a decimal number)", e.Problem);
    }

    [Fact]
    public void AnOverrideOfAFileValueIsTheOneNamed()
    {
        using var dir = new TempDir();
        var path = dir.File("exp.yaml");
        File.WriteAllText(path, "camTraining:\n  momentum: abc\n");
        // The override replaces the file's bad value: no error at all.
        Assert.Equal(0.5, ExperimentFile.Load(path, ExperimentConfig.SmallCpu, ["camTraining.momentum=0.5"]).CamTraining.Momentum);
        var e = Assert.Throws<BadInputException>(() => ExperimentFile.Load(path, ExperimentConfig.SmallCpu, ["camTraining.epochs=x"]));
        Assert.Equal("--set camTraining.epochs=x", e.Subject);
    }

    [Fact]
    public void ARunsExperimentJsonOfTheWrongTypeNamesTheKey()
    {
        using var dir = new TempDir();
        var path = dir.File("experiment.json");
        File.WriteAllText(path, ExperimentFile.ToJson(ExperimentConfig.SmallCpu).Replace("\"epochs\": 8", "\"epochs\": \"eight\""));
        var e = Assert.Throws<BadInputException>(() => ExperimentJson.Read(path));
        Assert.Equal(path, e.Subject);
        Assert.Equal("camTraining.epochs: \"eight\" is not a number (expected a whole number)", e.Problem);
    }
}
