using EcsNet.Control.Registry;
using EcsNet.Control.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace EcsNet.Control.Api;

/// <summary>The registry's records as the control API's messages, and back.</summary>
public static class RunMessages
{
    public static RunState ToProto(RunLifecycle state) => (RunState)(int)state;

    public static RunLifecycle FromProto(RunState state) => (RunLifecycle)(int)state;

    public static bool IsOver(RunLifecycle state) => state is RunLifecycle.Completed or RunLifecycle.Failed or RunLifecycle.Stopped or RunLifecycle.Paused;

    public static string ExperimentToJson(Experiment e) => JsonFormatter.Default.Format(e);

    public static Experiment ExperimentFromJson(string json) => JsonParser.Default.Parse<Experiment>(json);

    public static Run ToRun(RunRecord r, IEnumerable<StageRecord> stages)
    {
        var run = new Run
        {
            Id = r.Id, Name = r.Name, State = ToProto(r.State), Experiment = ExperimentFromJson(r.ExperimentJson), RunDir = r.RunDir,
            Created = Timestamp.FromDateTimeOffset(r.Created), Updated = Timestamp.FromDateTimeOffset(r.Updated == default ? r.Created : r.Updated),
            Stage = r.Stage, Step = r.Step, MaxSteps = r.MaxSteps, Workers = r.Workers, Error = r.Error, Resumes = r.Resumes,
        };
        run.Stages.AddRange(stages.Select(ToProto));
        return run;
    }

    public static StageResult ToProto(StageRecord s)
    {
        var r = new StageResult { Stage = s.Stage, Title = s.Title, Reused = s.Reused, Seconds = s.Seconds, Note = s.Note };
        foreach (var (k, v) in s.Metrics)
            r.Metrics[k] = v;
        return r;
    }
}
