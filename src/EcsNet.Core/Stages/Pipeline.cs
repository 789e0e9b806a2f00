using System.Diagnostics;
using System.Text.Json;
using EcsNet.Data;
using EcsNet.Labels.Jobs;

namespace EcsNet.Core.Stages;

/// <summary>Everything a stage reads: the experiment, the data and where the run lives.</summary>
public sealed record PipelineContext(ExperimentConfig Config, string VocRoot, string TrainSplit, string ValSplit, string RunDir)
{
    public string StageDir(string stage) => Path.Combine(RunDir, stage);

    /// <summary>Reports (stage, done, total, text) while a stage works.</summary>
    public Action<string, int, int, string>? Progress { get; init; }

    /// <summary>Trains the cam, aff and seg stages: in this process by default (alone, on the CPU), or on a cluster's workers.</summary>
    public ITrainingRunner Training { get; init; } = LocalTrainingRunner.Default;

    /// <summary>The run's experiment as a file (<see cref="ExperimentJson"/>), which training jobs carry; the pipeline writes it when it starts.</summary>
    public string ExperimentFile => Path.Combine(RunDir, "experiment.json");

    /// <summary>A training job of <paramref name="stage"/> on the train split, in <paramref name="runDir"/>.</summary>
    public TrainingJob TrainingJob(string stage, string runDir) => new()
    {
        Stage = stage, ExperimentFile = Path.GetFullPath(ExperimentFile), VocRoot = Path.GetFullPath(VocRoot), Split = TrainSplit,
        RunDir = Path.GetFullPath(runDir),
    };

    /// <summary>
    /// Runs the per-image jobs of the crf, aff (la/ha maps) and rw stages: in this process by default, or on a
    /// cluster's preprocess nodes (EcsNet.Cluster's sharded runner). Both write the same files.
    /// </summary>
    public IImageJobRunner Jobs { get; init; } = LocalImageJobRunner.Default;

    /// <summary>Runs jobs through <see cref="Jobs"/> from a stage's (synchronous) body, reporting progress under <paramref name="stage"/>.</summary>
    public IReadOnlyList<ImageJobResult> RunJobs(string stage, IReadOnlyList<IImageJob> jobs, CancellationToken ct) =>
        StartJobs(jobs, (done, total, _) => Progress?.Invoke(stage, done, total, ""), ct).GetAwaiter().GetResult();

    /// <summary>
    /// Starts jobs through <see cref="Jobs"/> on the thread pool, so that a stage may wait for them synchronously
    /// even where the caller has a synchronization context (a UI, a test framework) that a runner's awaits would
    /// otherwise need, and block.
    /// </summary>
    public Task<IReadOnlyList<ImageJobResult>> StartJobs(IReadOnlyList<IImageJob> jobs, ImageJobProgress? progress, CancellationToken ct) =>
        Task.Run(() => Jobs.RunAsync(jobs, progress, ct), ct);
}

/// <summary>What a stage measured (mIoU where a mask is available, image counts, times).</summary>
public sealed record StageResult(IReadOnlyDictionary<string, double> Metrics);

/// <summary>One step of the pipeline (irn's one-step-one-file shape): a name, what it needs, a single Run.</summary>
public interface IPipelineStage
{
    string Name { get; }

    /// <summary>One-line description for tables and help.</summary>
    string Title { get; }

    IReadOnlyList<string> DependsOn { get; }

    /// <summary>The options that shape this stage's output (hashed into its inputs and kept in its manifest).</summary>
    object Options(ExperimentConfig config);

    StageResult Run(PipelineContext context, CancellationToken ct);
}

/// <summary>How one stage went in this invocation.</summary>
public sealed record StageOutcome(string Stage, string Title, bool Reused, string Note, StageManifest Manifest);

/// <summary>
/// Runs stages in order. Each stage's outputs live in RUN/&lt;stage&gt;/ with a manifest; a stage whose manifest
/// is complete and whose inputs are unchanged is skipped (unless forced), a stage whose inputs changed is
/// recomputed (its old folder is kept as &lt;stage&gt;.prev), and an interrupted stage resumes in place (its
/// checkpoints are kept).
/// </summary>
public sealed class Pipeline
{
    private const string InputsMarker = "inputs.hash";
    private readonly IReadOnlyList<IPipelineStage> stages;

    public Pipeline(IReadOnlyList<IPipelineStage> stages) => this.stages = stages;

    public IReadOnlyList<IPipelineStage> Stages => stages;

