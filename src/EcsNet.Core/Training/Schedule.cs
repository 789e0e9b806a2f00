namespace EcsNet.Core.Training;

/// <summary>
/// Learning-rate schedule of paper §4.2: a constant warm-up rate for the first steps, then
/// lr · (1 − step/max_step)^γ (poly). With warm-up 0 it is PSA/SEAM's plain poly schedule.
/// </summary>
public sealed record PolySchedule(double BaseLr, int MaxSteps, double Power = 0.9, int WarmupSteps = 0, double WarmupLr = 0)
{
    public double At(int step)
    {
        if (step < WarmupSteps)
            return WarmupLr;
        double progress = Math.Min(1.0, (double)step / Math.Max(1, MaxSteps));
        return BaseLr * Math.Pow(1 - progress, Power);
    }
}
