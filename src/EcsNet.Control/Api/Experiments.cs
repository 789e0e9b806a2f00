using System.Text.Json.Nodes;
using EcsNet.Control.V1;
using EcsNet.Core.Nets;
using EcsNet.Core.Stages;
using EcsNet.Data;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace EcsNet.Control.Api;

/// <summary>What a valid experiment asks for, ready to run.</summary>
public sealed record ResolvedExperiment(string Name, ExperimentConfig Config, IReadOnlyList<string> Stages, int Workers, V1.Dataset Dataset);

/// <summary>One bad field of a request: its path (e.g. <c>experiment.dataset.voc.root</c>) and what is wrong.</summary>
public sealed record FieldProblem(string Field, string Description);

/// <summary>A request with bad fields; the control API answers it with INVALID_ARGUMENT and a BadRequest detail.</summary>
public sealed class InvalidRequestException(IReadOnlyList<FieldProblem> problems)
    : Exception(string.Join("; ", problems.Select(p => $"{p.Field}: {p.Description}")))
{
    public IReadOnlyList<FieldProblem> Problems { get; } = problems;
}

/// <summary>
/// The experiment schema shared by the CLI's experiment file and the control API (docs/EXPERIMENTS.md): the
/// stages' options at the top level (as <c>--config</c> reads them) and the run keys name, dataset, stages and
/// workers. <see cref="FromDocument"/> turns a file into the API's message; <see cref="Resolve"/> checks a message
/// field by field.
/// </summary>
public static class Experiments
{
    public const int MaxWorkers = 64;

