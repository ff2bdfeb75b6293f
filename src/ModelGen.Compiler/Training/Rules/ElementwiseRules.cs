using System.Numerics;
using ModelGen.Artifact;
using ModelGen.Compiler.Operators;
using ModelGen.Compiler.Training.Kernels;

namespace ModelGen.Compiler.Training.Rules;

/// <summary>Where each element of a strided view lies: the flat offsets, in row-major order of <paramref name="shape"/>.</summary>
static class StridedOffsets
{
    public static int[] Of(int[] shape, long[] strides)
    {
        var offsets = new int[TensorData.Size(shape)];
        var index = new int[shape.Length];
        long offset = 0;
        for (int i = 0; i < offsets.Length; i++)
        {
            offsets[i] = checked((int)offset);
            // Odometer: step the last axis, carrying into the ones before.
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                offset += strides[d];
                if (++index[d] < shape[d]) break;
                offset -= strides[d] * shape[d];
                index[d] = 0;
            }
        }
        return offsets;
    }

    /// <summary>The offsets of an operand of shape <paramref name="operand"/> broadcast to <paramref name="output"/>.</summary>
    public static int[] Broadcast(int[] operand, int[] output) => Of(output, Operators.Broadcast.Strides(operand, output));
}

/// <summary>
/// A unary element-wise node (Relu, Sigmoid, Clip with constant bounds, …): the function its operator resolved
/// (the node's "function" annotation) through <see cref="ElementFunctions"/>, as fused chains are.
/// </summary>
public sealed class UnaryRule : GradientRule
{
    public override string? Refusal(Node node, Graph graph) =>
        !node.Annotations.TryGetValue("function", out var f) ? "its bounds are computed at run time"
        : !ElementFunctions.IsTrainable(Activations.Parse(f).Op) ? $"{node.OpType} has no gradient"
        : null;

    static (string Op, float Alpha, float Beta) Function(Node node) => Activations.Parse(node.Annotations["function"]);

    public override void Forward<T>(NodeRun<T> run)
    {
        var (op, alpha, beta) = Function(run.Node);
        var x = run.Inputs[0]!;
        var y = new Tensor<T>(x.Shape);
        ElementFunctions.Apply(op, alpha, beta, x.Data, y.Data);
        run.Outputs = [y];
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        if (run.InputGrads[0] is not { } dx) return;
        var (op, alpha, beta) = Function(run.Node);
        var local = new T[dx.Count];
        ElementFunctions.Backward(op, alpha, beta, run.Inputs[0]!.Data, run.OutputGrads[0]!.Data, local);
        for (int i = 0; i < local.Length; i++) dx.Data[i] += local[i];
    }
}

/// <summary>
/// Add, Sub, Mul, Div and PRelu with numpy broadcasting in every direction (activation with activation or with a
/// constant, either side). A broadcast operand's gradient is the sum over the axes it was broadcast along, taken in
/// the output's row-major order, so always in the same order. A float constant of more than one value is a
/// parameter (a bias or a scale the exporter left apart, PRelu's slope); a one-value constant is not.
/// </summary>
public sealed class BinaryRule : GradientRule
{
    public override string? Refusal(Node node, Graph graph) =>
        node.OpType is not ("Add" or "Sub" or "Mul" or "Div" or "PRelu") ? $"{node.OpType} has no gradient"
        : BroadcastRefusal(node, graph, [0, 1]);

    /// <summary>Refuses operands that are integer, or constants that would broadcast the batch axis itself.</summary>
    internal static string? BroadcastRefusal(Node node, Graph graph, IEnumerable<int> inputs)
    {
        int rank = graph[node.Outputs[0]].Shape!.Length;
        foreach (int i in inputs)
        {
            var v = graph[node.Inputs[i]];
            if (v.Type != ElementType.Float32) return $"its input '{v.Name}' is not float32";
            if (v.Constant is null && v.Shape!.Length < rank) return $"its input '{v.Name}' gains axes before its batch axis";
            if (v.Constant is not null && OperandShape(node, graph, i) is var s && s.Length == rank && rank > 0 && s[0] != 1)
                return $"its constant '{v.Name}' spans the batch axis";
            if (v.Constant is null && i == 1 && node.Annotations.ContainsKey("bshape") && !OperandShape(node, graph, i).SequenceEqual(v.Shape!))
                return "its second input is broadcast the opset 6 way";
        }
        return null;
    }

