using System.Numerics;
using System.Runtime.CompilerServices;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Training.Rules;

/// <summary>
/// The data-movement rules compute each sample of the mini-batch as the model does at batch 1: an activation's
/// sample s is its IR shape at offset s·size, a constant is the same for every sample. A node that would move
/// data across axis 0 (the mini-batch) is refused.
/// </summary>
static class Samples
{
    /// <summary>Elements of one sample of a value (its IR shape, leading 1 included).</summary>
    public static int Size(Graph graph, string value) => checked((int)TensorData.Size(graph[value].Shape!));

    /// <summary>Where sample <paramref name="s"/> of input <paramref name="input"/> starts: a constant is shared by every sample.</summary>
    public static int Offset<T>(NodeRun<T> run, int input, int s) where T : unmanaged, IFloatingPointIeee754<T> =>
        run.IsActivation(input) ? s * Size(run.Graph, run.Node.Inputs[input]) : 0;

    /// <summary>Why the node cannot move its input <paramref name="input"/>, if it is not float32 (integers are build-time constants only).</summary>
    public static string? FloatRefusal(Node node, Graph graph, int input) =>
        node.HasInput(input) && graph[node.Inputs[input]].Type != ElementType.Float32
            ? $"input '{node.Inputs[input]}' is not float32 (integers computed at run time have no gradient)" : null;

    public const string AxisZero = "axis 0, the mini-batch (training runs every sample as the model at batch 1)";
}

/// <summary>
/// Transpose, Slice, Split and Concat: each output element of one sample is one input element, as the
/// operator's <see cref="RemapPlan"/> (made for the IR's batch-1 shapes) says. Forward copies per sample;
/// backward adds each output gradient back to its source, samples and elements in a fixed order.
/// </summary>
public abstract class RemapRule : GradientRule
{
    /// <summary>One plan as offsets: output <see cref="Output"/>[Targets[j]] = input <see cref="Input"/>[Sources[j]], within one sample.</summary>
    sealed record Move(int Input, int Output, int[] Sources, int[] Targets);

    readonly ConditionalWeakTable<Node, Move[]> _moves = new();

    /// <summary>The node's plans for one sample: which input fills which output.</summary>
    protected abstract IEnumerable<(int Input, int Output, RemapPlan Plan)> Plans(Node node, Graph graph);

    Move[] MovesOf(Node node, Graph graph) => _moves.GetValue(node, n => [.. Plans(n, graph).Select(p =>
    {
        var offsets = p.Plan.Offsets().ToArray();
        return new Move(p.Input, p.Output, [.. offsets.Select(o => checked((int)o.Source))], [.. offsets.Select(o => checked((int)o.Target))]);
    })]);

    public override void Forward<T>(NodeRun<T> run)
    {
        var node = run.Node;
        var outputs = new Tensor<T>[node.Outputs.Count];
        for (int o = 0; o < outputs.Length; o++)
            outputs[o] = node.Outputs[o].Length > 0 ? new Tensor<T>(run.BatchedOutputShape(o)) : new Tensor<T>([0]);
        var moves = MovesOf(node, run.Graph);
        for (int s = 0; s < run.Batch; s++)
            foreach (var m in moves)
            {
                var x = run.Inputs[m.Input]!.Data;
                var y = outputs[m.Output].Data;
                int xo = Samples.Offset(run, m.Input, s), yo = s * Samples.Size(run.Graph, node.Outputs[m.Output]);
                for (int j = 0; j < m.Sources.Length; j++) y[yo + m.Targets[j]] = x[xo + m.Sources[j]];
            }
        run.Outputs = outputs;
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        var node = run.Node;
        var moves = MovesOf(node, run.Graph);
        // Samples in order, then elements: a constant input shared by every sample sums them in this fixed order.
        for (int s = 0; s < run.Batch; s++)
            foreach (var m in moves)
            {
                if (run.InputGrads[m.Input] is not { } dx || run.OutputGrads[m.Output] is not { } dy) continue;
                int xo = Samples.Offset(run, m.Input, s), yo = s * Samples.Size(run.Graph, node.Outputs[m.Output]);
                for (int j = 0; j < m.Sources.Length; j++) dx.Data[xo + m.Sources[j]] += dy.Data[yo + m.Targets[j]];
            }
    }
}

