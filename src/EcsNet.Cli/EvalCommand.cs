using System.CommandLine;

namespace EcsNet.Cli;

/// <summary>`ecsnet eval`: mIoU of predicted label PNGs against VOC ground truth.</summary>
public static class EvalCommand
{
    public static Command Build(CliIo io)
    {
        var eval = new Command("eval", "Score predicted label PNGs against the ground-truth masks of a split (mIoU, per-class IoU).");
        return eval;
    }
}