    /// <summary>An operand's IR shape, aligned for the opset 1-6 broadcast when the operator noted one.</summary>
    static int[] OperandShape(Node node, Graph graph, int input) =>
        input == 1 && node.Annotations.TryGetValue("bshape", out var aligned)
            ? aligned.Length == 0 ? [] : [.. aligned.Split(',').Select(int.Parse)]
            : graph[node.Inputs[input]].Shape!;

    public override bool IsParameter(Node node, int input, Graph graph) =>
        graph[node.Inputs[input]].Constant is { Count: > 1 } || (node.OpType == "PRelu" && input == 1);

    sealed record Layout(int[] A, int[] B);

    public override void Forward<T>(NodeRun<T> run)
    {
        var (a, b) = (run.Inputs[0]!, Aligned(run, 1));
        var shape = Operators.Broadcast.Shape(a.Shape, b.Shape)!;
        var layout = new Layout(StridedOffsets.Broadcast(a.Shape, shape), StridedOffsets.Broadcast(b.Shape, shape));
        var y = new Tensor<T>(shape);
        var (oa, ob) = (layout.A, layout.B);
        var (ad, bd, yd) = (a.Data, b.Data, y.Data);
        switch (run.Node.OpType)
        {
            case "Add": for (int i = 0; i < yd.Length; i++) yd[i] = ad[oa[i]] + bd[ob[i]]; break;
            case "Sub": for (int i = 0; i < yd.Length; i++) yd[i] = ad[oa[i]] - bd[ob[i]]; break;
            case "Mul": for (int i = 0; i < yd.Length; i++) yd[i] = ad[oa[i]] * bd[ob[i]]; break;
            case "Div": for (int i = 0; i < yd.Length; i++) yd[i] = ad[oa[i]] / bd[ob[i]]; break;
            default: for (int i = 0; i < yd.Length; i++) yd[i] = ad[oa[i]] < T.Zero ? bd[ob[i]] * ad[oa[i]] : ad[oa[i]]; break;
        }
        run.Saved = layout;
        run.Outputs = [y];
    }

    /// <summary>Input <paramref name="input"/> with the opset 1-6 aligned shape when there is one (same elements).</summary>
    static Tensor<T> Aligned<T>(NodeRun<T> run, int input) where T : unmanaged, IFloatingPointIeee754<T> =>
        run.Graph[run.Node.Inputs[input]].Constant is not null && input == 1 && run.Node.Annotations.ContainsKey("bshape")
            ? run.Inputs[input]!.Reshaped(OperandShape(run.Node, run.Graph, input))
            : run.Inputs[input]!;

    public override void Backward<T>(NodeRun<T> run)
    {
        var layout = (Layout)run.Saved!;
        var (oa, ob) = (layout.A, layout.B);
        var (ad, bd, dy) = (run.Inputs[0]!.Data, run.Inputs[1]!.Data, run.OutputGrads[0]!.Data);
        var (da, db) = (run.InputGrads[0]?.Data, run.InputGrads[1]?.Data);
        string op = run.Node.OpType;
        if (da is not null)
            switch (op)
            {
                case "Add" or "Sub": for (int i = 0; i < dy.Length; i++) da[oa[i]] += dy[i]; break;
                case "Mul": for (int i = 0; i < dy.Length; i++) da[oa[i]] = Fma.Add(dy[i], bd[ob[i]], da[oa[i]]); break;
                case "Div": for (int i = 0; i < dy.Length; i++) da[oa[i]] += dy[i] / bd[ob[i]]; break;
                default: for (int i = 0; i < dy.Length; i++) da[oa[i]] += ad[oa[i]] < T.Zero ? bd[ob[i]] * dy[i] : dy[i]; break;
            }
        if (db is not null)
            switch (op)
            {
                case "Add": for (int i = 0; i < dy.Length; i++) db[ob[i]] += dy[i]; break;
                case "Sub": for (int i = 0; i < dy.Length; i++) db[ob[i]] -= dy[i]; break;
                case "Mul": for (int i = 0; i < dy.Length; i++) db[ob[i]] = Fma.Add(dy[i], ad[oa[i]], db[ob[i]]); break;
                // d(a/b)/db = −(a/b)/b
                case "Div": for (int i = 0; i < dy.Length; i++) db[ob[i]] = Fma.Add(-dy[i], ad[oa[i]] / bd[ob[i]] / bd[ob[i]], db[ob[i]]); break;
                default: for (int i = 0; i < dy.Length; i++) if (ad[oa[i]] < T.Zero) db[ob[i]] = Fma.Add(dy[i], ad[oa[i]], db[ob[i]]); break;
            }
    }
}

