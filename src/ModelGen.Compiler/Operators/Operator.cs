using ModelGen.Artifact;

namespace ModelGen.Compiler.Operators;

/// <summary>
/// One ONNX operator: attribute checks and shape inference at compile time, and the float32 reference
/// semantics that constant folding, the evaluator and the tests use (the oracle of the emitted kernels).
/// </summary>
public abstract class Operator(string opType)
{
    /// <summary>The ONNX op_type this operator compiles.</summary>
    public string OpType { get; } = opType;

    /// <summary>Checks attributes and sets the shape and type of every output from the inputs' shapes.</summary>
    public abstract void InferShapes(Node node, Graph graph);

    /// <summary>Computes the outputs from input data (shapes already inferred).</summary>
    public abstract TensorData[] Evaluate(Node node, TensorData?[] inputs);

    /// <summary>
    /// Adds the node's kernel(s) to the artifact: every operator lowers here (ArtifactBuilder calls nothing
    /// else); those that compute something override it, the rest refuse the forms they cannot compile.
    /// </summary>
    public virtual void Lower(Node node, ILowering lowering) =>
        throw new ModelGenException(ErrorCodes.UnsupportedAttribute, lowering.Graph.ModelPath,
            $"{node.Describe}, opset {lowering.Graph.Opset}: this form of {node.OpType} (with an input computed at run time) is not supported yet; export it with constant inputs");

    /// <summary>How this operator's nodes train (forward over a mini-batch, and the gradient), or null when it has no gradient yet.</summary>
    public virtual Training.GradientRule? Gradient => null;

    /// <summary>
    /// The plan shape inference makes when the node's parameters (pads, scales…) are the values given, not
    /// run-time inputs: how the evaluator computes a node whose kernel resolves its parameters when it runs.
    /// </summary>
    protected OperatorPlan? PlanForValues(Node node, TensorData?[] inputs, long opset)
    {
        var scratch = new Graph { Opset = opset };
        scratch.GetOrAdd(node.Inputs[0]).Shape = inputs[0]!.Shape;
        for (int i = 1; i < inputs.Length; i++)
            if (node.HasInput(i) && inputs[i] is { } t) { var v = scratch.GetOrAdd(node.Inputs[i]); v.Constant = t; v.Shape = t.Shape; v.Type = t.Type; }
        var copy = new Node { Name = node.Name, OpType = node.OpType, Inputs = node.Inputs, Outputs = [node.Outputs[0] + "#evaluated"] };
        foreach (var (k, a) in node.Attributes) copy.Attributes[k] = a;
        InferShapes(copy, scratch);
        return copy.Plan;
    }

    protected static int[] ShapeOf(Graph graph, Node node, int input)
    {
        if (!node.HasInput(input)) throw Error(graph, node, $"input {input} is missing", ErrorCodes.InvalidGraph);
        var v = graph[node.Inputs[input]];
        return v.Shape ?? throw Error(graph, node, $"input {input} ('{v.Name}') has no known shape");
    }

    protected static ModelGenException Error(Graph graph, Node node, string message, string code = ErrorCodes.ShapeMismatch) =>
        new(code, graph.ModelPath, $"{node.Describe}, opset {graph.Opset}: {message}");

    protected static void SetOutput(Graph graph, Node node, int output, int[] shape, ElementType type = ElementType.Float32)
    {
        if (TensorData.Size(shape) > Import.OnnxImporter.MaxElements)
            throw Error(graph, node, $"output of shape [{string.Join(",", shape)}] is too large", ErrorCodes.TooLarge);
        if (output >= node.Outputs.Count) throw Error(graph, node, $"output {output} is missing", ErrorCodes.InvalidGraph);
        var v = graph.GetOrAdd(node.Outputs[output]);
        v.Shape = shape;
        v.Type = type;
    }

