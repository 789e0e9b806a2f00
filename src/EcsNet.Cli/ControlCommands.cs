using System.CommandLine;
using System.Globalization;
using EcsNet.Control.Api;
using EcsNet.Control.V1;
using EcsNet.Core.Stages;
using EcsNet.Data;
using Google.Protobuf;
using Grpc.Core;
using Spectre.Console;

using V1Client = EcsNet.Control.V1.Control.ControlClient;

namespace EcsNet.Cli;

/// <summary>
/// The operator verbs, clients of a control API (`ecsnet serve`): submit, runs, watch, scale, pause, resume, stop,
/// artifacts and status. They parse, call, and print; the server does the work. docs/CONTROL.md.
/// </summary>
public static class ControlCommands
{
    public static IEnumerable<Command> Build(CliIo io)
    {
        yield return Submit(io);
        yield return Runs(io);
        yield return Watch(io);
        yield return Scale(io);
        yield return Lifecycle(io, "pause", "Pause a run: the step in flight finishes and is checkpointed; resume goes on from it.", (c, r) => c.PauseRunAsync(r));
        yield return Lifecycle(io, "resume", "Resume a paused run from its checkpoints.", (c, r) => c.ResumeRunAsync(r));
        yield return Lifecycle(io, "stop", "Stop a run for good after the step in flight (checkpointed; finished stages stay).", (c, r) => c.StopRunAsync(r));
        yield return Artifacts(io);
        yield return Status(io);
    }

    private static Argument<string> RunArgument() => new("RUN") { Description = "Run id (ecsnet runs lists them)." };

    private static Command Verb(string name, string description, out ControlClient client, params Symbol[] symbols)
    {
        var command = new Command(name, description);
        foreach (var s in symbols)
        {
            if (s is Argument a) command.Arguments.Add(a);
            else if (s is Option o) command.Options.Add(o);
        }
        client = new ControlClient();
        client.AddTo(command);
        return command;
    }

