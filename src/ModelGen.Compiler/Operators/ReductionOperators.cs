using ModelGen.Artifact;

namespace ModelGen.Compiler.Operators;

/// <summary>
/// A reduction plan: the axes that stay (sizes, strides in x) and the axes reduced (sizes, strides);
/// y is the kept axes in order, contiguous. ReduceMean/Sum/Max and the global pools share it.
/// </summary>
public sealed record ReducePlan(string Op, int[] KeptShape, long[] KeptStrides, int[] ReducedShape, long[] ReducedStrides)
{
    public static ReducePlan Of(string op, int[] x, ISet<int> axes)
    {
        var strides = RemapPlan.StridesOf(x);
        var kept = Enumerable.Range(0, x.Length).Where(d => !axes.Contains(d)).ToArray();
        var reduced = Enumerable.Range(0, x.Length).Where(axes.Contains).ToArray();
        return new ReducePlan(op, [.. kept.Select(d => x[d])], [.. kept.Select(d => strides[d])], [.. reduced.Select(d => x[d])], [.. reduced.Select(d => strides[d])]);
    }

    public long ReducedCount => TensorData.Size(ReducedShape);

    public float[] Apply(float[] x)
    {
        long outCount = TensorData.Size(KeptShape), inner = ReducedCount;
        var y = new float[outCount];
        for (long o = 0; o < outCount; o++)
        {
            long baseOffset = Offset(o, KeptShape, KeptStrides);
            double acc = Op == "Max" ? double.NegativeInfinity : 0;
            for (long r = 0; r < inner; r++)
            {
                float v = x[baseOffset + Offset(r, ReducedShape, ReducedStrides)];
                acc = Op == "Max" ? (float.IsNaN(v) || double.IsNaN(acc) ? double.NaN : Math.Max(acc, v)) : acc + v;
            }
            y[o] = (float)(Op == "Mean" ? acc / inner : acc);
        }
        return y;
    }

    static long Offset(long flat, int[] shape, long[] strides)
    {
        long offset = 0;
        for (int d = shape.Length - 1; d >= 0; d--) { offset += flat % shape[d] * strides[d]; flat /= shape[d]; }
        return offset;
    }

    public void WriteTo(Artifact.ArtifactNode node)
    {
        static int[] Ints(long[] v) => Array.ConvertAll(v, e => checked((int)e));
        node.SetReduce(new Artifact.ReduceAttributes(Op, KeptShape, Ints(KeptStrides), ReducedShape, Ints(ReducedStrides)));
    }
}

