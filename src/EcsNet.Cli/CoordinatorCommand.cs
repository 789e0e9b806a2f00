using System.CommandLine;
using EcsNet.AllReduce.Rendezvous;
using EcsNet.Data;

namespace EcsNet.Cli;

/// <summary>`ecsnet coordinator`: the rendezvous service of a data-parallel job.</summary>
public static class CoordinatorCommand
{
    public static Command Build(CliIo io)
    {
        var defaults = new CoordinatorOptions();
        var listen = new Option<string>("--listen")
        {
            Description = "Address to listen on, host:port (e.g. 0.0.0.0:29500 or 127.0.0.1:0 for any free port).",
            DefaultValueFactory = _ => "127.0.0.1:29500",
        };
        var world = new Option<int>("--world") { Description = "Workers to wait for before the first generation forms.", DefaultValueFactory = _ => 1 };
        var minWorld = new Option<int?>("--min-world") { Description = "Fewest workers a later generation may have after losses (default: 1)." };
        var heartbeat = new Option<double>("--heartbeat")
        {
            Description = $"Seconds between worker heartbeats (default {defaults.HeartbeatInterval.TotalSeconds}).",
            DefaultValueFactory = _ => defaults.HeartbeatInterval.TotalSeconds,
        };
        var lease = new Option<double>("--lease")
        {
            Description = $"Seconds without a heartbeat after which a worker is lost (default {defaults.LeaseTimeout.TotalSeconds}).",
            DefaultValueFactory = _ => defaults.LeaseTimeout.TotalSeconds,
        };
        var command = new Command("coordinator", "Run the coordinator of a data-parallel job: ranks, generations, barriers, lost-worker detection.");
        command.Options.Add(listen);
        command.Options.Add(world);
        command.Options.Add(minWorld);
        command.Options.Add(heartbeat);
        command.Options.Add(lease);
        command.SetAction(EcsNetCli.Guard(io, async (parse, ct) =>
        {
            var options = new CoordinatorOptions
            {
                WorldSize = parse.GetValue(world),
                MinWorldSize = parse.GetValue(minWorld) ?? 1,
                HeartbeatInterval = TimeSpan.FromSeconds(parse.GetValue(heartbeat)),
                LeaseTimeout = TimeSpan.FromSeconds(parse.GetValue(lease)),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new BadInputException("coordinator", e.Message.Split(" (Parameter")[0]);
            }
            var (address, port) = Listen(parse.GetValue(listen)!);
            await using var host = await CoordinatorHost.StartAsync(options, address, port, ct);
            host.RankLost += lost => io.Err.WriteLine($"lost rank {lost.Rank} ({lost.Address}) of generation {lost.Generation}: {lost.Reason}");
            io.Out.WriteLine($"coordinator listening on {host.Address} (world {options.WorldSize})");
            io.Out.Flush();
            long seen = 0;
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(200, ct).ContinueWith(_ => { }, CancellationToken.None);
                var status = host.Status();
                if (status.Current is { } current && current.Number != seen)
                {
                    seen = current.Number;
                    io.Out.WriteLine($"generation {current.Number}: world {current.WorldSize}: " +
                                     string.Join(", ", current.Members.Select(m => $"rank {m.Rank} {m.Address} {m.Device}")));
                    io.Out.Flush();
                }
            }
            return EcsNetCli.ExitOk;
        }));
        return command;
    }

    internal static (System.Net.IPAddress Address, int Port) Listen(string text)
    {
        try
        {
            return CoordinatorHost.ParseListen(text);
        }
        catch (FormatException e)
        {
            throw new BadInputException("--listen", e.Message);
        }
    }
}