/// <summary>Transpose by a perm that keeps axis 0 first.</summary>
public sealed class TransposeRule : RemapRule
{
    public override string? Refusal(Node node, Graph graph)
    {
        int rank = graph[node.Inputs[0]].Shape!.Length;
        long[] perm = node.Ints("perm") ?? [.. Enumerable.Range(0, rank).Reverse().Select(i => (long)i)];
        return Samples.FloatRefusal(node, graph, 0)
            ?? (rank > 0 && perm[0] != 0 ? $"its perm [{string.Join(",", perm)}] moves {Samples.AxisZero}" : null);
    }

    protected override IEnumerable<(int Input, int Output, RemapPlan Plan)> Plans(Node node, Graph graph) =>
        [(0, 0, TransposeOperator.Plan(node, graph[node.Inputs[0]].Shape!))];
}

/// <summary>Slice with constant starts, ends, axes and steps (negative ones too), never of axis 0.</summary>
public sealed class SliceRule : RemapRule
{
    public override string? Refusal(Node node, Graph graph)
    {
        if (Samples.FloatRefusal(node, graph, 0) is { } why) return why;
        if (node.Plan is not RemapPlan) return "its starts, ends, axes or steps are computed at run time";
        int rank = graph[node.Inputs[0]].Shape!.Length;
        long[] starts, ends;
        long[]? axes, steps;
        // Read as SliceOperator does: attributes before opset 10, constant inputs after.
        if (graph.Opset < 10) (starts, ends, axes, steps) = (node.Ints("starts")!, node.Ints("ends")!, node.Ints("axes"), null);
        else (starts, ends, axes, steps) = (Ints(graph, node, 1)!, Ints(graph, node, 2)!, Ints(graph, node, 3), Ints(graph, node, 4));
        axes ??= [.. Enumerable.Range(0, starts.Length).Select(i => (long)i)];
        for (int i = 0; i < axes.Length; i++)
        {
            if ((axes[i] < 0 ? axes[i] + rank : axes[i]) != 0) continue;
            // starts 0, ends "to the end", step 1 on axis 0 (what exporters write for x[:, …]) keeps every sample.
            bool whole = starts[i] == 0 && ends[i] >= int.MaxValue && (steps is null || steps[i] == 1);
            if (!whole) return $"it slices {Samples.AxisZero}";
        }
        return null;
    }

    static long[]? Ints(Graph graph, Node node, int input) => node.HasInput(input) ? graph[node.Inputs[input]].Constant?.Ints : null;

    protected override IEnumerable<(int Input, int Output, RemapPlan Plan)> Plans(Node node, Graph graph) => [(0, 0, (RemapPlan)node.Plan!)];
}

/// <summary>Split along any axis but 0, with sizes from the attribute, a constant input, num_outputs or equal parts.</summary>
public sealed class SplitRule : RemapRule
{
    public override string? Refusal(Node node, Graph graph)
    {
        int rank = graph[node.Inputs[0]].Shape!.Length;
        long axis = node.Int("axis", 0);
        return Samples.FloatRefusal(node, graph, 0)
            ?? (graph.Opset >= 13 && node.HasInput(1) && graph[node.Inputs[1]].Constant is null ? "its split sizes are computed at run time"
            : (axis < 0 ? axis + rank : axis) == 0 ? $"it splits {Samples.AxisZero}"
            : null);
    }

    protected override IEnumerable<(int Input, int Output, RemapPlan Plan)> Plans(Node node, Graph graph) =>
        SplitOperator.PlansOf(node).Select((plan, o) => (Input: 0, Output: o, Plan: plan)).Where(p => node.Outputs[p.Output].Length > 0);
}