/// <summary>ReduceMean, ReduceSum, ReduceMax over constant axes (attribute or input, by opset), keepdims, noop_with_empty_axes.</summary>
public sealed class ReduceOperator(string opType) : Operator(opType)
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.ReduceRule();

    string Kind => OpType["Reduce".Length..];

    protected override bool AcceptsIntInput(Node node, int input) => input == 1;

    /// <summary>
    /// The reduction and the output's shape; <paramref name="AxesAtRunTime"/>: the axes arrive when the model runs (the
    /// plan's are those the declared output shape implies, and the evaluator reduces over the axes it is given).
    /// </summary>
    sealed record Reduction(ReducePlan Plan, int[] OutputShape, bool AxesAtRunTime) : OperatorPlan;

    static Reduction ReductionOf(Node node) => node.Plan as Reduction ?? throw new InvalidOperationException($"{node.Describe} used before shape inference");

    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "axes", "keepdims", "noop_with_empty_axes");
        RequireInputs(graph, node, 1, 2);
        var x = ShapeOf(graph, node, 0);
        long axesFromInput = OpType == "ReduceSum" ? 13 : 18;
        long[]? raw;
        bool noop = node.Int("noop_with_empty_axes", 0) != 0;
        bool axesAtRunTime = graph.Opset >= axesFromInput && IsRuntimeShapeInput(graph, node, 1);
        if (axesAtRunTime) raw = AxesFromDeclaredShape(graph, node, x);
        else if (graph.Opset >= axesFromInput)
        {
            raw = null;
            if (node.HasInput(1))
                raw = graph[node.Inputs[1]].Constant is { Type: ElementType.Int64 } c ? c.Ints
                    : throw Error(graph, node, "axes are computed at run time; ModelGen needs them constant", ErrorCodes.DynamicShape);
        }
        else raw = node.Ints("axes");
        HashSet<int> axes = raw is null || raw.Length == 0
            ? (noop ? [] : [.. Enumerable.Range(0, x.Length)])
            : [.. raw.Select(a => NormalizeAxis(graph, node, a, x.Length))];
        if (axes.Any(a => a >= x.Length)) throw Error(graph, node, "axes out of range");
        var plan = ReducePlan.Of(Kind, x, axes);
        bool keep = node.Int("keepdims", 1) != 0;
        int[] shape = keep ? [.. x.Select((d, i) => axes.Contains(i) ? 1 : d)] : plan.KeptShape;
        node.Plan = new Reduction(plan, shape, axesAtRunTime);
        SetOutput(graph, node, 0, shape);
    }

    /// <summary>
    /// Axes given at run time: the reduced axes are read off the declared output shape (with keepdims,
    /// the axes that became 1; without, those that vanished, matched left to right). The kernel checks
    /// when it runs that the axes it is given produce that shape.
    /// </summary>
    static long[] AxesFromDeclaredShape(Graph graph, Node node, int[] x)
    {
        var y = DeclaredOutput(graph, node, 0, "axes");
        bool keep = node.Int("keepdims", 1) != 0;
        var axes = new List<long>();
        if (keep)
        {
            if (y.Length != x.Length) throw Error(graph, node, "the declared output's rank differs from the input's");
            for (int i = 0; i < x.Length; i++)
                if (y[i] != x[i]) axes.Add(y[i] == 1 ? i : throw Error(graph, node, "the declared output shape is not a reduction of the input's"));
            // Nothing changed: without noop the axes can only be size-1 axes (reducing them changes nothing).
            if (axes.Count == 0 && node.Int("noop_with_empty_axes", 0) == 0)
            {
                axes.AddRange(Enumerable.Range(0, x.Length).Where(i => x[i] == 1).Select(i => (long)i));
                if (axes.Count == 0) throw Error(graph, node, "the declared output shape equals the input's, which no axes produce without noop_with_empty_axes");
            }
        }
        else
        {
            // Matched from the right: the kernel's run-time check refuses axes that would mean another match.
            int j = y.Length - 1;
            for (int i = x.Length - 1; i >= 0; i--)
                if (j >= 0 && x[i] == y[j] && i >= j) j--;
                else axes.Insert(0, i);
            if (j != -1) throw Error(graph, node, "the declared output shape is not a reduction of the input's");
        }
        return [.. axes];
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var (plan, shape, axesAtRunTime) = ReductionOf(node);
        if (axesAtRunTime && inputs.Length > 1 && inputs[1] is { } given)
            plan = PlanForGivenAxes(node, inputs[0]!.Shape, given.Ints, shape);
        return [new TensorData(shape, plan.Apply(inputs[0]!.Floats))];
    }

    /// <summary>The plan for axes given at run time, which must produce the compiled output shape (as the kernel checks).</summary>
    ReducePlan PlanForGivenAxes(Node node, int[] x, long[] given, int[] compiled)
    {
        bool keep = node.Int("keepdims", 1) != 0, noop = node.Int("noop_with_empty_axes", 0) != 0;
        var axes = new HashSet<int>();
        foreach (long a in given)
        {
            long n = a < 0 ? a + x.Length : a;
            if (n < 0 || n >= x.Length || !axes.Add((int)n)) throw new ArgumentException($"axes of node '{node.Name}' ({OpType}) are out of range or repeated", node.Inputs[1]);
        }
        if (given.Length == 0 && !noop) axes.UnionWith(Enumerable.Range(0, x.Length));
        var plan = ReducePlan.Of(Kind, x, axes);
        int[] shape = keep ? [.. x.Select((d, i) => axes.Contains(i) ? 1 : d)] : plan.KeptShape;
        if (!shape.SequenceEqual(compiled))
            throw new ArgumentException($"{node.Inputs[1]} does not give the shape this model was compiled for ([{string.Join(", ", compiled)}]).", node.Inputs[1]);
        return plan;
    }

    public override void Lower(Node node, ILowering lowering)
    {
        var plan = ReductionOf(node).Plan;
        if (node.HasInput(1) && lowering.Graph[node.Inputs[1]].Constant is null)
        {
            // Axes given at run time: several sets of axes can give the compiled output shape, so the kernel
            // reads them when it runs (and checks the shape they give) rather than assuming one.
            var runtime = lowering.AddNode(KernelKind.ReduceRuntime, OpType, node.Name, [lowering.Tensor(node.Inputs[0]), lowering.Tensor(node.Inputs[1])], [lowering.Tensor(node.Outputs[0])]);
            runtime.SetReduceRuntime(new ReduceRuntimeAttributes(Kind, lowering.Graph[node.Inputs[0]].Shape!, node.Int("keepdims", 1) != 0, node.Int("noop_with_empty_axes", 0) != 0));
            return;
        }
        plan.WriteTo(lowering.AddNode(KernelKind.Reduce, OpType, node.Name, [lowering.Tensor(node.Inputs[0])], [lowering.Tensor(node.Outputs[0])]));
    }
}

