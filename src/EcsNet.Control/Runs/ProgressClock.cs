using EcsNet.Cluster.Messages;
using EcsNet.Control.V1;
using EcsNet.Core.Stages;

namespace EcsNet.Control.Runs;

/// <summary>
/// Turns the coordinator's statuses of a run into watch events with rates: images per second (the stage's global
/// batch over the step's seconds), all-reduce GB/s (gradient bytes over the buckets' all-reduce seconds) and the
/// time left in the stage (steps left at the present step time, or images left at the rate since the activity began).
/// </summary>
internal sealed class ProgressClock
{
    private string activity = "";
    private DateTime activityStart;
    private int activityStartDone;

    public RunEvent Event(RunStatus s, ExperimentConfig config, Run current)
    {
        var e = new RunEvent
        {
            Epoch = s.Step > 0 ? s.Epoch + 1 : 0, LearningRate = s.LearningRate, Done = s.Done, Total = s.Total, Activity = s.Activity, Generation = s.Generation,
        };
        e.Losses.AddRange(s.Terms.Select(t => new LossTerm { Name = t.Name, Value = t.Value }));
        if (s.StepSeconds > 0 && s.Step > 0)
        {
            e.ImagesPerSecond = BatchOf(current.Stage, config) / s.StepSeconds;
            e.EtaSeconds = Math.Max(0, s.MaxSteps - s.Step) * s.StepSeconds;
        }
        if (s.AllreduceSeconds > 0)
            e.AllreduceGbPerSecond = s.AllreduceBytes / s.AllreduceSeconds / 1e9;
        if (s.Total > 0 && s.Activity.Length > 0)
        {
            // the activity's first word names the work (its text may change with every image)
            var now = DateTime.UtcNow;
            var key = s.Activity.Split(' ')[0];
            if (key != activity || s.Done < activityStartDone)
                (activity, activityStart, activityStartDone) = (key, now, s.Done);
            double seconds = (now - activityStart).TotalSeconds;
            if (s.Done > activityStartDone && seconds > 0)
            {
                double rate = (s.Done - activityStartDone) / seconds;
                e.EtaSeconds = (s.Total - s.Done) / rate;
                if (e.ImagesPerSecond == 0)
                    e.ImagesPerSecond = rate;
            }
        }
        return e;
    }

    /// <summary>The global batch of a training stage (images per step).</summary>
    public static int BatchOf(string stage, ExperimentConfig config) => stage switch
    {
        "cam" => config.CamTraining.BatchSize,
        "aff" => config.Affinity.BatchSize,
        "seg" => config.Seg.BatchSize,
        _ => 1,
    };
}