/// <summary>Concat along any axis but 0; a constant input is the same in every sample.</summary>
public sealed class ConcatRule : RemapRule
{
    public override string? Refusal(Node node, Graph graph)
    {
        for (int i = 0; i < node.Inputs.Count; i++)
            if (Samples.FloatRefusal(node, graph, i) is { } why) return why;
        int rank = graph[node.Inputs.First(i => i.Length > 0)].Shape!.Length;
        long axis = node.Int("axis", 0);
        return (axis < 0 ? axis + rank : axis) == 0 ? $"it concatenates along {Samples.AxisZero}" : null;
    }

    protected override IEnumerable<(int Input, int Output, RemapPlan Plan)> Plans(Node node, Graph graph)
    {
        var present = Enumerable.Range(0, node.Inputs.Count).Where(node.HasInput).ToList();
        var plans = ConcatOperator.Plans(node, [.. present.Select(i => graph[node.Inputs[i]].Shape!)]).ToList();
        return present.Select((input, k) => (Input: input, Output: 0, Plan: plans[k]));
    }
}

/// <summary>Squeeze and Unsqueeze: the same elements under another shape; never of axis 0.</summary>
public sealed class SqueezeRule : GradientRule
{
    public override string? Refusal(Node node, Graph graph)
    {
        if (Samples.FloatRefusal(node, graph, 0) is { } why) return why;
        // Axes read as SqueezeOperator reads them: an attribute before opset 13, a constant input after.
        long[]? axes;
        if (graph.Opset >= 13 && node.HasInput(1))
        {
            if (graph[node.Inputs[1]].Constant is not { } c) return "its axes are computed at run time";
            axes = c.Ints;
        }
        else axes = graph.Opset >= 13 ? null : node.Ints("axes");
        int inRank = graph[node.Inputs[0]].Shape!.Length;
        if (node.OpType == "Squeeze")
            return axes is null ? $"it has no axes, so it squeezes {Samples.AxisZero} too"
                : axes.Any(a => (a < 0 ? a + inRank : a) == 0) ? $"it squeezes {Samples.AxisZero}" : null;
        int outRank = inRank + (axes?.Length ?? 0);
        return axes is not null && axes.Any(a => (a < 0 ? a + outRank : a) == 0) ? $"it inserts an axis before {Samples.AxisZero}" : null;
    }

    public override void Forward<T>(NodeRun<T> run)
    {
        var x = run.Inputs[0]!;
        var shape = run.BatchedOutputShape(0);
        if (run.IsActivation(0)) { run.Outputs = [x.Reshaped(shape)]; return; }
        // A constant: the same values in every sample.
        var y = new Tensor<T>(shape);
        for (int s = 0; s < run.Batch; s++) x.Data.CopyTo(y.Data, s * x.Count);
        run.Outputs = [y];
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        if (run.InputGrads[0] is not { } dx) return;
        var dy = run.OutputGrads[0]!.Data;
        int n = Samples.Size(run.Graph, run.Node.Inputs[0]);
        bool shared = !run.IsActivation(0);
        for (int s = 0; s < run.Batch; s++) Add<T>(dy.AsSpan(s * n, n), dx.Data.AsSpan(shared ? 0 : s * n, n));
    }

    /// <summary>sum[i] += g[i], element by element.</summary>
    internal static void Add<T>(ReadOnlySpan<T> g, Span<T> sum) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        for (; i <= g.Length - Vector<T>.Count; i += Vector<T>.Count)
            (new Vector<T>(sum[i..]) + new Vector<T>(g[i..])).CopyTo(sum[i..]);
        for (; i < g.Length; i++) sum[i] += g[i];
    }
}