    public IReadOnlyList<StageOutcome> Run(PipelineContext context, IReadOnlyCollection<string>? only = null,
        IReadOnlyCollection<string>? force = null, Action<StageOutcome>? onStage = null, CancellationToken ct = default)
    {
        foreach (var name in (only ?? Array.Empty<string>()).Concat(force ?? Array.Empty<string>()))
            if (stages.All(s => s.Name != name))
                throw new BadInputException($"stage '{name}'", $"unknown stage; the stages are {string.Join(", ", stages.Select(s => s.Name))}");
        Directory.CreateDirectory(context.RunDir);
        ExperimentJson.Write(context.ExperimentFile, context.Config);
        var dataHash = DataFingerprint(context);
        var outcomes = new List<StageOutcome>();
        var manifests = new Dictionary<string, StageManifest>();
        foreach (var stage in stages)
        {
            ct.ThrowIfCancellationRequested();
            var dir = context.StageDir(stage.Name);
            bool selected = only is null || only.Count == 0 || only.Contains(stage.Name);
            var upstream = new List<string>();
            foreach (var dep in stage.DependsOn)
            {
                if (!manifests.TryGetValue(dep, out var m))
                {
                    m = StageManifest.TryLoad(context.StageDir(dep))!;
                    if (m is null)
                    {
                        if (!selected) break;
                        throw new BadInputException($"stage '{stage.Name}'",
                            $"needs the output of stage '{dep}', which has not run in {context.RunDir} (run it with --stages {dep},{stage.Name})");
                    }
                    manifests[dep] = m;
                }
                upstream.Add($"{dep}:{m.OutputsHash}");
            }
            if (!selected)
            {
                if (StageManifest.TryLoad(dir) is { } done) manifests[stage.Name] = done;
                continue;
            }
            var options = stage.Options(context.Config);
            var inputsHash = StageManifest.Hash(string.Join("\n", new[]
            {
                stage.Name, JsonSerializer.Serialize(options, options.GetType(), ConfigJson.Options), dataHash,
            }.Concat(upstream)));

            var existing = StageManifest.TryLoad(dir);
            bool forced = force?.Contains(stage.Name) == true;
            string why = "";
            if (existing is not null && !forced && existing.IsReusable(dir, inputsHash, out why))
            {
                manifests[stage.Name] = existing;
                var reused = new StageOutcome(stage.Name, stage.Title, true, "reused (inputs unchanged)", existing);
                outcomes.Add(reused);
                onStage?.Invoke(reused);
                continue;
            }
            var note = forced ? "forced" : existing is null ? "new" : $"recomputed: {why}";
            Prepare(dir, inputsHash, existing is not null);
            var sw = Stopwatch.StartNew();
            var result = stage.Run(context, ct);
            var manifest = StageManifest.Write(dir, stage.Name, inputsHash, sw.Elapsed.TotalSeconds, result.Metrics, options);
            manifests[stage.Name] = manifest;
            var outcome = new StageOutcome(stage.Name, stage.Title, false, note, manifest);
            outcomes.Add(outcome);
            onStage?.Invoke(outcome);
        }
        return outcomes;
    }

    /// <summary>
    /// Makes the stage folder ready: same inputs as an interrupted attempt → keep it (resume); different
    /// inputs or a stale complete output → move the old folder aside to &lt;stage&gt;.prev.
    /// </summary>
    private static void Prepare(string dir, string inputsHash, bool hadManifest)
    {
        var marker = Path.Combine(dir, InputsMarker);
        bool sameInputs = File.Exists(marker) && File.ReadAllText(marker).Trim() == inputsHash;
        if (Directory.Exists(dir) && (hadManifest || !sameInputs))
        {
            var prev = dir + ".prev";
            if (Directory.Exists(prev)) Directory.Delete(prev, true);
            Directory.Move(dir, prev);
        }
        Directory.CreateDirectory(dir);
        File.WriteAllText(marker, inputsHash);
    }

    /// <summary>Ids and image labels of both splits: what the stages read besides upstream outputs.</summary>
    private static string DataFingerprint(PipelineContext context)
    {
        var parts = new List<string>();
        foreach (var split in new[] { context.TrainSplit, context.ValSplit })
        {
            var ds = VocDataset.Open(context.VocRoot, split, new VocOptions { VerifyImages = false });
            foreach (var s in ds.Samples)
            {
                var info = new FileInfo(s.ImagePath);
                parts.Add($"{split}/{s.Id}:{string.Join(',', s.Labels.OrderBy(c => c))}:{info.Length}");
            }
        }
        return StageManifest.Hash(string.Join("\n", parts));
    }
}
