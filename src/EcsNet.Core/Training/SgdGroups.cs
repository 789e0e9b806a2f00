using TorchSharp.Modules;

namespace EcsNet.Core.Training;

/// <summary>
/// PSA/SEAM's four SGD parameter groups: trunk weights ×1 (weight decay), trunk biases ×2 (none), new-layer
/// weights ×m (weight decay), new-layer biases ×2m (none). Frozen parameters are left out.
/// </summary>
public static class SgdGroups
{
    public static List<(SGD.ParamGroup Group, double Multiplier)> Build(
        IEnumerable<(string Name, Parameter Param)> trunk, IEnumerable<(string Name, Parameter Param)> added,
        double learningRate, double momentum, double weightDecay, double newLayerMultiplier)
    {
        static bool IsBias(string name) => name == "bias" || name.EndsWith(".bias", StringComparison.Ordinal);
        var groups = new List<(SGD.ParamGroup, double)>();
        void Add(IEnumerable<(string Name, Parameter Param)> ps, double mult, double wd)
        {
            var list = ps.Where(p => p.Param.requires_grad).Select(p => p.Param).ToList();
            if (list.Count > 0)
                groups.Add((new SGD.ParamGroup(list, learningRate * mult, momentum, 0, wd, false, false), mult));
        }
        var t = trunk.ToList();
        var a = added.ToList();
        Add(t.Where(p => !IsBias(p.Name)), 1, weightDecay);
        Add(t.Where(p => IsBias(p.Name)), 2, 0);
        Add(a.Where(p => !IsBias(p.Name)), newLayerMultiplier, weightDecay);
        Add(a.Where(p => IsBias(p.Name)), 2 * newLayerMultiplier, 0);
        return groups;
    }

    /// <summary>Sets each group's rate to the scheduled base rate times its multiplier.</summary>
    public static void SetLearningRate(IEnumerable<(SGD.ParamGroup Group, double Multiplier)> groups, double learningRate)
    {
        foreach (var (g, mult) in groups)
            g.LearningRate = learningRate * mult;
    }
}
