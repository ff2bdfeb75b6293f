using ModelGen.Compiler.Operators;
using ModelGen.Compiler.Training.Kernels;

namespace ModelGen.Compiler.Training.Rules;

/// <summary>
/// Flatten, Reshape, Identity and Dropout (inference: identity): the same elements in another shape, so the
/// forward pass shares the input's data and the gradient passes through unchanged. Each sample must stay its
/// own block (the IR's output keeps its leading 1), else the batch would mix.
/// </summary>
public sealed class ReshapeRule : GradientRule
{
    public override string? Refusal(Node node, Graph graph) =>
        graph[node.Outputs[0]].Shape is not { Length: > 0 } y || y[0] != 1
            ? "its output does not keep the batch axis first (a leading 1), so the samples of a mini-batch would mix"
            : null;

    public override void Forward<T>(NodeRun<T> run) => run.Outputs = [run.Inputs[0]!.Reshaped(run.BatchedOutputShape(0))];

    public override void Backward<T>(NodeRun<T> run)
    {
        if (run.InputGrads[0] is { } dx) Accumulate.Add<T>(run.OutputGrads[0]!.Data, dx.Data);
    }
}

/// <summary>
/// Pad with constant, reflect or edge mode and pads known when compiling, through the operator's own index plan:
/// each output element is an input element or the fill. The gradient adds each output's back to its source, in
/// output order (reflect and edge send several outputs to one input).
/// </summary>
public sealed class PadRule : GradientRule
{
    public override string? Refusal(Node node, Graph graph) =>
        node.Plan is not RemapPlan plan ? "its pads are computed at run time"
        : plan.Maps[0] is not null ? "it pads the batch axis"
        : null;

    public override void Forward<T>(NodeRun<T> run)
    {
        var plan = (RemapPlan)run.Node.Plan!;
        var x = run.Inputs[0]!;
        var y = new Tensor<T>(run.BatchedOutputShape(0));
        // One sample's source offsets (−1: the fill), the same for every sample.
        var sources = plan.Offsets().Select(o => (int)o.Source).ToArray();
        int inSize = x.Count / run.Batch, outSize = sources.Length;
        T fill = T.CreateChecked(plan.Fill);
        for (int s = 0; s < run.Batch; s++)
            for (int t = 0; t < outSize; t++)
                y.Data[s * outSize + t] = sources[t] < 0 ? fill : x.Data[s * inSize + sources[t]];
        run.Outputs = [y];
        run.Saved = sources;
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        if (run.InputGrads[0] is not { } dx) return;
        var sources = (int[])run.Saved!;
        var dy = run.OutputGrads[0]!.Data;
        int inSize = dx.Count / run.Batch, outSize = sources.Length;
        for (int s = 0; s < run.Batch; s++)
            for (int t = 0; t < outSize; t++)
                if (sources[t] >= 0) dx.Data[s * inSize + sources[t]] += dy[s * outSize + t];
    }
}
