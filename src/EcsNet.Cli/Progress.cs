using Spectre.Console;

namespace EcsNet.Cli;

/// <summary>Runs long work off the console thread with a Spectre progress bar (plain lines when not interactive).</summary>
public static class Progress
{
    /// <param name="work">Receives a report(done, total, text) callback.</param>
    public static async Task<T> Run<T>(CliIo io, string title, Func<Action<int, int, string>, CancellationToken, T> work, CancellationToken ct)
    {
        if (!io.Console.Profile.Capabilities.Interactive)
        {
            int lastPercent = -1;
            string last = "";
            return await Task.Run(() => work((done, total, text) =>
            {
                int percent = total == 0 ? 100 : done * 100 / total;
                var line = $"{title}: {done}/{total} {text}";
                if ((percent / 10 != lastPercent / 10 || done == total) && line != last)
                {
                    lastPercent = percent;
                    last = line;
                    io.Out.WriteLine(line);
                }
            }, ct), ct);
        }
        T result = default!;
        await io.Console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(title);
                result = await Task.Run(() => work((done, total, text) =>
                {
                    task.MaxValue = Math.Max(1, total);
                    task.Value = done;
                    task.Description = $"{title} {Markup.Escape(text)}";
                }, ct), ct);
            });
        return result;
    }
}
