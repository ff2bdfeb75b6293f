using ModelGen.Artifact;

namespace ModelGen.Compiler.Operators;

/// <summary>
/// Operators that move data without arithmetic. Their inputs may be integer constants (shape
/// arithmetic that exporters write: Shape → Gather → Unsqueeze → Concat → Reshape), which constant
/// folding evaluates; at run time they move float32 data through one Remap kernel.
/// </summary>
public abstract class DataMovementOperator(string opType) : Operator(opType)
{
    /// <summary>Longest build-time index table (Pad, Gather) the compiler makes.</summary>
    protected const int MaxTableEntries = 1 << 24;

    protected override bool AcceptsIntInput(Node node, int input) => true;

    /// <summary>Reads a constant integer input (axes, pads, starts…), or null when the input is absent.</summary>
    protected static long[]? ConstantInts(Graph graph, Node node, int input, string what)
    {
        if (!node.HasInput(input)) return null;
        var v = graph[node.Inputs[input]];
        if (v.Constant is not { Type: ElementType.Int64 } c)
            throw Error(graph, node, $"{what} ('{v.Name}') is computed at run time; ModelGen needs it constant (export with fixed shapes, or simplify the model with onnxsim)", ErrorCodes.DynamicShape);
        return c.Ints;
    }

    /// <summary>Axes from the attribute (older opsets) or the input (newer), normalized and checked.</summary>
    protected static int[]? Axes(Graph graph, Node node, int rank, long inputFromOpset, int input = 1)
    {
        long[]? raw = graph.Opset >= inputFromOpset ? ConstantInts(graph, node, input, "axes") : node.Ints("axes");
        if (raw is null) return null;
        var axes = raw.Select(a => NormalizeAxis(graph, node, a, rank)).ToArray();
        if (axes.Distinct().Count() != axes.Length) throw Error(graph, node, "axes repeat");
        return axes;
    }

    /// <summary>A run-time integer tensor cannot be computed by the emitted code (float32 only).</summary>
    protected static void RequireFloatAtRunTime(Node node, ILowering lowering)
    {
        var x = lowering.Graph[node.Inputs[0]];
        if (x.Type != ElementType.Float32)
            throw new ModelGenException(ErrorCodes.UnsupportedDataType, lowering.Graph.ModelPath,
                $"{node.Describe}, opset {lowering.Graph.Opset}: moves integer data computed at run time; only float32 tensors are computed at run time");
    }

    /// <summary>Lowers to an alias of the input (same memory, another shape).</summary>
    protected static void LowerAlias(Node node, ILowering lowering)
    {
        RequireFloatAtRunTime(node, lowering);
        lowering.Alias(node.Inputs[0], node.Outputs[0], node);
    }

    /// <summary>Lowers a plan to a Remap kernel reading input 0 into output <paramref name="output"/>.</summary>
    protected static void LowerRemap(Node node, ILowering lowering, RemapPlan plan, int output = 0)
    {
        RequireFloatAtRunTime(node, lowering);
        var n = lowering.AddNode(KernelKind.Remap, node.OpType, node.Name, [lowering.Tensor(node.Inputs[0])], [lowering.Tensor(node.Outputs[output])]);
        plan.WriteTo(n);
    }
}

/// <summary>Identity and Dropout (inference): y = x.</summary>
public sealed class IdentityOperator(string opType = "Identity") : DataMovementOperator(opType)
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.ReshapeRule();

    public override void InferShapes(Node node, Graph graph)
    {
        if (!node.HasInput(0)) throw Error(graph, node, "takes 1 input", ErrorCodes.InvalidGraph);
        if (OpType == "Dropout")
        {
            RejectAttributes(graph, node, "ratio", "is_test", "seed");
            if (node.Outputs.Count > 1 && node.Outputs[1].Length > 0)
                throw Error(graph, node, "the mask output is not supported", ErrorCodes.UnsupportedAttribute);
            if (node.HasInput(2) && graph[node.Inputs[2]].Constant is not { } t)
                throw Error(graph, node, "training_mode is computed at run time", ErrorCodes.DynamicShape);
            else if (node.HasInput(2) && graph[node.Inputs[2]].Constant!.Ints.Any(v => v != 0))
                throw Error(graph, node, "training_mode is true; ModelGen compiles inference", ErrorCodes.UnsupportedAttribute);
        }
        else RejectAttributes(graph, node);
        var x = graph[node.Inputs[0]];
        SetOutput(graph, node, 0, ShapeOf(graph, node, 0), x.Type);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs) => [inputs[0]!];

    public override void Lower(Node node, ILowering lowering) => LowerAlias(node, lowering);
}