/// <summary>GlobalAveragePool and GlobalMaxPool: a mean or maximum over every spatial axis, kept as 1s.</summary>
public sealed class GlobalPoolOperator(string opType) : Operator(opType)
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.GlobalPoolRule(opType == "GlobalAveragePool");

    ReducePlan Plan(int[] x) => ReducePlan.Of(OpType == "GlobalAveragePool" ? "Mean" : "Max", x, Enumerable.Range(2, x.Length - 2).ToHashSet());

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 1, 1);
        RejectAttributes(graph, node);
        var x = ShapeOf(graph, node, 0);
        if (x.Length < 3) throw Error(graph, node, "needs an input of rank 3 or more (N, C, spatial…)");
        SetOutput(graph, node, 0, [x[0], x[1], .. Enumerable.Repeat(1, x.Length - 2)]);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        int[] shape = [x.Shape[0], x.Shape[1], .. Enumerable.Repeat(1, x.Shape.Length - 2)];
        return [new TensorData(shape, Plan(x.Shape).Apply(x.Floats))];
    }

    public override void Lower(Node node, ILowering lowering)
    {
        int x = lowering.Tensor(node.Inputs[0]);
        if (lowering.IsUInt8(x) && node.Form is Compress.ByteAverageForm)
        {
            // uint8 in (the layer before requantized for the layer after), uint8 out with the same parameters.
            int y = lowering.Tensor(node.Outputs[0]);
            lowering.MarkUInt8(y);
            lowering.AddNode(KernelKind.GlobalAveragePoolU8, OpType, node.Name, [x], [y]);
            return;
        }
        Plan(lowering.Graph[node.Inputs[0]].Shape!).WriteTo(lowering.AddNode(KernelKind.Reduce, OpType, node.Name, [x], [lowering.Tensor(node.Outputs[0])]));
    }
}

/// <summary>
/// Softmax and LogSoftmax. Before opset 13 the input is seen as 2-D at <c>axis</c> (default 1) and
/// normalized over everything after it; from opset 13 over the one axis (default −1).
/// </summary>
public sealed class SoftmaxOperator(string opType) : Operator(opType)
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.SoftmaxRule();

    /// <summary>The input seen as [outer, length, inner], normalized over length (how depends on the opset).</summary>
    sealed record Layout(int Outer, int Length, int Inner) : OperatorPlan;

    static Layout LayoutOf(Node node) => node.Plan as Layout ?? throw new InvalidOperationException($"{node.Describe} used before shape inference");

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 1, 1);
        RejectAttributes(graph, node, "axis");
        var x = ShapeOf(graph, node, 0);
        int axis = NormalizeAxis(graph, node, node.Int("axis", graph.Opset >= 13 ? -1 : 1), x.Length);
        if (axis >= x.Length && x.Length > 0) throw Error(graph, node, "axis out of range");
        int outer = (int)TensorData.Size(x[..axis]);
        node.Plan = graph.Opset >= 13
            ? new Layout(outer, x[axis], (int)TensorData.Size(x[(axis + 1)..]))
            : new Layout(outer, (int)TensorData.Size(x[axis..]), 1);
        SetOutput(graph, node, 0, x);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var (outer, len, inner) = LayoutOf(node);
        var x = inputs[0]!.Floats;
        var y = new float[x.Length];
        bool log = OpType == "LogSoftmax";
        for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++)
        {
            long b = (long)o * len * inner + i;
            float max = float.NegativeInfinity;
            for (int a = 0; a < len; a++) max = Math.Max(max, x[b + (long)a * inner]);
            double sum = 0;
            for (int a = 0; a < len; a++) sum += Math.Exp(x[b + (long)a * inner] - max);
            for (int a = 0; a < len; a++)
            {
                double v = x[b + (long)a * inner] - max;
                y[b + (long)a * inner] = (float)(log ? v - Math.Log(sum) : Math.Exp(v) / sum);
            }
        }
        return [new TensorData(inputs[0]!.Shape, y)];
    }

    public override void Lower(Node node, ILowering lowering)
    {
        var layout = LayoutOf(node);
        var n = lowering.AddNode(KernelKind.Softmax, OpType, node.Name, [lowering.Tensor(node.Inputs[0])], [lowering.Tensor(node.Outputs[0])]);
        n.SetSoftmax(new SoftmaxAttributes(layout.Outer, layout.Length, layout.Inner, log: OpType == "LogSoftmax"));
    }
}
