using ModelGen.Artifact;
using ModelGen.Compiler.Evaluate;

namespace ModelGen.Compiler.Operators;

/// <summary>
/// The unary element-wise operators of <see cref="Activations"/> (Relu, Sigmoid, Clip, …): attributes
/// resolved to (alpha, beta) once, so shape inference, evaluation, fusion and emission agree.
/// </summary>
public sealed class UnaryOperator(string opType) : Operator(opType)
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.UnaryRule();

    static readonly Dictionary<string, string[]> AttributeNames = new()
    {
        ["LeakyRelu"] = ["alpha"], ["Elu"] = ["alpha"], ["Selu"] = ["alpha", "gamma"], ["HardSigmoid"] = ["alpha", "beta"],
        ["Clip"] = ["min", "max"],
    };

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 1, OpType == "Clip" ? 3 : 1);
        RejectAttributes(graph, node, AttributeNames.GetValueOrDefault(OpType, []));
        if (OpType == "HardSwish" && graph.Opset < 14) throw Error(graph, node, "HardSwish needs opset 14", ErrorCodes.UnsupportedOperator);
        if (OpType == "Clip" && graph.Opset >= 11 && (IsRuntime(graph, node, 1) || IsRuntime(graph, node, 2)))
        {
            // Bounds given at run time: a kernel that reads them (no fusion, no build-time function).
            for (int i = 1; i < 3; i++)
                if (node.HasInput(i) && TensorData.Size(ShapeOf(graph, node, i)) != 1) throw Error(graph, node, $"bound {i} must be a scalar");
            node.Annotations.Remove("function");
        }
        else node.Annotations["function"] = Resolve(node, graph);
        SetOutput(graph, node, 0, ShapeOf(graph, node, 0));
    }

    static bool IsRuntime(Graph graph, Node node, int input) => node.HasInput(input) && graph[node.Inputs[input]].Constant is null;

    /// <summary>The activation string "Op:alpha:beta" for this node (Clip's bounds from attributes or constant inputs).</summary>
    public string Resolve(Node node, Graph graph)
    {
        var (alpha, beta) = Activations.Defaults(OpType);
        switch (OpType)
        {
            case "LeakyRelu" or "Elu":
                alpha = node.Float("alpha", alpha);
                break;
            case "Selu":
                alpha = node.Float("alpha", alpha);
                beta = node.Float("gamma", beta);
                break;
            case "HardSigmoid":
                alpha = node.Float("alpha", alpha);
                beta = node.Float("beta", beta);
                break;
            case "Clip" when graph.Opset < 11:
                alpha = node.Float("min", -3.4028234663852886e+38f);
                beta = node.Float("max", 3.4028234663852886e+38f);
                break;
            case "Clip":
                if (node.Attributes.Count > 0) throw Error(graph, node, "min and max are inputs from opset 11", ErrorCodes.UnsupportedAttribute);
                alpha = Bound(node, graph, 1, alpha);
                beta = Bound(node, graph, 2, beta);
                break;
        }
        return Activations.Format(OpType, alpha, beta);
    }

    static float Bound(Node node, Graph graph, int input, float fallback)
    {
        if (!node.HasInput(input)) return fallback;
        var v = graph[node.Inputs[input]];
        if (v.Constant is not { Type: ElementType.Float32, Count: 1 } c)
            throw Error(graph, node, $"bound '{v.Name}' must be a constant scalar; it is computed at run time", ErrorCodes.DynamicShape);
        return c.Floats[0];
    }

    public override void Lower(Node node, ILowering lowering) => Plan.ElementwiseLowering.Unary(node, lowering);

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        // The function was resolved by InferShapes, which always runs first; Clip with run-time bounds reads them here.
        string act = node.Annotations.TryGetValue("function", out var f) ? f
            : Activations.Format("Clip", inputs.Length > 1 && inputs[1] is { } lo ? lo.Floats[0] : float.NegativeInfinity, inputs.Length > 2 && inputs[2] is { } hi ? hi.Floats[0] : float.PositiveInfinity);
        return [new TensorData(inputs[0]!.Shape, ActivationMath.ApplyAll(act, inputs[0]!.Floats))];
    }
}

