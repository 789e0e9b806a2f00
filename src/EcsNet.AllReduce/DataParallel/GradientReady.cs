using static TorchSharp.torch;

namespace EcsNet.AllReduce.DataParallel;

/// <summary>
/// An identity in forward whose backward tells a <see cref="IGradientProbe"/> that the module it sits in
/// front of has finished its backward. TorchSharp 0.107 has no <c>Tensor.register_hook</c>; this custom
/// autograd function is the equivalent. Placed on a module's input by a forward pre-hook, its backward
/// runs right after the module's own backward node and the AccumulateGrad nodes of its parameters
/// (libtorch runs AccumulateGrad first and otherwise the most recently created node first), so the
/// module's parameter gradients are final when it fires.
/// </summary>
internal sealed class GradientReady : autograd.SingleTensorFunction<GradientReady>
{
    public override string Name => nameof(GradientReady);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("probe", vars[1]);
        ctx.save_data("module", vars[2]);
        var input = (Tensor)vars[0];
        return input.view_as(input);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        ((IGradientProbe)ctx.get_data("probe")).BackwardReached((int)ctx.get_data("module"));
        // one entry per argument of apply: the tensor gets its gradient through, the two tags get none
        return new List<Tensor> { grad_output, null!, null! };
    }
}

/// <summary>Receives "module m finished its backward" from <see cref="GradientReady"/>.</summary>
internal interface IGradientProbe
{
    void BackwardReached(int module);
}