    protected static void RequireInputs(Graph graph, Node node, int min, int max)
    {
        int n = node.Inputs.Count;
        while (n > 0 && node.Inputs[n - 1].Length == 0) n--;
        if (n < min || n > max)
            throw Error(graph, node, $"takes {min}{(max > min ? $" to {max}" : "")} inputs, got {n}", ErrorCodes.InvalidGraph);
        for (int i = 0; i < min; i++)
            if (!node.HasInput(i)) throw Error(graph, node, $"input {i} is missing (its name is empty)", ErrorCodes.InvalidGraph);
        for (int i = 0; i < n; i++)
            if (node.HasInput(i) && graph[node.Inputs[i]].Type != ElementType.Float32 && !Get(node, graph).AcceptsIntInput(node, i))
                throw Error(graph, node, $"input {i} ('{node.Inputs[i]}') is not float32; only float32 tensors are supported here", ErrorCodes.UnsupportedDataType);
    }

    /// <summary>
    /// Integer tensors are only ever constants folded at build time (shape arithmetic); an integer
    /// operand computed at run time, or one mixed with float32, is refused.
    /// </summary>
    protected static void RequireIntegersConstant(Graph graph, Node node)
    {
        var inputs = node.Inputs.Where(i => i.Length > 0).Select(i => graph[i]).ToList();
        bool anyInt = inputs.Any(v => v.Type == ElementType.Int64);
        if (!anyInt) return;
        // Pow alone may raise floats to an integer power; its exponent is converted to float32.
        if (node.OpType == "Pow" && inputs[0].Type == ElementType.Float32) return;
        if (inputs.Any(v => v.Type != ElementType.Int64) || inputs.Any(v => !v.IsConstant))
            throw Error(graph, node, $"computes with integer tensors{(inputs.Any(v => !v.IsConstant) ? " at run time" : " mixed with float32")}; only float32 is computed at run time (integers only as build-time constants)", ErrorCodes.UnsupportedDataType);
    }

    /// <summary>Whether input <paramref name="input"/> may be an integer tensor (a shape, indices, axes).</summary>
    protected virtual bool AcceptsIntInput(Node node, int input) => false;

    static Operator Get(Node node, Graph graph) => OperatorSet.Get(node, graph);

    protected static void RejectAttributes(Graph graph, Node node, params string[] known)
    {
        foreach (var name in node.Attributes.Keys)
            // consumed_inputs (opsets 1-5) only described in-place updates for training: no meaning here.
            if (Array.IndexOf(known, name) < 0 && name != "consumed_inputs")
                throw Error(graph, node, $"attribute '{name}' is not supported (supported: {string.Join(", ", known)})", ErrorCodes.UnsupportedAttribute);
    }

    /// <summary>A shape parameter (a Reshape target, axes, split sizes) given at run time as an int64 graph input.</summary>
    protected static bool IsRuntimeShapeInput(Graph graph, Node node, int input) =>
        node.HasInput(input) && graph[node.Inputs[input]] is { Constant: null, Type: ElementType.Int64 };

    /// <summary>The shape the model declares for an output, which a run-time shape parameter must then produce.</summary>
    protected static int[] DeclaredOutput(Graph graph, Node node, int output, string what) =>
        graph[node.Outputs[output]].DeclaredShape
            ?? throw Error(graph, node, $"{what} ('{node.Inputs[1]}') is given at run time and the model declares no fixed shape for '{node.Outputs[output]}'; ModelGen compiles fixed shapes: make {what} a constant (or declare the output's shape)", ErrorCodes.DynamicShape);

    /// <summary>Adds the kernel that checks, when the model runs, that a run-time shape parameter gives the compiled shape.</summary>
    protected static void AddShapeCheck(Node node, ILowering lowering, int input, string rule, int[] inShape, int[] outShape, bool allowZero = false)
    {
        var check = lowering.AddNode(KernelKind.CheckShape, node.OpType, node.Name, [lowering.Tensor(node.Inputs[input])], []);
        check.SetCheckShape(new CheckShapeAttributes(rule, inShape, outShape, allowZero));
    }

    protected static int NormalizeAxis(Graph graph, Node node, long axis, int rank)
    {
        if (axis < -rank || axis > rank) throw Error(graph, node, $"axis {axis} is out of range for rank {rank}");
        return (int)(axis < 0 ? axis + rank : axis);
    }
}