/// <summary>Shape: the input's shape, known at build time, so always a constant.</summary>
public sealed class ShapeOperator() : DataMovementOperator("Shape")
{
    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "start", "end");
        // A second output would be folded as if it were computed, and Shape computes nothing (Evaluate).
        if (node.Outputs.Count > 1) throw Error(graph, node, $"names {node.Outputs.Count} outputs; Shape has one", ErrorCodes.InvalidGraph);
        var x = ShapeOf(graph, node, 0);
        int rank = x.Length;
        long start = node.Int("start", 0), end = node.Int("end", rank);
        int s = (int)Math.Clamp(start < 0 ? start + rank : start, 0, rank), e = (int)Math.Clamp(end < 0 ? end + rank : end, 0, rank);
        long[] dims = [.. x[s..Math.Max(s, e)].Select(d => (long)d)];
        var v = graph.GetOrAdd(node.Outputs[0]);
        v.Constant = new TensorData([dims.Length], dims);
        v.Shape = [dims.Length];
        v.Type = ElementType.Int64;
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs) => throw new InvalidOperationException("Shape is folded during shape inference");
}

/// <summary>Cast: folded on constants; float32 → float32 at run time is an alias; other run-time casts are refused.</summary>
public sealed class CastOperator() : DataMovementOperator("Cast")
{
    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "to", "saturate");
        var x = graph[node.Inputs[0]];
        var to = Target(graph, node);
        if (!x.IsConstant && (to != ElementType.Float32 || x.Type != ElementType.Float32))
            throw Error(graph, node, $"casts data computed at run time to {Import.OnnxImporter.DataTypeName((int)node.Int("to", 0))}; only float32 is computed at run time", ErrorCodes.UnsupportedDataType);
        SetOutput(graph, node, 0, ShapeOf(graph, node, 0), to);
    }

    static ElementType Target(Graph graph, Node node) => node.Int("to", 0) switch
    {
        1 or 10 or 11 or 16 => ElementType.Float32,
        2 or 3 or 4 or 5 or 6 or 7 or 9 or 12 or 13 => ElementType.Int64,
        var t => throw Error(graph, node, $"cast to {Import.OnnxImporter.DataTypeName((int)t)} is not supported", ErrorCodes.UnsupportedDataType),
    };

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        var to = Target(new Graph(), node);
        if (to == ElementType.Float32)
            return [x.Type == ElementType.Float32 ? x : new TensorData(x.Shape, [.. x.Ints.Select(v => (float)v)])];
        bool toBool = node.Int("to", 0) == 9;
        return [x.Type == ElementType.Int64
            ? new TensorData(x.Shape, toBool ? [.. x.Ints.Select(v => v != 0 ? 1L : 0L)] : x.Ints)
            : new TensorData(x.Shape, [.. x.Floats.Select(v => toBool ? (v != 0 ? 1L : 0L) : (long)v)])];
    }

    public override void Lower(Node node, ILowering lowering) => LowerAlias(node, lowering);
}