/// <summary>Binary element-wise operators with multidirectional (numpy) broadcasting; PRelu broadcasts its slope.</summary>
public sealed class BinaryOperator(string opType) : Operator(opType)
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.BinaryRule();

    protected override bool AcceptsIntInput(Node node, int input) => true; // checked in InferShapes: integers only as constants

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 2, 2);
        // Pow's exponent may be an integer tensor (opset 12+): a constant one becomes float32.
        if (OpType == "Pow" && graph[node.Inputs[0]].Type == ElementType.Float32 && graph[node.Inputs[1]] is { Type: ElementType.Int64 } e)
        {
            if (e.Constant is null) throw Error(graph, node, "an integer exponent computed at run time is not supported", ErrorCodes.UnsupportedDataType);
            string name = node.Inputs[1] + ".float";
            var v = graph.GetOrAdd(name);
            v.Constant = new TensorData(e.Constant.Shape, [.. e.Constant.Ints.Select(i => (float)i)]);
            v.Shape = e.Constant.Shape;
            node.Inputs[1] = name;
        }
        RequireIntegersConstant(graph, node);
        RejectAttributes(graph, node, graph.Opset < 7 ? ["broadcast", "axis"] : []);
        var (a, b) = (ShapeOf(graph, node, 0), ShapeOf(graph, node, 1));
        if (graph.Opset < 7) b = LegacyBroadcast(graph, node, a, b);
        var shape = Broadcast.Shape(a, b) ?? throw Error(graph, node, $"shapes [{string.Join(",", a)}] and [{string.Join(",", b)}] do not broadcast");
        if (OpType == "PRelu" && !shape.SequenceEqual(a)) throw Error(graph, node, "the slope must broadcast to the input's shape");
        SetOutput(graph, node, 0, shape, graph[node.Inputs[0]].Type == ElementType.Int64 && graph[node.Inputs[1]].Type == ElementType.Int64 ? ElementType.Int64 : ElementType.Float32);
    }

    public override void Lower(Node node, ILowering lowering) => Plan.ElementwiseLowering.Binary(node, lowering);

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var b = inputs[1]!;
        if (node.Annotations.TryGetValue("bshape", out var aligned))
            b = new TensorData(aligned.Length == 0 ? [] : [.. aligned.Split(',').Select(int.Parse)], b.Floats);
        return [Apply(OpType, inputs[0]!, b)];
    }

    /// <summary>
    /// Opsets 1-6: without broadcast=1 the shapes must be equal; with it, B's shape lines up with A's
    /// axes from <c>axis</c> (default: the trailing axes), which numpy broadcasting expresses as B
    /// with 1s appended. The aligned shape is kept in the node's "bshape" annotation.
    /// </summary>
    static int[] LegacyBroadcast(Graph graph, Node node, int[] a, int[] b)
    {
        if (node.OpType == "PRelu")
        {
            // PRelu-6: one slope for all, or one per channel (axis 1).
            if (b.Length == 1 && a.Length > 1 && b[0] == a[1]) { node.Annotations["bshape"] = string.Join(",", [b[0], .. Enumerable.Repeat(1, a.Length - 2)]); return [b[0], .. Enumerable.Repeat(1, a.Length - 2)]; }
            if (TensorData.Size(b) == 1) { node.Annotations["bshape"] = ""; return []; }
        }
        if (node.Int("broadcast", 0) == 0)
        {
            if (!a.SequenceEqual(b)) throw Error(graph, node, "shapes differ and broadcast is not set (opset < 7)");
            return b;
        }
        long axis = node.Has("axis") ? node.Int("axis", 0) : a.Length - b.Length;
        if (axis < 0) axis += a.Length;
        if (axis < 0 || axis + b.Length > a.Length) throw Error(graph, node, $"axis {axis} does not fit B of rank {b.Length} in A of rank {a.Length}");
        int[] aligned = [.. b, .. Enumerable.Repeat(1, (int)(a.Length - axis - b.Length))];
        node.Annotations["bshape"] = string.Join(",", aligned);
        return aligned;
    }

    public static TensorData Apply(string op, TensorData a, TensorData b)
    {
        var shape = Broadcast.Shape(a.Shape, b.Shape)!;
        var (sa, sb) = (Broadcast.Strides(a.Shape, shape), Broadcast.Strides(b.Shape, shape));
        if (a.Type == ElementType.Int64 && b.Type == ElementType.Int64)
        {
            // Shape arithmetic on integer constants (folded at build time only).
            var yi = new long[TensorData.Size(shape)];
            for (long i = 0; i < yi.LongLength; i++)
                yi[i] = ApplyInt(op, a.Ints[Broadcast.Offset(i, shape, sa)], b.Ints[Broadcast.Offset(i, shape, sb)]);
            return new TensorData(shape, yi);
        }
        var y = new float[TensorData.Size(shape)];
        for (long i = 0; i < y.LongLength; i++)
            y[i] = Apply(op, a.Floats[Broadcast.Offset(i, shape, sa)], b.Floats[Broadcast.Offset(i, shape, sb)]);
        return new TensorData(shape, y);
    }

    static long ApplyInt(string op, long a, long b) => op switch
    {
        "Add" or "Sum" or "Mean" => a + b,
        "Sub" => a - b,
        "Mul" => a * b,
        "Div" => b == 0 ? throw new DivideByZeroException("integer division by zero in a constant") : a / b,
        "Pow" => (long)Math.Pow(a, b),
        "Max" => Math.Max(a, b),
        "Min" => Math.Min(a, b),
        _ => throw new ArgumentException(op),
    };

    /// <summary>Same float32 operations as <see cref="Activations.BinaryExpression"/> emits.</summary>
    public static float Apply(string op, float a, float b) => op switch
    {
        "Add" or "Sum" or "Mean" => a + b,
        "Sub" => a - b,
        "Mul" => a * b,
        "Div" => a / b,
        "Pow" => MathF.Pow(a, b),
        "Max" => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : MathF.Max(a, b),
        "Min" => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : MathF.Min(a, b),
        "PRelu" => a < 0f ? b * a : a,
        _ => throw new ArgumentException(op),
    };
}

