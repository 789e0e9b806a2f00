using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using EcsNet.Bench;
using EcsNet.Cluster;
using EcsNet.Cluster.Messages;
using EcsNet.Cluster.Training;
using EcsNet.Core.Stages;
using EcsNet.Data;
using EcsNet.Host;
using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>
/// `ecsnet bench cluster`: the cost of the Akka layer (docs/BENCHMARKS.md): per-step time of a training through the
/// actors against the bare trainer, the time from a worker process's death (SIGKILL) or freeze (SIGSTOP: its
/// connections stay open, only the failure detector sees it) to the survivors' new generation, and the CPU per
/// image of the sharded crf jobs against the in-process runner. Measured in one session; never asserted in tests.
/// </summary>
public static class BenchClusterCommand
{
    public static Command Build(CliIo io)
    {
        var steps = new Option<int>("--steps") { Description = "Timed training steps of the overhead measurement.", DefaultValueFactory = _ => 60 };
        var rounds = new Option<int>("--rounds") { Description = "Alternating rounds of each measurement (the median is reported).", DefaultValueFactory = _ => 3 };
        var images = new Option<int>("--images") { Description = "Images of the crf measurement.", DefaultValueFactory = _ => 48 };
        var size = new Option<int>("--crf-size") { Description = "Side in pixels of the crf measurement's images (VOC photos are about 500 × 375).", DefaultValueFactory = _ => 320 };
        var parts = new Option<string>("--parts") { Description = "What to measure, comma separated: overhead, failover, crf.", DefaultValueFactory = _ => "overhead,failover,crf" };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var work = new Option<string?>("--work") { Description = "Folder for the data and runs (default: a temporary folder, deleted afterwards)." };
        var command = new Command("cluster", "The actor layer's cost: training step overhead, time to a new generation after a worker process dies or freezes, sharded CRF CPU per image.")
        {
            steps, rounds, images, size, parts, json, work,
        };
        command.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var wanted = parse.GetValue(parts)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var p in wanted)
                if (p is not ("overhead" or "failover" or "crf"))
                    throw new BadInputException("--parts", $"'{p}' is not overhead, failover or crf");
            if (parse.GetValue(steps) < 10 || parse.GetValue(rounds) < 1 || parse.GetValue(images) < 4)
                throw new BadInputException("bench cluster", "--steps must be ≥ 10, --rounds ≥ 1, --images ≥ 4");
            var root = parse.GetValue(work) ?? Path.Combine(Path.GetTempPath(), "ecsnet-bench-cluster-" + Guid.NewGuid().ToString("N")[..12]);
            bool temporary = parse.GetValue(work) is null;
            var result = new Dictionary<string, object>();
            try
            {
                if (wanted.Contains("overhead"))
                {
                    var o = await ClusterBench.ActorOverheadAsync(Path.Combine(root, "overhead"), parse.GetValue(steps), 5, parse.GetValue(rounds), ct);
                    result["overhead"] = new
                    {
                        steps = o.Steps, bare_step_ms = o.Bare * 1e3, cluster_step_ms = o.Cluster * 1e3, overhead = o.Overhead,
                        bare_rounds_ms = o.BareStepSeconds.Select(s => s * 1e3), cluster_rounds_ms = o.ClusterStepSeconds.Select(s => s * 1e3),
                    };
                }
                if (wanted.Contains("failover"))
                {
                    var rows = new List<object>();
                    foreach (var signal in new[] { "KILL", "STOP" })
                        for (int r = 0; r < parse.GetValue(rounds); r++)
                            rows.Add(await Failover(Path.Combine(root, $"failover-{signal}-{r}"), signal, ct));
                    result["failover"] = rows;
                }
                if (wanted.Contains("crf"))
                {
                    var c = await ClusterBench.ShardedCrfAsync(Path.Combine(root, "crf"), parse.GetValue(images), parse.GetValue(size), parse.GetValue(rounds), ct);
                    result["crf"] = new
                    {
                        images = c.Images, size = c.Size, local_cpu_s_per_image = c.Local, sharded_cpu_s_per_image = c.Sharded, ratio = c.Ratio,
                        local_rounds = c.LocalCpuPerImage, sharded_rounds = c.ShardedCpuPerImage,
                    };
                }
            }
            finally
            {
                if (temporary)
                    try { Directory.Delete(root, true); } catch (IOException) { }
            }
            if (parse.GetValue(json))
                io.Out.WriteLine(JsonSerializer.Serialize(result));
            else
                foreach (var (k, v) in result)
                    io.Console.MarkupLine($"[bold]{k}[/]: {Markup.Escape(JsonSerializer.Serialize(v))}");
            return EcsNetCli.ExitOk;
        }));
        return command;
    }

    /// <summary>
    /// A training of two `ecsnet node --roles worker` processes joined to a coordinator node in this process; at
    /// step 5 one process gets <paramref name="signal"/>; seconds until the survivor joined a generation without it.
    /// </summary>
    private static async Task<object> Failover(string dir, string signal, CancellationToken ct)
    {
        var synth = ClusterBench.Data(Path.Combine(dir, "data"), 16, 96);
        var config = ExperimentConfig.SmallCpu with
        {
            CamTraining = ExperimentConfig.SmallCpu.CamTraining with { Crop = 64, BatchSize = 4, Epochs = 200, CheckpointEvery = 100_000, Threads = 1 },
            Augment = ExperimentConfig.SmallCpu.Augment with { LongEdgeMin = 64, LongEdgeMax = 96 },
        };
        var runDir = Path.Combine(dir, "run");
        Directory.CreateDirectory(runDir);
        var experiment = Path.Combine(runDir, CamStage.ConfigFileName);
        ExperimentJson.Write(experiment, config);
        var settings = Path.Combine(dir, "worker.json");
        File.WriteAllText(settings, """{ "EcsNet": { "Training": { "Threads": 1 } } }""");

        await using var seed = await EmbeddedNode.StartAsync(0, roles: new[] { ClusterRoles.Coordinator, ClusterRoles.Preprocess }, ct: ct);
        using var workers = new LocalWorkers();
        for (int i = 0; i < 2; i++)
            workers.Start(new[] { "node", "--roles", "worker", "--seed", seed.Address.ToString(), "--config", settings });
        var spec = new RunSpec
        {
            Run = $"failover-{signal}", Workers = 2, RunDir = runDir,
            Training = TrainingMessages.ToSpec(new TrainingJob
            {
                Stage = CamStage.StageName, ExperimentFile = experiment, VocRoot = synth.Root, Split = "train", RunDir = runDir,
            }),
        };
        var clock = new Stopwatch();
        double? newGeneration = null;
        long before = 0;
        bool signalled = false;
        var run = seed.RunAsync(spec, s =>
        {
            if (!signalled && s.WorldSize == 2 && s.Step >= 5)
            {
                signalled = true;
                before = s.Generation;
                workers.Signal(1, signal);
                clock.Start();
            }
            else if (signalled && newGeneration is null && s.Generations.Any(g => g.Generation > before && g.WorldSize == 1))
            {
                newGeneration = clock.Elapsed.TotalSeconds;
                seed.Coordinator.Tell(new StopRun { Run = spec.Run }, Akka.Actor.ActorRefs.NoSender);
            }
        }, ct);
        var status = await run.WaitAsync(TimeSpan.FromMinutes(5), ct);
        workers.KillAll();
        return new
        {
            signal, seconds_to_new_generation = newGeneration, state = status.State.ToString(),
            generations = status.Generations.Where(g => g.Rank == 0).Select(g => new { g.Generation, world = g.WorldSize, from_step = g.ResumedStep, in_flight = g.AbandonedStep, g.Reason }),
        };
    }
}