/// <summary>Squeeze and Unsqueeze: the same data under a shape with 1-dimensions removed or inserted (an alias).</summary>
public sealed class SqueezeOperator(string opType) : DataMovementOperator(opType)
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.SqueezeRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "axes");
        var x = ShapeOf(graph, node, 0);
        int[] shape;
        if (graph.Opset >= 13 && IsRuntimeShapeInput(graph, node, 1))
        {
            shape = DeclaredOutput(graph, node, 0, "axes");
            if (TensorData.Size(shape) != TensorData.Size(x)) throw Error(graph, node, "the declared output shape does not hold the input's elements");
        }
        else if (OpType == "Squeeze")
        {
            var axes = Axes(graph, node, x.Length, 13);
            if (axes is not null && axes.Any(a => x[a] != 1)) throw Error(graph, node, "squeezes an axis whose size is not 1");
            shape = [.. x.Where((d, i) => axes is null ? d != 1 : !axes.Contains(i))];
        }
        else
        {
            long[] raw = (graph.Opset >= 13 ? ConstantInts(graph, node, 1, "axes") : node.Ints("axes"))
                ?? throw Error(graph, node, "axes are required", ErrorCodes.InvalidGraph);
            int rank = x.Length + raw.Length;
            var axes = raw.Select(a => NormalizeAxis(graph, node, a, rank)).ToHashSet();
            if (axes.Count != raw.Length || axes.Any(a => a >= rank)) throw Error(graph, node, "axes repeat or are out of range");
            var list = new List<int>();
            int next = 0;
            for (int i = 0; i < rank; i++) list.Add(axes.Contains(i) ? 1 : x[next++]);
            shape = [.. list];
        }
        SetOutput(graph, node, 0, shape, graph[node.Inputs[0]].Type);
        node.Plan = new OutputShape(shape);
    }

    /// <summary>The output's shape (axes may come from an input or, given at run time, from the declared shape).</summary>
    sealed record OutputShape(int[] Shape) : OperatorPlan;

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        var shape = node.Plan is OutputShape s ? s.Shape : throw new InvalidOperationException($"{node.Describe} evaluated before shape inference");
        return [x.Type == ElementType.Float32 ? new TensorData(shape, x.Floats) : new TensorData(shape, x.Ints)];
    }

    public override void Lower(Node node, ILowering lowering)
    {
        LowerAlias(node, lowering);
        if (node.HasInput(1) && lowering.Graph[node.Inputs[1]].Constant is null)
            AddShapeCheck(node, lowering, 1, OpType.ToLowerInvariant(), lowering.Graph[node.Inputs[0]].Shape!, lowering.Graph[node.Outputs[0]].Shape!);
    }
}

/// <summary>Transpose by <c>perm</c> (default: reverse the axes).</summary>
public sealed class TransposeOperator() : DataMovementOperator("Transpose")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.TransposeRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "perm");
        var x = ShapeOf(graph, node, 0);
        var perm = Perm(node, x.Length);
        if (perm.Length != x.Length || perm.Distinct().Count() != perm.Length || perm.Any(p => p < 0 || p >= x.Length))
            throw Error(graph, node, $"perm [{string.Join(",", perm)}] is not a permutation of {x.Length} axes");
        SetOutput(graph, node, 0, [.. perm.Select(p => x[p])], graph[node.Inputs[0]].Type);
    }

    static int[] Perm(Node node, int rank) => node.Ints("perm") is { } p ? [.. p.Select(v => (int)v)] : [.. Enumerable.Range(0, rank).Reverse()];

    public static RemapPlan Plan(Node node, int[] x)
    {
        var perm = Perm(node, x.Length);
        var strides = RemapPlan.StridesOf(x);
        return new RemapPlan([.. perm.Select(p => x[p])], 0, [.. perm.Select(p => strides[p])], new int[]?[x.Length]);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var plan = Plan(node, inputs[0]!.Shape);
        return [plan.Apply(inputs[0]!, plan.Shape)];
    }

    public override void Lower(Node node, ILowering lowering) => LowerRemap(node, lowering, Plan(node, lowering.Graph[node.Inputs[0]].Shape!));
}