    private static void Act(Command command, CliIo io, ControlClient client, Func<ParseResult, V1Client, CancellationToken, Task<int>> body) =>
        command.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var (api, channel) = client.Connect(parse);
            using (channel)
                return await ControlClient.Call(io, () => body(parse, api, ct));
        }));

    private static Command Submit(CliIo io)
    {
        var file = new Argument<string>("EXPERIMENT") { Description = "Experiment file (YAML or JSON): name, dataset, stages, workers and the stages' options (docs/EXPERIMENTS.md)." };
        var set = new Option<string[]>("--set") { Description = "Override an option, path=value (repeatable), e.g. cam.beta=0.7.", AllowMultipleArgumentsPerToken = true };
        var workers = new Option<int?>("--workers") { Description = "Worker actors (default: the file's workers, else 1)." };
        var watch = new Option<bool>("--watch") { Description = "Follow the run until it ends (as ecsnet watch)." };
        var json = new Option<bool>("--json") { Description = "Print the accepted run as JSON." };
        var command = Verb("submit", "Submit an experiment as a new run; prints its id.", out var client, file, set, workers, watch, json);
        Act(command, io, client, async (parse, api, ct) =>
        {
            var path = parse.GetValue(file)!;
            var experiment = Experiments.FromDocument(ExperimentFile.ReadDocument(path), path);
            experiment.Set.AddRange(parse.GetValue(set) ?? Array.Empty<string>());
            if (parse.GetValue(workers) is { } w) experiment.Workers = w;
            var run = await api.SubmitExperimentAsync(new SubmitExperimentRequest { Experiment = experiment }, cancellationToken: ct);
            if (parse.GetValue(json))
                io.Out.WriteLine(JsonFormatter.Default.Format(run));
            else
                io.Console.MarkupLine($"submitted run [bold]{Markup.Escape(run.Id)}[/] ({run.State.ToString().ToLowerInvariant()}, {run.Workers} worker(s)) in {Markup.Escape(run.RunDir)}");
            return parse.GetValue(watch) ? await WatchAsync(io, api, run.Id, ct) : EcsNetCli.ExitOk;
        });
        return command;
    }

    private static Command Runs(CliIo io)
    {
        var json = new Option<bool>("--json") { Description = "One JSON object per line (the API's Run message)." };
        var limit = new Option<int>("--limit") { Description = "At most this many runs, newest first.", DefaultValueFactory = _ => 50 };
        var command = Verb("runs", "List the runs in the registry, newest first.", out var client, json, limit);
        Act(command, io, client, async (parse, api, ct) =>
        {
            var reply = await api.ListRunsAsync(new ListRunsRequest { Limit = parse.GetValue(limit) }, cancellationToken: ct);
            if (parse.GetValue(json))
            {
                foreach (var r in reply.Runs)
                    io.Out.WriteLine(JsonFormatter.Default.Format(r));
                return EcsNetCli.ExitOk;
            }
            var table = new Table().AddColumn("run").AddColumn("state").AddColumn("stage").AddColumn("step").AddColumn("workers").AddColumn("mIoU %").AddColumn("created");
            foreach (var r in reply.Runs)
            {
                var miou = r.Stages.LastOrDefault(s => s.Metrics.ContainsKey("mIoU"))?.Metrics["mIoU"];
                table.AddRow(Markup.Escape(r.Id), r.State.ToString().ToLowerInvariant(), Markup.Escape(r.Stage), r.MaxSteps > 0 ? $"{r.Step}/{r.MaxSteps}" : "-",
                    r.Workers.ToString(CultureInfo.InvariantCulture), miou is { } m ? (100 * m).ToString("F1", CultureInfo.InvariantCulture) : "-",
                    r.Created.ToDateTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture));
            }
            io.Console.Write(table);
            return EcsNetCli.ExitOk;
        });
        return command;
    }

    private static Command Watch(CliIo io)
    {
        var run = RunArgument();
        var command = Verb("watch", "Follow a run live (stage, progress, loss, throughput, ETA) until it ends. Exit 0: completed, 1: failed, 7: stopped or paused.",
            out var client, run);
        Act(command, io, client, (parse, api, ct) => WatchAsync(io, api, parse.GetValue(run)!, ct));
        return command;
    }

    /// <summary>Follows the run's events with a live progress bar; the exit code says how the run ended.</summary>
    private static async Task<int> WatchAsync(CliIo io, V1Client api, string runId, CancellationToken ct)
    {
        using var call = api.WatchRun(new RunRef { Run = runId }, cancellationToken: ct);
        RunEvent? last = null;
        await io.Console.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async progress =>
            {
                ProgressTask? bar = null;
                string barStage = "";
                await foreach (var e in call.ResponseStream.ReadAllAsync(ct))
                {
                    last = e;
                    var stage = e.Run.Stage.Length > 0 ? e.Run.Stage : "run";
                    if (bar is null || stage != barStage)
                    {
                        bar?.StopTask();
                        bar = progress.AddTask(Markup.Escape(stage), maxValue: 1);
                        barStage = stage;
                    }
                    (double done, double total) = e.Total > 0 ? (e.Done, e.Total) : (e.Run.Step, Math.Max(1, e.Run.MaxSteps));
                    bar.MaxValue = total;
                    bar.Value = Math.Min(done, total);
                    bar.Description = Markup.Escape(Describe(e));
                }
                bar?.StopTask();
            });
        if (last is null)
            return EcsNetCli.ExitFailure;
        var r = last.Run;
        io.Console.MarkupLine($"run [bold]{Markup.Escape(r.Id)}[/] {r.State.ToString().ToLowerInvariant()}{(r.Error.Length > 0 ? ": " + Markup.Escape(r.Error) : "")}");
        foreach (var s in r.Stages)
            io.Console.MarkupLine($"  {Markup.Escape(s.Stage)}: {Markup.Escape(s.Title)}{(s.Metrics.TryGetValue("mIoU", out var m) ? $", mIoU {100 * m:F1} %" : "")}, {s.Seconds:F0} s{(s.Reused ? " (reused)" : "")}");
        return r.State switch
        {
            RunState.Completed => EcsNetCli.ExitOk,
            RunState.Failed => EcsNetCli.ExitFailure,
            _ => ControlClient.ExitRunStopped,
        };
    }

    /// <summary>One line of where a run is: stage, state, loss, throughput.</summary>
    internal static string Describe(RunEvent e)
    {
        var parts = new List<string> { $"{(e.Run.Stage.Length > 0 ? e.Run.Stage : "run")} {e.Run.State.ToString().ToLowerInvariant()}" };
        if (e.Total > 0 && e.Activity.Length > 0)
            parts.Add($"{e.Activity} {e.Done}/{e.Total}");
        else if (e.Run.MaxSteps > 0)
            parts.Add($"step {e.Run.Step}/{e.Run.MaxSteps} epoch {e.Epoch}");
        if (e.Losses.Count > 0)
            parts.Add($"loss {e.Losses[0].Value:F4}");
        if (e.LearningRate > 0)
            parts.Add($"lr {e.LearningRate:G3}");
        if (e.ImagesPerSecond > 0)
            parts.Add($"{e.ImagesPerSecond:F1} img/s");
        if (e.AllreduceGbPerSecond > 0)
            parts.Add($"all-reduce {e.AllreduceGbPerSecond:F2} GB/s");
        parts.Add($"{e.Run.Workers} worker(s)");
        if (e.Miou >= 0)
            parts.Add($"mIoU {100 * e.Miou:F1} %");
        return string.Join(", ", parts);
    }

    private static Command Scale(CliIo io)
    {
        var run = RunArgument();
        var workers = new Option<int>("--workers") { Description = "Target number of worker actors.", Required = true };
        var command = Verb("scale", "Set the worker actors of a running run; the ring re-forms as a new generation.", out var client, run, workers);
        Act(command, io, client, async (parse, api, ct) =>
        {
            var r = await api.ScaleWorkersAsync(new ScaleWorkersRequest { Run = parse.GetValue(run)!, Workers = parse.GetValue(workers) }, cancellationToken: ct);
            io.Console.MarkupLine($"run [bold]{Markup.Escape(r.Id)}[/] scaled to {parse.GetValue(workers)} worker(s)");
            return EcsNetCli.ExitOk;
        });
        return command;
    }

    private static Command Lifecycle(CliIo io, string name, string description, Func<V1Client, RunRef, AsyncUnaryCall<Run>> call)
    {
        var run = RunArgument();
        var command = Verb(name, description, out var client, run);
        Act(command, io, client, async (parse, api, ct) =>
        {
            var r = await call(api, new RunRef { Run = parse.GetValue(run)! });
            io.Console.MarkupLine($"run [bold]{Markup.Escape(r.Id)}[/] {r.State.ToString().ToLowerInvariant()}");
            return EcsNetCli.ExitOk;
        });
        return command;
    }

    private static Command Artifacts(CliIo io)
    {
        var run = RunArgument();
        var output = new Option<string>("--out") { Description = "Folder to write the run's files into (their paths in the run folder kept).", Required = true };
        var kinds = new Option<string[]>("--kind") { Description = "Only these kinds: checkpoints, labels, overlays, tables, report, logs (repeatable; default: every kind).", AllowMultipleArgumentsPerToken = true };
        var command = Verb("artifacts", "Download a run's files: checkpoints, pseudo labels, overlays, tables, report, logs.", out var client, run, output, kinds);
        Act(command, io, client, async (parse, api, ct) =>
        {
            var request = new GetArtifactsRequest { Run = parse.GetValue(run)! };
            request.Kinds.AddRange(parse.GetValue(kinds) ?? Array.Empty<string>());
            var root = Path.GetFullPath(parse.GetValue(output)!);
            using var call = api.GetArtifacts(request, cancellationToken: ct);
            int files = 0;
            long bytes = 0;
            FileStream? current = null;
            try
            {
                await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct))
                {
                    if (chunk.Offset == 0)
                    {
                        current?.Dispose();
                        var target = Path.GetFullPath(Path.Combine(root, chunk.Path));
                        if (!target.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                            throw new BadInputException(chunk.Path, "the server sent a path outside the output folder");
                        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                        current = new FileStream(target, FileMode.Create, FileAccess.Write);
                        files++;
                    }
                    chunk.Data.WriteTo(current!);
                    bytes += chunk.Data.Length;
                }
            }
            finally
            {
                current?.Dispose();
            }
            io.Console.MarkupLine($"wrote {files} file(s), {bytes / 1e6:F1} MB, to [bold]{Markup.Escape(root)}[/]");
            return EcsNetCli.ExitOk;
        });
        return command;
    }

    private static Command Status(CliIo io)
    {
        var command = Verb("status", "The cluster behind a control API: members and roles, the coordinator, workers, runs in flight.", out var client);
        Act(command, io, client, async (_, api, ct) =>
        {
            var s = await api.GetStatusAsync(new GetStatusRequest(), cancellationToken: ct);
            var table = new Table().AddColumn("member").AddColumn("roles").AddColumn("status");
            foreach (var m in s.Members)
                table.AddRow(Markup.Escape(m.Address), string.Join(",", m.Roles), m.Status);
            io.Console.Write(table);
            io.Console.MarkupLine($"coordinator {Markup.Escape(s.Coordinator)}; {s.Workers} worker actor(s); runs in flight: {(s.ActiveRuns.Count > 0 ? Markup.Escape(string.Join(", ", s.ActiveRuns)) : "none")}");
            return EcsNetCli.ExitOk;
        });
        return command;
    }
}