/// <summary>
/// Gather: an embedding (a constant float table, a trained parameter, gathered by indices that are constant or
/// an int64 graph input) or an activation gathered along a non-batch axis by constant indices. Indices given at
/// run time come as a Tensor&lt;T&gt; of integers (exact in float32 below 2^24). The table's gradient is a
/// scatter-add in a fixed order: samples, then indices in order.
/// </summary>
public sealed class GatherRule : GradientRule
{
    public override string? Refusal(Node node, Graph graph)
    {
        var data = graph[node.Inputs[0]];
        int rank = data.Shape!.Length;
        long axis = node.Int("axis", 0);
        if (axis < 0) axis += rank;
        return Samples.FloatRefusal(node, graph, 0)
            ?? (data.Constant is null ? (axis == 0 ? $"it gathers along {Samples.AxisZero}" : null)
            : graph[node.Inputs[1]].Constant is not null ? "it gathers a constant by constant indices (constant folding computes it)"
            : axis != 0 ? $"it gathers a constant table along axis {axis}; an embedding gathers rows (axis 0)"
            : null);
    }

    /// <summary>The table of an embedding is trained.</summary>
    public override bool IsParameter(Node node, int input) => input == 0;

    /// <summary>The data seen as [outer, rows, inner] around the gathered axis, and the indices of one sample.</summary>
    static (int Outer, int Rows, int Inner, int Count) Dims(Node node, Graph graph)
    {
        var x = graph[node.Inputs[0]].Shape!;
        long a = node.Int("axis", 0);
        int axis = (int)(a < 0 ? a + x.Length : a);
        return ((int)TensorData.Size(x[..axis]), x[axis], (int)TensorData.Size(x[(axis + 1)..]), Samples.Size(graph, node.Inputs[1]));
    }

    public override void Forward<T>(NodeRun<T> run)
    {
        var (outer, rows, inner, count) = Dims(run.Node, run.Graph);
        var rowsOf = Indices(run, rows, count);
        var x = run.Inputs[0]!.Data;
        var y = new Tensor<T>(run.BatchedOutputShape(0));
        int ySize = outer * count * inner;
        for (int s = 0; s < run.Batch; s++)
        {
            int xo = Samples.Offset(run, 0, s);
            for (int o = 0; o < outer; o++)
                for (int p = 0; p < count; p++)
                    x.AsSpan(xo + (o * rows + rowsOf[s * count + p]) * inner, inner).CopyTo(y.Data.AsSpan(s * ySize + (o * count + p) * inner, inner));
        }
        run.Outputs = [y];
        run.Saved = rowsOf;
    }

    /// <summary>Each sample's rows (negative indices counted from the end), checked.</summary>
    static int[] Indices<T>(NodeRun<T> run, int rows, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var result = new int[run.Batch * count];
        var constant = run.Graph[run.Node.Inputs[1]].Constant;
        for (int i = 0; i < result.Length; i++)
        {
            long index;
            if (constant is not null) index = constant.Ints[i % count];
            else
            {
                var v = run.Inputs[1]!.Data[i];
                if (!T.IsInteger(v) || v < -T.CreateChecked(rows) || v >= T.CreateChecked(rows))
                    throw new ArgumentException($"{run.Node.Describe}: index {v} of '{run.Node.Inputs[1]}' (sample {i / count}) is not an integer in [{-rows}, {rows})");
                index = long.CreateChecked(v);
            }
            result[i] = (int)(index < 0 ? index + rows : index);
        }
        return result;
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        if (run.InputGrads[0] is not { } dx) return;
        var (outer, rows, inner, count) = Dims(run.Node, run.Graph);
        var rowsOf = (int[])run.Saved!;
        var dy = run.OutputGrads[0]!.Data;
        int ySize = outer * count * inner;
        for (int s = 0; s < run.Batch; s++)
        {
            int xo = Samples.Offset(run, 0, s);
            for (int o = 0; o < outer; o++)
                for (int p = 0; p < count; p++)
                    SqueezeRule.Add<T>(dy.AsSpan(s * ySize + (o * count + p) * inner, inner), dx.Data.AsSpan(xo + (o * rows + rowsOf[s * count + p]) * inner, inner));
        }
    }
}