/// <summary>Slice with starts, ends, axes, steps (attributes before opset 10, constant inputs after); negative steps too.</summary>
public sealed class SliceOperator() : DataMovementOperator("Slice")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.SliceRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "starts", "ends", "axes");
        if (graph.Opset >= 10 && Enumerable.Range(1, 4).Any(i => IsRuntimeShapeInput(graph, node, i)))
        {
            // Positions given at run time: the declared output shape is compiled in and the kernel
            // computes (and checks) the slice when it runs.
            SetOutput(graph, node, 0, DeclaredOutput(graph, node, 0, "starts, ends, axes or steps"), graph[node.Inputs[0]].Type);
            node.Plan = null;
            return;
        }
        var plan = Plan(graph, node, ShapeOf(graph, node, 0));
        SetOutput(graph, node, 0, plan.Shape, graph[node.Inputs[0]].Type);
        node.Plan = plan;
    }

    /// <summary>Slice's plan for given values of its inputs (evaluation with run-time positions).</summary>
    static RemapPlan PlanFor(Node node, TensorData?[] inputs)
    {
        var scratch = new Graph { Opset = 13 };
        for (int i = 1; i < inputs.Length; i++)
            if (node.HasInput(i) && inputs[i] is { } t) scratch.GetOrAdd(node.Inputs[i]).Constant = t;
        return Plan(scratch, node, inputs[0]!.Shape);
    }

    static RemapPlan Plan(Graph graph, Node node, int[] x)
    {
        long[] starts, ends;
        long[]? axes, steps = null;
        if (graph.Opset < 10)
        {
            starts = node.Ints("starts") ?? throw Error(graph, node, "starts is required", ErrorCodes.InvalidGraph);
            ends = node.Ints("ends") ?? throw Error(graph, node, "ends is required", ErrorCodes.InvalidGraph);
            axes = node.Ints("axes");
        }
        else
        {
            starts = ConstantInts(graph, node, 1, "starts") ?? throw Error(graph, node, "starts is required", ErrorCodes.InvalidGraph);
            ends = ConstantInts(graph, node, 2, "ends") ?? throw Error(graph, node, "ends is required", ErrorCodes.InvalidGraph);
            axes = ConstantInts(graph, node, 3, "axes");
            steps = ConstantInts(graph, node, 4, "steps");
        }
        axes ??= [.. Enumerable.Range(0, starts.Length).Select(i => (long)i)];
        steps ??= [.. Enumerable.Repeat(1L, starts.Length)];
        if (starts.Length != ends.Length || axes.Length != starts.Length || steps.Length != starts.Length)
            throw Error(graph, node, "starts, ends, axes and steps differ in length");
        var shape = (int[])x.Clone();
        var strides = RemapPlan.StridesOf(x);
        var planStrides = (long[])strides.Clone();
        long baseOffset = 0;
        var seen = new HashSet<int>();
        for (int i = 0; i < starts.Length; i++)
        {
            int axis = NormalizeAxis(graph, node, axes[i], x.Length);
            if (axis >= x.Length || !seen.Add(axis)) throw Error(graph, node, "axes repeat or are out of range");
            long dim = x[axis], step = steps[i];
            if (step == 0) throw Error(graph, node, "a step is 0");
            long start = starts[i] < 0 ? starts[i] + dim : starts[i];
            long end = ends[i] < 0 ? ends[i] + dim : ends[i];
            if (step > 0) { start = Math.Clamp(start, 0, dim); end = Math.Clamp(end, 0, dim); }
            else { start = Math.Clamp(start, 0, dim - 1); end = Math.Clamp(end, -1, dim - 1); }
            long count = step > 0 ? Math.Max(0, (end - start + step - 1) / step) : Math.Max(0, (start - end + (-step) - 1) / (-step));
            shape[axis] = (int)count;
            baseOffset += start * strides[axis];
            planStrides[axis] = step * strides[axis];
        }
        return new RemapPlan(shape, baseOffset, planStrides, new int[]?[x.Length]);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var plan = node.Plan as RemapPlan ?? PlanFor(node, inputs);
        return [plan.Apply(inputs[0]!, plan.Shape)];
    }

    public override void Lower(Node node, ILowering lowering)
    {
        if (node.Plan is RemapPlan p)
        {
            LowerRemap(node, lowering, p);
            return;
        }
        LowerRuntime(node, lowering, KernelKind.SliceRuntime, ["starts", "ends", "axes", "steps"]);
    }

    /// <summary>A kernel whose int64 parameters come as run-time inputs or, when constant, as literal attributes.</summary>
    internal static void LowerRuntime(Node node, ILowering lowering, KernelKind kernel, string[] parameters, int first = 1)
    {
        RequireFloatAtRunTime(node, lowering);
        var g = lowering.Graph;
        var inputs = new List<int> { lowering.Tensor(node.Inputs[0]) };
        var values = new Dictionary<string, RuntimeParameter>(StringComparer.Ordinal);
        for (int i = 0; i < parameters.Length; i++)
            if (RuntimeParameterOf(node, lowering, first + i, inputs) is { } p) values[parameters[i]] = p;
        var n = lowering.AddNode(kernel, node.OpType, node.Name, [.. inputs], [lowering.Tensor(node.Outputs[0])]);
        n.SetRuntimeShape(new RuntimeShapeAttributes(g[node.Inputs[0]].Shape!, values, node.Str("mode", "") is { Length: > 0 } mode ? mode : null));
    }

    /// <summary>A run-time kernel's parameter: the constants of a constant input, or the input itself (added to <paramref name="inputs"/>); null when absent.</summary>
    internal static RuntimeParameter? RuntimeParameterOf(Node node, ILowering lowering, int input, List<int> inputs)
    {
        if (!node.HasInput(input)) return null;
        if (lowering.Graph[node.Inputs[input]].Constant is { } c)
            return c.Type == ElementType.Int64 ? RuntimeParameter.OfLongs(c.Ints) : RuntimeParameter.OfFloats(c.Floats);
        inputs.Add(lowering.Tensor(node.Inputs[input]));
        return RuntimeParameter.OfInput(inputs.Count - 1);
    }
}