/// <summary>Sum, Mean, Max, Min over 1 to N inputs, broadcasting. Normalization splits them into binary nodes.</summary>
public sealed class VariadicOperator(string opType) : Operator(opType)
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.VariadicRule();

    protected override bool AcceptsIntInput(Node node, int input) => true; // integers only as constants, checked in InferShapes

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 1, 1024);
        RequireIntegersConstant(graph, node);
        RejectAttributes(graph, node);
        var shape = ShapeOf(graph, node, 0);
        for (int i = 1; i < node.Inputs.Count; i++)
            shape = Broadcast.Shape(shape, ShapeOf(graph, node, i)) ?? throw Error(graph, node, $"input {i} does not broadcast");
        SetOutput(graph, node, 0, shape, node.Inputs.Where(i => i.Length > 0).All(i => graph[i].Type == ElementType.Int64) ? ElementType.Int64 : ElementType.Float32);
    }

    /// <summary>Max and Min are Binary kernels (numpy broadcasting); the other variadic operators have no kernel of their own.</summary>
    public override void Lower(Node node, ILowering lowering)
    {
        if (OpType is "Max" or "Min") Plan.ElementwiseLowering.Binary(node, lowering);
        else base.Lower(node, lowering);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var acc = inputs[0]!;
        for (int i = 1; i < inputs.Length; i++) acc = BinaryOperator.Apply(OpType, acc, inputs[i]!);
        if (inputs.Length == 1) acc = new TensorData(acc.Shape, (float[])acc.Floats.Clone());
        if (OpType == "Mean")
            acc = BinaryOperator.Apply("Mul", acc, new TensorData([], [1f / inputs.Length]));
        return [acc];
    }
}