/// <summary>What an operator's <see cref="Operator.Lower"/> may do to the artifact being built.</summary>
public interface ILowering
{
    Graph Graph { get; }
    /// <summary>The artifact tensor id of a graph value (weights embedded on first use).</summary>
    int Tensor(string value);
    /// <summary>A new arena tensor for a kernel's temporary result.</summary>
    int Temporary(string name, int[] shape);
    /// <summary>Appends a kernel to the schedule.</summary>
    Artifact.ArtifactNode AddNode(KernelKind kernel, string onnxOp, string name, int[] inputs, int[] outputs);
    /// <summary>A constant the compiler made (a re-packed weight) as an embedded tensor.</summary>
    int Weight(string name, TensorData data);
    /// <summary>An embedded tensor of another element type (int8 weights, int4 packed in bytes, int16/int32 biases, float16 ratios).</summary>
    int Embed(string name, int[] shape, TensorElement element, byte[] data);
    /// <summary>Whether a graph value or an artifact tensor already has the name.</summary>
    bool NameTaken(string name);
    /// <summary>The widest SIMD the kernels may use (ModelArtifact.Simd).</summary>
    SimdLevel Simd { get; }
    /// <summary>Makes <paramref name="output"/> the same memory as <paramref name="input"/> (a copy where that cannot be).</summary>
    void Alias(string input, string output, Node node);
    /// <summary>Whether a tensor holds uint8 activations (written requantized by an int8 layer for the next).</summary>
    bool IsUInt8(int tensor);
    /// <summary>Makes a tensor hold uint8 activations.</summary>
    void MarkUInt8(int tensor);
}

/// <summary>The operators ModelGen compiles, by ONNX op_type.</summary>
public static class OperatorSet
{
    static readonly Dictionary<string, Operator> All = ((Operator[])
    [
        new ConvOperator(), new ConvTransposeOperator(), new MaxPoolOperator(), new ResizeOperator(), new ResizeOperator("Upsample"),
        new RecurrentOperator("LSTM"), new RecurrentOperator("GRU"), new GemmOperator(), new MatMulOperator(), new DenseOperator(),
        new FlattenOperator(), new ReshapeOperator(), new IdentityOperator(), new IdentityOperator("Dropout"), new ConstantOperator(),
        new ShapeOperator(), new CastOperator(), new SqueezeOperator("Squeeze"), new SqueezeOperator("Unsqueeze"), new TransposeOperator(),
        new SliceOperator(), new GatherOperator(), new ConcatOperator(), new SplitOperator(), new PadOperator(),
        new ReduceOperator("ReduceMean"), new ReduceOperator("ReduceSum"), new ReduceOperator("ReduceMax"),
        new GlobalPoolOperator("GlobalAveragePool"), new GlobalPoolOperator("GlobalMaxPool"),
        new SoftmaxOperator("Softmax"), new SoftmaxOperator("LogSoftmax"), new AveragePoolOperator(),
        new BatchNormalizationOperator(), new InstanceNormalizationOperator(), new LayerNormalizationOperator(), new LrnOperator(),
        .. Activations.Names.Select(n => new UnaryOperator(n)),
        .. new[] { "Add", "Sub", "Mul", "Div", "Pow", "PRelu" }.Select(n => new BinaryOperator(n)),
        .. new[] { "Sum", "Mean", "Max", "Min" }.Select(n => new VariadicOperator(n)),
    ]).ToDictionary(o => o.OpType, StringComparer.Ordinal);

    /// <summary>ONNX operators a user may bring (internal ones such as Dense excluded).</summary>
    public static IReadOnlyList<string> Supported { get; } =
        [.. All.Keys.Where(k => k != DenseOperator.Name).Order(StringComparer.Ordinal)];

    /// <summary>ONNX operators whose nodes have a gradient (for the training engine's error messages).</summary>
    public static IReadOnlyList<string> Trainable { get; } =
        [.. All.Values.Where(o => o.OpType != DenseOperator.Name && o.Gradient is not null).Select(o => o.OpType).Order(StringComparer.Ordinal)];

    public static bool IsSupported(string opType) => opType != DenseOperator.Name && All.ContainsKey(opType);

    public static Operator Get(Node node, Graph graph) =>
        All.TryGetValue(node.OpType, out var op) && (node.OpType != DenseOperator.Name || node.Domain == DenseOperator.Domain)
            ? op
            : throw new ModelGenException(ErrorCodes.UnsupportedOperator, graph.ModelPath,
                $"{node.Describe}, opset {graph.Opset}: operator '{node.OpType}' is not supported; supported operators: {string.Join(", ", Supported)}");
}