/// <summary>Gather along an axis with constant indices (negative ones count from the end).</summary>
public sealed class GatherOperator() : DataMovementOperator("Gather")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.GatherRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 2, 2);
        RejectAttributes(graph, node, "axis");
        var x = ShapeOf(graph, node, 0);
        int axis = NormalizeAxis(graph, node, node.Int("axis", 0), x.Length);
        if (axis >= x.Length) throw Error(graph, node, "axis out of range");
        var indexValue = graph[node.Inputs[1]];
        if (indexValue.Type != ElementType.Int64) throw Error(graph, node, "indices must be integers", ErrorCodes.UnsupportedDataType);
        // Indices given at run time (token ids into an embedding table) are checked by the kernel.
        if (indexValue.Constant is { } idx && idx.Count > MaxTableEntries) throw Error(graph, node, $"{idx.Count} indices; ModelGen gathers at most {MaxTableEntries}", ErrorCodes.TooLarge);
        foreach (long i in indexValue.Constant?.Ints ?? [])
            if (i < -x[axis] || i >= x[axis]) throw Error(graph, node, $"index {i} is out of range for axis {axis} of size {x[axis]}");
        var indexShape = graph[node.Inputs[1]].Shape!;
        SetOutput(graph, node, 0, [.. x[..axis], .. indexShape, .. x[(axis + 1)..]], graph[node.Inputs[0]].Type);
    }

    static RemapPlan Plan(Node node, int[] x, long[] indices)
    {
        int axis = (int)(node.Int("axis", 0) is var a && a < 0 ? a + x.Length : a);
        var strides = RemapPlan.StridesOf(x);
        var maps = new int[]?[x.Length];
        maps[axis] = [.. indices.Select(i => (int)(i < 0 ? i + x[axis] : i))];
        int[] shape = [.. x];
        shape[axis] = indices.Length;
        return new RemapPlan(shape, 0, strides, maps);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        var idx = inputs[1]!;
        int axis = (int)(node.Int("axis", 0) is var a && a < 0 ? a + x.Shape.Length : a);
        foreach (long i in idx.Ints)
            if (i < -x.Shape[axis] || i >= x.Shape[axis]) throw new ArgumentOutOfRangeException(node.Inputs[1], $"index {i} is outside the {x.Shape[axis]} entries of axis {axis}");
        int[] outShape = [.. x.Shape[..axis], .. idx.Shape, .. x.Shape[(axis + 1)..]];
        return [Plan(node, x.Shape, idx.Ints).Apply(x, outShape)];
    }

    public override void Lower(Node node, ILowering lowering)
    {
        var g = lowering.Graph;
        var x = g[node.Inputs[0]].Shape!;
        if (g[node.Inputs[1]].Constant is { } constant)
        {
            LowerRemap(node, lowering, Plan(node, x, constant.Ints));
            return;
        }
        RequireFloatAtRunTime(node, lowering);
        int axis = (int)(node.Int("axis", 0) is var a && a < 0 ? a + x.Length : a);
        var n = lowering.AddNode(KernelKind.GatherRows, "Gather", node.Name, [lowering.Tensor(node.Inputs[0]), lowering.Tensor(node.Inputs[1])], [lowering.Tensor(node.Outputs[0])]);
        n.SetGatherRows(new GatherRowsAttributes(checked((int)TensorData.Size(x[..axis])), x[axis], checked((int)TensorData.Size(x[(axis + 1)..]))));
    }
}

