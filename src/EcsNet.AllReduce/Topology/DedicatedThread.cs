using System.Collections.Concurrent;

namespace EcsNet.AllReduce.Topology;

/// <summary>
/// One thread that runs blocking work in order: shared-memory collectives sleep in futex waits, which must not
/// hold a thread-pool thread (the training step's own work runs there meanwhile).
/// </summary>
internal sealed class DedicatedThread : IDisposable
{
    private readonly BlockingCollection<(Action Work, TaskCompletionSource Done)> queue = new();
    private readonly Thread thread;

    public DedicatedThread(string name)
    {
        thread = new Thread(Loop) { IsBackground = true, Name = name };
        thread.Start();
    }

    public Task Run(Action work)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            queue.Add((work, done));
        }
        catch (InvalidOperationException)
        {
            done.SetException(new ObjectDisposedException(nameof(DedicatedThread)));
        }
        return done.Task;
    }

    private void Loop()
    {
        foreach (var (work, done) in queue.GetConsumingEnumerable())
        {
            try
            {
                work();
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        }
    }

    public void Dispose()
    {
        queue.CompleteAdding();
        if (Thread.CurrentThread != thread)
            thread.Join(TimeSpan.FromSeconds(5));
    }
}