    /// <summary>An experiment file's document (<see cref="ExperimentFile.ParseDocument"/>) as the API's message.</summary>
    /// <exception cref="BadInputException">A run key of the wrong shape (names <paramref name="source"/> and the key).</exception>
    public static Experiment FromDocument(JsonObject document, string source)
    {
        var e = new Experiment();
        var options = new JsonObject();
        foreach (var (key, value) in document)
        {
            switch (key.ToLowerInvariant())
            {
                case "name":
                    e.Name = Scalar(value, source, key);
                    break;
                case "workers":
                    e.Workers = int.TryParse(Scalar(value, source, key), out var w) ? w : throw new BadInputException(source, "workers: expected a whole number");
                    break;
                case "stages":
                    e.Stages.AddRange(value is JsonArray list
                        ? list.Select(v => Scalar(v, source, key))
                        : Scalar(value, source, key).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
                    break;
                case "dataset":
                    e.Dataset = ParseDataset(value, source);
                    break;
                default:
                    options[key] = value?.DeepClone();
                    break;
            }
        }
        if (options.Count > 0)
            e.Hyperparameters = Struct.Parser.ParseJson(options.ToJsonString());
        return e;
    }

    private static V1.Dataset ParseDataset(JsonNode? node, string source)
    {
        try
        {
            // the document's keys are camelCase as the proto's JSON names are: the protobuf JSON parser reads it
            return node is JsonObject obj
                ? JsonParser.Default.Parse<V1.Dataset>(obj.ToJsonString())
                : throw new BadInputException(source, "dataset: expected a mapping with voc: {root, trainSplit, valSplit} or synthetic: {trainImages, valImages, size, seed}");
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new BadInputException(source, $"dataset: {ex.Message}");
        }
    }

    private static string Scalar(JsonNode? node, string source, string key) =>
        node is JsonValue v ? v.ToString() : throw new BadInputException(source, $"{key}: expected a single value");

    /// <summary>Checks <paramref name="experiment"/> field by field (every problem at once) and resolves its options.</summary>
    /// <param name="baseConfig">The options the experiment's hyperparameters are applied on (the small CPU default).</param>
    /// <exception cref="InvalidRequestException">One or more fields are bad.</exception>
    public static ResolvedExperiment Resolve(Experiment? experiment, ExperimentConfig baseConfig)
    {
        var problems = new List<FieldProblem>();
        void Bad(string field, string description) => problems.Add(new FieldProblem("experiment" + (field.Length > 0 ? "." + field : ""), description));
        if (experiment is null)
        {
            Bad("", "is required");
            throw new InvalidRequestException(problems);
        }

        var name = experiment.Name.Trim();
        if (name.Length > 64 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
            Bad("name", "at most 64 characters of letters, digits, '-', '_' and '.'");

        var known = PipelineStages.Default().Stages.Select(s => s.Name).ToArray();
        for (int i = 0; i < experiment.Stages.Count; i++)
            if (!known.Contains(experiment.Stages[i]))
                Bad($"stages[{i}]", $"unknown stage '{experiment.Stages[i]}'; the stages are {string.Join(", ", known)}");

        int workers = experiment.Workers == 0 ? 1 : experiment.Workers;
        if (workers is < 1 or > MaxWorkers)
            Bad("workers", $"must lie in 1..{MaxWorkers}, got {experiment.Workers}");

        CheckDataset(experiment.Dataset, Bad);

        ExperimentConfig config = baseConfig;
        try
        {
            JsonObject? options = experiment.Hyperparameters is { } h ? JsonNode.Parse(JsonFormatter.Default.Format(h)) as JsonObject : null;
            if (options is not null)
                foreach (var key in options.Select(p => p.Key).Where(ExperimentFile.RunKeys.Contains).ToList())
                    Bad($"hyperparameters.{key}", $"'{key}' is a field of the experiment, not a hyperparameter");
            config = ExperimentFile.Apply(options, "hyperparameters", baseConfig, experiment.Set);
            if (experiment.Backbone.Length > 0)
                config = config with
                {
                    Backbone = System.Enum.TryParse<BackboneKind>(experiment.Backbone, ignoreCase: true, out var b) ? b
                        : throw new BadInputException("backbone", $"unknown backbone '{experiment.Backbone}'; the backbones are {string.Join(", ", System.Enum.GetNames<BackboneKind>().Select(n => n.ToLowerInvariant()))}"),
                };
            config.Validate();
        }
        catch (BadInputException e)
        {
            // ExperimentFile names the source and the key in the problem; ExperimentConfig.Validate names the key as subject
            if (e.Subject == "backbone")
                Bad("backbone", e.Problem);
            else if (e.Subject is "hyperparameters" or "--set")
                Bad(experiment.Set.Count > 0 && e.Subject == "--set" ? "set" : "hyperparameters", e.Problem);
            else if (e.Subject.StartsWith("--set ", StringComparison.Ordinal))
                Bad("set", $"{e.Subject[6..]}: {e.Problem}");
            else
                Bad($"hyperparameters.{e.Subject}", e.Problem);
        }
        if (problems.Count > 0)
            throw new InvalidRequestException(problems);
        return new ResolvedExperiment(name, config, experiment.Stages.ToList(), workers, experiment.Dataset);
    }

    private static void CheckDataset(V1.Dataset? dataset, Action<string, string> bad)
    {
        switch (dataset?.SourceCase)
        {
            case null or V1.Dataset.SourceOneofCase.None:
                bad("dataset", "is required: voc {root, train_split, val_split} or synthetic {train_images, val_images, size, seed}");
                break;
            case V1.Dataset.SourceOneofCase.Voc:
                var root = dataset.Voc.Root;
                if (root.Length == 0)
                    bad("dataset.voc.root", "is required (a VOC2012 or VOCdevkit folder on the cluster's storage)");
                else if (!Path.IsPathFullyQualified(root))
                    bad("dataset.voc.root", $"must be an absolute path on the cluster's storage, got '{root}'");
                else if (!Directory.Exists(root))
                    bad("dataset.voc.root", $"no such folder on this host: {root}");
                foreach (var (field, split) in new[] { ("train_split", dataset.Voc.TrainSplit), ("val_split", dataset.Voc.ValSplit) })
                    if (split.Contains('/') || split.Contains(".."))
                        bad($"dataset.voc.{field}", $"a split name, got '{split}'");
                break;
            case V1.Dataset.SourceOneofCase.Synthetic:
                var s = dataset.Synthetic;
                if (s.TrainImages is < 1 or > 100_000)
                    bad("dataset.synthetic.train_images", $"must lie in 1..100000, got {s.TrainImages}");
                if (s.ValImages is < 1 or > 100_000)
                    bad("dataset.synthetic.val_images", $"must lie in 1..100000, got {s.ValImages}");
                if (s.Size != 0 && s.Size is < 32 or > 1024)
                    bad("dataset.synthetic.size", $"must lie in 32..1024 (0: the default), got {s.Size}");
                break;
        }
    }
}
