using ModelGen.Artifact;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Training.Rules;

/// <summary>
/// ReduceMean, ReduceSum and ReduceMax over constant axes (attribute, or input from opset 18; 13 for ReduceSum),
/// keepdims either way. The batch axis is never reduced (that would mix samples): such a node is refused. Each output
/// sums its elements in row-major order of the reduced axes; ReduceMax's gradient goes to the first maximum.
/// </summary>
public sealed class ReduceRule : GradientRule
{
    /// <summary>The reduced axes of the IR input, or null when they are given at run time.</summary>
    static HashSet<int>? Axes(Node node, Graph graph)
    {
        int rank = graph[node.Inputs[0]].Shape!.Length;
        long fromInput = node.OpType == "ReduceSum" ? 13 : 18;
        long[]? raw;
        if (graph.Opset >= fromInput)
        {
            if (node.HasInput(1) && graph[node.Inputs[1]].Constant is not { Type: ElementType.Int64 }) return null;
            raw = node.HasInput(1) ? graph[node.Inputs[1]].Constant!.Ints : null;
        }
        else raw = node.Ints("axes");
        if (raw is null || raw.Length == 0)
            return node.Int("noop_with_empty_axes", 0) != 0 ? [] : [.. Enumerable.Range(0, rank)];
        return [.. raw.Select(a => (int)(a < 0 ? a + rank : a))];
    }

    public override string? Refusal(Node node, Graph graph) =>
        Axes(node, graph) is not { } axes ? "its axes are computed at run time"
        : axes.Contains(0) ? "it reduces over the batch axis (axis 0)"
        : null;

    sealed record Layout(int[] Kept, int[] Reduced, int[]? Argmax);

    public override void Forward<T>(NodeRun<T> run)
    {
        var x = run.Inputs[0]!;
        var plan = ReducePlan.Of(run.Node.OpType["Reduce".Length..], x.Shape, Axes(run.Node, run.Graph)!);
        var kept = StridedOffsets.Of(plan.KeptShape, plan.KeptStrides);
        var reduced = StridedOffsets.Of(plan.ReducedShape, plan.ReducedStrides);
        var y = new Tensor<T>(run.BatchedOutputShape(0));
        var (xd, yd) = (x.Data, y.Data);
        int[]? argmax = plan.Op == "Max" ? new int[yd.Length] : null;
        T count = T.CreateChecked(reduced.Length);
        for (int o = 0; o < yd.Length; o++)
        {
            int start = kept[o];
            if (argmax is not null)
            {
                int best = 0;
                for (int r = 1; r < reduced.Length; r++) if (xd[start + reduced[r]] > xd[start + reduced[best]]) best = r;
                argmax[o] = best;
                yd[o] = xd[start + reduced[best]];
                continue;
            }
            T sum = T.Zero;
            for (int r = 0; r < reduced.Length; r++) sum += xd[start + reduced[r]];
            yd[o] = plan.Op == "Mean" ? sum / count : sum;
        }
        run.Saved = new Layout(kept, reduced, argmax);
        run.Outputs = [y];
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        if (run.InputGrads[0] is not { } dx) return;
        var (kept, reduced, argmax) = (Layout)run.Saved!;
        var (dy, dxd) = (run.OutputGrads[0]!.Data, dx.Data);
        T count = T.CreateChecked(reduced.Length);
        for (int o = 0; o < dy.Length; o++)
        {
            if (argmax is not null) { dxd[kept[o] + reduced[argmax[o]]] += dy[o]; continue; }
            T g = run.Node.OpType == "ReduceMean" ? dy[o] / count : dy[o];
            for (int r = 0; r < reduced.Length; r++) dxd[kept[o] + reduced[r]] += g;
        }
    }
}