/// <summary>Concat along an axis: each input is copied into its slab of the output.</summary>
public sealed class ConcatOperator() : DataMovementOperator("Concat")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.ConcatRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "axis");
        var inputs = node.Inputs.Where(i => i.Length > 0).Select(i => graph[i].Shape ?? throw Error(graph, node, "an input has no shape")).ToList();
        if (inputs.Count == 0) throw Error(graph, node, "takes at least one input", ErrorCodes.InvalidGraph);
        if (!node.Has("axis") && graph.Opset >= 4) throw Error(graph, node, "axis is required", ErrorCodes.InvalidGraph);
        if (!node.Has("axis")) node.Attributes["axis"] = new Onnx.Proto.AttributeProto { Name = "axis", Type = Onnx.Proto.AttributeProto.Types.AttributeType.Int, I = 1 }; // opsets 1-3 default
        int axis = NormalizeAxis(graph, node, node.Int("axis", 0), inputs[0].Length);
        if (axis >= inputs[0].Length) throw Error(graph, node, "axis out of range");
        foreach (var s in inputs)
            if (s.Length != inputs[0].Length || s.Where((d, i) => i != axis && d != inputs[0][i]).Any())
                throw Error(graph, node, "inputs differ in shape outside the axis");
        var types = node.Inputs.Where(i => i.Length > 0).Select(i => graph[i].Type).Distinct().ToList();
        if (types.Count > 1) throw Error(graph, node, "inputs differ in element type", ErrorCodes.UnsupportedDataType);
        int[] shape = [.. inputs[0]];
        shape[axis] = inputs.Sum(s => s[axis]);
        SetOutput(graph, node, 0, shape, types[0]);
    }

    internal static IEnumerable<RemapPlan> Plans(Node node, IReadOnlyList<int[]> inputs)
    {
        long axisArg = node.Int("axis", 0);
        int axis = (int)(axisArg < 0 ? axisArg + inputs[0].Length : axisArg);
        int[] outShape = [.. inputs[0]];
        outShape[axis] = inputs.Sum(s => s[axis]);
        var yStrides = RemapPlan.StridesOf(outShape);
        long offset = 0;
        foreach (var s in inputs)
        {
            yield return new RemapPlan(s, 0, RemapPlan.StridesOf(s), new int[]?[s.Length], 0f, offset * yStrides[axis], yStrides);
            offset += s[axis];
        }
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var xs = inputs.Where(i => i is not null).Select(i => i!).ToList();
        var plans = Plans(node, [.. xs.Select(x => x.Shape)]).ToList();
        long axisArg = node.Int("axis", 0);
        int axis = (int)(axisArg < 0 ? axisArg + xs[0].Shape.Length : axisArg);
        int[] outShape = [.. xs[0].Shape];
        outShape[axis] = xs.Sum(x => x.Shape[axis]);
        bool isFloat = xs[0].Type == ElementType.Float32;
        var yf = isFloat ? new float[TensorData.Size(outShape)] : [];
        var yi = isFloat ? [] : new long[TensorData.Size(outShape)];
        for (int k = 0; k < xs.Count; k++)
            foreach (var (s, t) in plans[k].Offsets())
                if (isFloat) yf[t] = xs[k].Floats[s]; else yi[t] = xs[k].Ints[s];
        return [isFloat ? new TensorData(outShape, yf) : new TensorData(outShape, yi)];
    }

    public override void Lower(Node node, ILowering lowering)
    {
        var names = node.Inputs.Where(i => i.Length > 0).ToList();
        var plans = Plans(node, [.. names.Select(n => lowering.Graph[n].Shape!)]).ToList();
        int y = lowering.Tensor(node.Outputs[0]);
        if (node.Form is Compress.ByteConcatForm)
        {
            // Between int8 layers: every input is uint8 in the output's quantization; the bytes are copied as they are.
            if (!names.All(n => lowering.IsUInt8(lowering.Tensor(n))))
                throw new InvalidOperationException($"Concat '{node.Name}': a uint8 Concat's inputs must be uint8 (the layers before requantize for it)");
            lowering.MarkUInt8(y);
        }
        for (int k = 0; k < names.Count; k++)
        {
            if (lowering.Graph[names[k]].Type != ElementType.Float32) RequireFloatAtRunTime(node, lowering);
            var n = lowering.AddNode(KernelKind.Remap, "Concat", $"{node.Name} (input {k})", [lowering.Tensor(names[k])], [y]);
            plans[k].WriteTo(n);
        }
    }
}

