namespace EcsNet.Core.Stages;

/// <summary>The method's stages in order (irn's "a pipeline is just the list of stages").</summary>
public static class PipelineStages
{
    /// <summary>CAM (ECS-Net) → dense CRF → AffinityNet → random walk → DeepLab.</summary>
    public static Pipeline Default() => new(new IPipelineStage[]
    {
        new CamStage(),
        new CrfStage(),
        new AffinityStage(),
        new RandomWalkStage(),
        new SegStage(),
    });
}