/// <summary>
/// Sum, Mean, Max and Min over two inputs or more, broadcasting. Max and Min send the gradient to the input that
/// gave the result; on a tie, to the first of them (torch.maximum splits a tie in halves; a tie between continuous
/// activations has probability zero, and a tie with a constant is better left to the fused Clip step, which takes the
/// gradient at its bound). Constants of Max and Min are thresholds, not parameters; Sum's and Mean's are as Add's.
/// </summary>
public sealed class VariadicRule : GradientRule
{
    public override string? Refusal(Node node, Graph graph) =>
        BinaryRule.BroadcastRefusal(node, graph, Enumerable.Range(0, node.Inputs.Count).Where(node.HasInput));

    public override bool IsParameter(Node node, int input, Graph graph) =>
        node.OpType is "Sum" or "Mean" && graph[node.Inputs[input]].Constant is { Count: > 1 };

    /// <summary>Each input's offsets into the output, and for Max/Min which input gave each output.</summary>
    sealed record Layout(int[][] Offsets, byte[]? Winner);

    public override void Forward<T>(NodeRun<T> run)
    {
        var inputs = run.Inputs.Where(t => t is not null).Select(t => t!).ToArray();
        if (inputs.Length > 255) throw new NotSupportedException("more than 255 inputs");
        var shape = inputs.Aggregate(Array.Empty<int>(), (s, t) => Operators.Broadcast.Shape(s, t.Shape)!);
        var offsets = inputs.Select(t => StridedOffsets.Broadcast(t.Shape, shape)).ToArray();
        var y = new Tensor<T>(shape);
        var yd = y.Data;
        string op = run.Node.OpType;
        byte[]? winner = op is "Max" or "Min" ? new byte[yd.Length] : null;
        for (int i = 0; i < yd.Length; i++) yd[i] = inputs[0].Data[offsets[0][i]];
        for (int k = 1; k < inputs.Length; k++)
        {
            var (x, o) = (inputs[k].Data, offsets[k]);
            for (int i = 0; i < yd.Length; i++)
            {
                T v = x[o[i]];
                // Strictly greater (smaller): a tie stays with the earlier input.
                if (winner is null) yd[i] += v;
                else if (op == "Max" ? v > yd[i] : v < yd[i]) { yd[i] = v; winner[i] = (byte)k; }
            }
        }
        if (op == "Mean")
        {
            T scale = MeanScale<T>(inputs.Length);
            for (int i = 0; i < yd.Length; i++) yd[i] *= scale;
        }
        run.Saved = new Layout(offsets, winner);
        run.Outputs = [y];
    }

    /// <summary>1/n as the evaluator multiplies by it (a float32 constant).</summary>
    static T MeanScale<T>(int n) where T : unmanaged, IFloatingPointIeee754<T> => T.CreateChecked(1f / n);

    public override void Backward<T>(NodeRun<T> run)
    {
        var (offsets, winner) = (Layout)run.Saved!;
        var dy = run.OutputGrads[0]!.Data;
        T scale = run.Node.OpType == "Mean" ? MeanScale<T>(offsets.Length) : T.One;
        int k = -1;
        for (int input = 0; input < run.Inputs.Length; input++)
        {
            if (run.Inputs[input] is null) continue;
            k++;
            if (run.InputGrads[input] is not { } dx) continue;
            var o = offsets[k];
            if (winner is null) for (int i = 0; i < dy.Length; i++) dx.Data[o[i]] += scale * dy[i];
            else for (int i = 0; i < dy.Length; i++) if (winner[i] == k) dx.Data[o[i]] += dy[i];
        }
    }
}