/// <summary>Split along an axis into parts given by <c>split</c> (attribute before opset 13, input after) or equal parts.</summary>
public sealed class SplitOperator() : DataMovementOperator("Split")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.SplitRule();

    /// <summary>One Remap per output (split sizes may come from an input or, given at run time, from the declared shapes).</summary>
    sealed record Parts(RemapPlan[] Plans) : OperatorPlan;

    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "axis", "split", "num_outputs");
        var x = ShapeOf(graph, node, 0);
        int axis = NormalizeAxis(graph, node, node.Int("axis", 0), x.Length);
        if (axis >= x.Length) throw Error(graph, node, "axis out of range");
        long[]? split;
        if (graph.Opset >= 13 && IsRuntimeShapeInput(graph, node, 1))
            split = [.. node.Outputs.Select((o, i) => (long)(o.Length > 0 ? DeclaredOutput(graph, node, i, "split")[axis] : 0))];
        else split = graph.Opset >= 13 ? ConstantInts(graph, node, 1, "split") : node.Ints("split");
        int parts = node.Outputs.Count;
        if (split is null)
        {
            if (node.Has("num_outputs")) parts = (int)node.Int("num_outputs", parts);
            long chunk = (x[axis] + parts - 1) / parts;
            split = [.. Enumerable.Range(0, parts).Select(i => Math.Max(0, Math.Min(chunk, x[axis] - chunk * i)))];
        }
        if (split.Length != node.Outputs.Count || split.Sum() != x[axis] || split.Any(s => s < 0))
            throw Error(graph, node, $"split [{string.Join(",", split)}] does not divide axis {axis} of size {x[axis]} into {node.Outputs.Count} outputs");
        var strides = RemapPlan.StridesOf(x);
        var plans = new List<RemapPlan>();
        long offset = 0;
        for (int i = 0; i < split.Length; i++)
        {
            int[] shape = [.. x];
            shape[axis] = (int)split[i];
            plans.Add(new RemapPlan(shape, offset * strides[axis], strides, new int[]?[x.Length]));
            offset += split[i];
            if (node.Outputs[i].Length > 0) SetOutput(graph, node, i, shape, graph[node.Inputs[0]].Type);
        }
        node.Plan = new Parts([.. plans]);
    }

    internal static RemapPlan[] PlansOf(Node node) => node.Plan is Parts p ? p.Plans : throw new InvalidOperationException($"{node.Describe} used before shape inference");

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs) => [.. PlansOf(node).Select(p => p.Apply(inputs[0]!, p.Shape))];

    public override void Lower(Node node, ILowering lowering)
    {
        var plans = PlansOf(node);
        for (int i = 0; i < plans.Length; i++)
            if (node.Outputs[i].Length > 0) LowerRemap(node, lowering, plans[i], i);
        if (node.HasInput(1) && lowering.Graph[node.Inputs[1]].Constant is null)
        {
            var x = lowering.Graph[node.Inputs[0]].Shape!;
            int axis = (int)(node.Int("axis", 0) is var a && a < 0 ? a + x.Length : a);
            AddShapeCheck(node, lowering, 1, "split", x, [.. plans.Select(q => q.Shape[axis])]);
        }
    }
}

