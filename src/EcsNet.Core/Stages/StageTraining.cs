using EcsNet.Core.Training;
using EcsNet.Data;

namespace EcsNet.Core.Stages;

/// <summary>Runs a <see cref="TrainingJob"/> with a placement: the one entry every training process uses (local runs and cluster workers).</summary>
public static class StageTraining
{
    public static TrainingResult Run(TrainingJob job, TrainingPlacement placement, TrainingCallbacks? callbacks, CancellationToken ct)
    {
        var config = ExperimentJson.Read(job.ExperimentFile);
        var dataset = VocDataset.Open(job.VocRoot, job.Split, job.Voc);
        return job.Stage switch
        {
            CamStage.StageName => CamStage.Train(config, dataset, job.RunDir, callbacks, ct, placement),
            AffinityStage.StageName => AffinityStage.Train(config, dataset,
                job.MapsDir ?? throw new BadInputException("training job", "an aff job needs the la/ha maps folder"),
                job.RunDir, job.CamRun, callbacks, ct, placement),
            SegStage.StageName => SegStage.Train(config, dataset,
                job.LabelDir ?? throw new BadInputException("training job", "a seg job needs the pseudo-label folder"),
                job.RunDir, job.CamRun, callbacks, ct, placement),
            _ => throw new BadInputException("training job", $"stage '{job.Stage}' does not train; the training stages are cam, aff and seg"),
        };
    }
}