/// <summary>Pad with constant, reflect or edge mode (pads attribute before opset 11, inputs after); negative pads crop.</summary>
public sealed class PadOperator() : DataMovementOperator("Pad")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.PadRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "mode", "pads", "value");
        var x = ShapeOf(graph, node, 0);
        long[] pads;
        float value;
        if (graph.Opset < 11)
        {
            pads = node.Ints("pads") ?? throw Error(graph, node, "pads is required", ErrorCodes.InvalidGraph);
            value = node.Float("value", 0f);
        }
        else if (IsRuntimeShapeInput(graph, node, 1) || IsRuntimeShapeInput(graph, node, 3)
            || (node.HasInput(2) && graph[node.Inputs[2]].Constant is null))
        {
            string mode0 = node.Str("mode", "constant");
            if (mode0 is not ("constant" or "reflect" or "edge"))
                throw Error(graph, node, $"mode '{mode0}' is not supported (constant, reflect, edge)", ErrorCodes.UnsupportedAttribute);
            SetOutput(graph, node, 0, DeclaredOutput(graph, node, 0, "pads"), graph[node.Inputs[0]].Type);
            node.Plan = null; // pads given at run time: the kernel resolves them when it runs
            return;
        }
        else
        {
            pads = ConstantInts(graph, node, 1, "pads") ?? throw Error(graph, node, "pads is required", ErrorCodes.InvalidGraph);
            value = 0f;
            if (node.HasInput(2))
            {
                var c = graph[node.Inputs[2]].Constant ?? throw Error(graph, node, "constant_value is computed at run time", ErrorCodes.DynamicShape);
                value = c.Type == ElementType.Float32 ? c.Floats[0] : c.Ints[0];
            }
            if (node.HasInput(3))
                pads = ExpandAxes(graph, node, pads, ConstantInts(graph, node, 3, "axes")!, x.Length);
        }
        string mode = node.Str("mode", "constant");
        if (mode is not ("constant" or "reflect" or "edge"))
            throw Error(graph, node, $"mode '{mode}' is not supported (constant, reflect, edge)", ErrorCodes.UnsupportedAttribute);
        if (pads.Length != 2 * x.Length) throw Error(graph, node, $"pads has {pads.Length} values; {2 * x.Length} expected");
        var shape = new int[x.Length];
        var maps = new int[]?[x.Length];
        for (int d = 0; d < x.Length; d++)
        {
            long begin = pads[d], end = pads[d + x.Length], size = x[d] + begin + end;
            if (size < 0 || size > Import.OnnxImporter.MaxElements) throw Error(graph, node, $"pads make axis {d} {size} long");
            shape[d] = (int)size;
            if (begin == 0 && end == 0) continue;
            if (mode != "constant" && x[d] == 0) throw Error(graph, node, $"cannot {mode}-pad an empty axis");
            if (mode == "reflect" && (begin >= x[d] || end >= x[d])) throw Error(graph, node, $"reflect pads of axis {d} must be smaller than its size {x[d]}");
            // The index table is built at compile time: keep it proportionate (a hostile pad of 2^28 is refused).
            if (size > MaxTableEntries) throw Error(graph, node, $"pads make axis {d} {size} long; ModelGen pads axes of up to {MaxTableEntries} elements", ErrorCodes.TooLarge);
            var map = new int[size];
            for (int o = 0; o < size; o++)
            {
                long s = o - begin;
                if (mode == "constant") s = s >= 0 && s < x[d] ? s : -1;
                else if (mode == "edge") s = Math.Clamp(s, 0, x[d] - 1);
                else while (s < 0 || s >= x[d]) s = s < 0 ? -s : 2 * (x[d] - 1) - s;
                map[o] = (int)s;
            }
            maps[d] = map;
        }
        node.Plan = new RemapPlan(shape, 0, RemapPlan.StridesOf(x), maps, value);
        SetOutput(graph, node, 0, shape, graph[node.Inputs[0]].Type);
    }

    /// <summary>Pads given for some axes only (opset 18): zero for the others.</summary>
    static long[] ExpandAxes(Graph graph, Node node, long[] pads, long[] axes, int rank)
    {
        if (pads.Length != 2 * axes.Length) throw Error(graph, node, "pads must have two values per axis");
        var full = new long[2 * rank];
        for (int i = 0; i < axes.Length; i++)
        {
            int a = NormalizeAxis(graph, node, axes[i], rank);
            full[a] = pads[i];
            full[a + rank] = pads[i + axes.Length];
        }
        return full;
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        if (node.Plan is RemapPlan p) return [p.Apply(inputs[0]!, p.Shape)];
        // Run-time pads: resolve for these values (as the kernel does when it runs).
        return PlanForValues(node, inputs, 18) is RemapPlan q ? [q.Apply(inputs[0]!, q.Shape)] : throw new InvalidOperationException();
    }

    public override void Lower(Node node, ILowering lowering)
    {
        if (node.Plan is RemapPlan p)
        {
            LowerRemap(node, lowering, p);
            return;
        }
        SliceOperator.LowerRuntime(node, lowering, KernelKind.PadRuntime, ["pads", "value", "axes"]);
    }
}
