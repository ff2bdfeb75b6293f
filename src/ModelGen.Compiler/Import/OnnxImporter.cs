using System.Buffers.Binary;
using ModelGen.Onnx.Proto;

namespace ModelGen.Compiler.Import;

/// <summary>
/// ONNX protobuf → IR: initializers become constants, graph inputs get fixed shapes (a symbolic batch
/// dimension becomes <c>batchSize</c>), nodes are checked for a valid topological order.
/// </summary>
public static class OnnxImporter
{
    public const long MinOpset = 1;
    public const long MaxOpset = 23;
    /// <summary>No tensor may hold more elements than a .NET span can index.</summary>
    public const long MaxElements = 1 << 28;
    /// <summary>More nodes than any real model has; bounds the compiler's work on hostile files.</summary>
    public const int MaxNodes = WireCheck.MaxNodes;

    public static Graph Import(ModelProto model, string modelPath, int batchSize = 1) => Import(model, modelPath, batchSize, null, null);

    /// <summary>
    /// <paramref name="inputShapes"/>: InputShape, the whole shape of the inputs it names. <paramref name="blockers"/>: when
    /// given (modelgen inspect), what keeps the model from compiling is added to it (an input's type or symbolic
    /// sizes, a node's domain, mixed element types) and the import goes on; such an input gets no shape.
    /// </summary>
    public static Graph Import(ModelProto model, string modelPath, int batchSize, IReadOnlyList<InputShapeSpec>? inputShapes, List<Blocker>? blockers)
    {
        if (batchSize < 1 || batchSize > 1_000_000)
            throw new ModelGenException(ErrorCodes.BadOption, modelPath, $"batch size {batchSize} is out of range; give a value from 1 to 1000000");
        var graph = new Graph { ModelPath = modelPath, Producer = (model.ProducerName + " " + model.ProducerVersion).Trim(), FileBytes = model.CalculateSize() };
        try { graph.Opset = ReadOpset(model, modelPath); }
        catch (ModelGenException e) when (blockers is not null)
        {
            blockers.Add(new Blocker(e.Code, e.Message));
            graph.Opset = -1; // unknown: inspect infers no shapes
        }
        var g = model.Graph;

        foreach (var init in g.Initializer)
        {
            var v = graph.GetOrAdd(init.Name);
            v.Constant = ReadTensor(init, modelPath);
            if (init.DataLocation == TensorProto.Types.DataLocation.External) graph.FileBytes += v.Constant.Count * 4;
            v.Type = v.Constant.Type;
            v.Shape = v.Constant.Shape;
        }
        if (g.SparseInitializer.Count > 0)
            throw new ModelGenException(ErrorCodes.UnsupportedDataType, modelPath, $"sparse initializer '{g.SparseInitializer[0].Values?.Name}' is not supported; export the model with dense initializers");

        var graphInputs = g.Input.Where(i => !(graph.Values.TryGetValue(i.Name, out var existing) && existing.IsConstant)).ToList(); // an initializer listed as input (IR < 4): a constant for us
        var (given, named) = ResolveInputShapes(inputShapes ?? [], graphInputs, batchSize, modelPath);
        foreach (var input in graphInputs)
        {
            if (graph.Inputs.Contains(input.Name))
                throw new ModelGenException(ErrorCodes.InvalidGraph, modelPath, $"graph input '{input.Name}' is listed twice; ONNX Runtime refuses such a model too: give each input its own name");
            var v = graph.GetOrAdd(input.Name);
            graph.Inputs.Add(input.Name);
            v.Type = ElementType.Float32;
            try
            {
                var tt = input.Type?.TensorType ?? throw new ModelGenException(ErrorCodes.UnsupportedDataType, modelPath, $"graph input '{input.Name}' is not a tensor; only tensor inputs are supported");
                // int64 inputs carry indices (token ids for an embedding Gather); everything computed is float32.
                if (tt.ElemType != (int)TensorProto.Types.DataType.Float && tt.ElemType != (int)TensorProto.Types.DataType.Int64)
                    throw new ModelGenException(ErrorCodes.UnsupportedDataType, modelPath, $"graph input '{input.Name}' has element type {DataTypeName(tt.ElemType)}; inputs must be float32 (or int64 indices): export it as float32, or cast inside the model");
                v.Type = tt.ElemType == (int)TensorProto.Types.DataType.Int64 ? ElementType.Int64 : ElementType.Float32;
                v.Shape = InputShape(input, tt, batchSize, given, named, modelPath);
            }
            catch (ModelGenException e) when (blockers is not null && e.Code is ErrorCodes.UnsupportedDataType or ErrorCodes.DynamicShape)
            {
                blockers.Add(new Blocker(e.Code, e.Message));
            }
        }

        if (g.Node.Count > MaxNodes)
            throw new ModelGenException(ErrorCodes.TooLarge, modelPath, $"the graph has {g.Node.Count} nodes; ModelGen compiles at most {MaxNodes}");
        var produced = new HashSet<string>(graph.Values.Keys, StringComparer.Ordinal);
        var nodes = new List<Node>(g.Node.Count);
        int index = 0;
        foreach (var np in g.Node)
        {
            var node = new Node
            {
                Name = np.Name.Length > 0 ? np.Name : $"{np.OpType}_{index}",
                OpType = np.OpType,
                Domain = np.Domain,
                Inputs = [.. np.Input],
                Outputs = [.. np.Output],
            };
            index++;
            foreach (var a in np.Attribute) node.Attributes[a.Name] = a;
            if (node.Domain.Length > 0 && node.Domain != "ai.onnx")
            {
                var e = new ModelGenException(ErrorCodes.UnsupportedOperator, modelPath, $"{node.Describe} is in operator domain '{node.Domain}'; only the standard ONNX domain is supported: re-export with standard operators (e.g. without onnxruntime's fusions)");
                if (blockers is null) throw e;
                blockers.Add(new Blocker(e.Code, e.Message));
            }
            if (!node.Outputs.Any(o => o.Length > 0))
                throw new ModelGenException(ErrorCodes.InvalidGraph, modelPath, $"{node.Describe} has no outputs; every ONNX operator writes at least one");
            foreach (var o in node.Outputs)
                if (o.Length > 0 && !produced.Add(o))
                    throw new ModelGenException(ErrorCodes.InvalidGraph, modelPath, $"{node.Describe} writes '{o}', which another node, input or initializer already defines");
            nodes.Add(node);
        }
        graph.Nodes = TopologicalOrder(nodes, produced, graph, modelPath);
        CheckElementTypes(g, graph.Nodes, modelPath, blockers);
        foreach (var n in graph.Nodes)
            foreach (var o in n.Outputs)
                if (o.Length > 0) graph.GetOrAdd(o);

        foreach (var output in g.Output)
        {
            if (!graph.Values.ContainsKey(output.Name))
                throw new ModelGenException(ErrorCodes.InvalidGraph, modelPath, $"graph output '{output.Name}' is computed by no node");
            if (graph.Outputs.Contains(output.Name))
                throw new ModelGenException(ErrorCodes.InvalidGraph, modelPath, $"graph output '{output.Name}' is listed twice");
            graph.Outputs.Add(output.Name);
        }
        // Declared shapes let an operator whose shape parameters arrive at run time (a Reshape target
        // given as a graph input) compile to that shape, checking the parameters when it runs.
        foreach (var info in g.Output.Concat(g.ValueInfo))
            if (graph.Values.TryGetValue(info.Name, out var v) && info.Type?.TensorType?.Shape is { } shape
                && shape.Dim.All(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue >= 0 && d.DimValue <= MaxElements))
                v.DeclaredShape = [.. shape.Dim.Select(d => (int)d.DimValue)];
        // An elementwise unary node keeps its input's shape, so a shape declared for its output is its
        // input's too (exporters declare the graph output, not the ReduceSum feeding the final Log).
        for (int i = graph.Nodes.Count - 1; i >= 0; i--)
        {
            var n = graph.Nodes[i];
            if (ShapePreservingUnary.Contains(n.OpType) && n.Inputs.Count >= 1 && n.Outputs.Count >= 1
                && graph.Values.TryGetValue(n.Outputs[0], out var y) && y.DeclaredShape is { } declared
                && graph.Values.TryGetValue(n.Inputs[0], out var x) && x.DeclaredShape is null)
                x.DeclaredShape = declared;
        }
        if (graph.Outputs.Count == 0)
            throw new ModelGenException(ErrorCodes.InvalidGraph, modelPath, "the graph has no outputs");
        return graph;
    }

    /// <summary>Operators whose inputs share one type parameter T (Clip's min and max, Conv's bias…).</summary>
    static readonly HashSet<string> SameTypeInputs = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "MatMul", "Gemm", "Conv", "ConvTranspose", "Concat", "PRelu",
        "Clip", "InstanceNormalization",
    };

    /// <summary>
    /// ONNX Runtime refuses a node whose inputs of one type T differ (a float64 initializer added to a
    /// float32 input), so it is MG1002 here too, not a silent conversion. Types are known from the graph's
    /// inputs, initializers, Constant and Cast, and carried through operators that keep their input's type.
    /// </summary>
    static void CheckElementTypes(GraphProto g, List<Node> nodes, string modelPath, List<Blocker>? blockers)
    {
        var types = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var input in g.Input) if (input.Type?.TensorType is { } tt) types[input.Name] = tt.ElemType;
        foreach (var init in g.Initializer) types[init.Name] = init.DataType;
        foreach (var node in nodes)
        {
            int? type = null;
            if (node.OpType == "Constant" && node.Attributes.TryGetValue("value", out var value) && value.T is { } t) type = t.DataType;
            else if (node.OpType == "Cast" && node.Attributes.TryGetValue("to", out var to)) type = (int)to.I;
            else if (SameTypeInputs.Contains(node.OpType) || ShapePreservingUnary.Contains(node.OpType))
            {
                var known = node.Inputs.Where(i => i.Length > 0 && types.ContainsKey(i)).ToList();
                if (known.Select(i => types[i]).Distinct().Count() > 1)
                {
                    var e = new ModelGenException(ErrorCodes.UnsupportedDataType, modelPath,
                        $"{node.Describe} takes inputs of different element types ({string.Join(", ", known.Select(i => $"'{i}' {DataTypeName(types[i])}"))}); ONNX requires one type for them and ONNX Runtime refuses the model: export them all as float32");
                    if (blockers is null) throw e;
                    blockers.Add(new Blocker(e.Code, e.Message));
                }
                if (known.Count > 0) type = types[known[0]];
            }
            if (type is int output && node.Outputs.Count > 0 && node.Outputs[0].Length > 0) types[node.Outputs[0]] = output;
        }
    }

    static readonly HashSet<string> ShapePreservingUnary = new(StringComparer.Ordinal)
    {
        "Abs", "Neg", "Exp", "Log", "Sqrt", "Relu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Erf", "Elu", "Selu",
        "LeakyRelu", "HardSigmoid", "HardSwish", "Reciprocal", "Floor", "Ceil", "Identity", "Softmax", "LogSoftmax",
    };

    static long ReadOpset(ModelProto model, string modelPath)
    {
        long opset = -1;
        foreach (var o in model.OpsetImport)
            if (o.Domain.Length == 0 || o.Domain == "ai.onnx") opset = o.Version;
        if (opset < 0 && model.IrVersion > 0 && model.IrVersion < 3) opset = 1; // IR 1-2 had no opset import
        if (opset < MinOpset || opset > MaxOpset)
            throw new ModelGenException(ErrorCodes.UnsupportedOperator, modelPath, $"the model imports ONNX opset {opset}; ModelGen supports opsets {MinOpset} to {MaxOpset}; convert it with onnx.version_converter");
        return opset;
    }

    /// <summary>
    /// Checks InputShape against the model's inputs (MG1008: an input it does not have, another rank, a fixed size it
    /// contradicts) and gives each named input's shape, and the sizes it fixes by their symbolic names (another input's
    /// 'sequence' is the same 'sequence').
    /// </summary>
    static (Dictionary<string, int[]> Given, Dictionary<string, int> Named) ResolveInputShapes(IReadOnlyList<InputShapeSpec> specs, List<ValueInfoProto> inputs, int batchSize, string modelPath)
    {
        var given = new Dictionary<string, int[]>(StringComparer.Ordinal);
        var named = new Dictionary<string, int>(StringComparer.Ordinal);
        string Inputs() => string.Join(", ", inputs.Take(20).Select(i => i.Type?.TensorType is { Shape: not null } t ? $"{i.Name} {InputShapes.Declared(t)}" : i.Name))
            + (inputs.Count > 20 ? $" and {inputs.Count - 20} more" : ""); // a hostile file's thousands of inputs stay one line
        foreach (var spec in specs)
        {
            var input = spec.Name is null
                ? inputs.Count == 1 ? inputs[0] : throw new ModelGenException(ErrorCodes.InputShapeMismatch, modelPath,
                    $"InputShape '{spec.Text}' names no input, and the model has {inputs.Count} inputs ({Inputs()}); write name:dims for each input to fix")
                : inputs.FirstOrDefault(i => i.Name == spec.Name) ?? throw new ModelGenException(ErrorCodes.InputShapeMismatch, modelPath,
                    $"InputShape names input '{spec.Name}', which the model does not have; its inputs: {Inputs()}");
            string what = $"InputShape '{spec.Text}' for input '{input.Name}'";
            if (input.Type?.TensorType is not { Shape: not null } tt)
            {
                given[input.Name] = spec.Shape; // no declared shape: InputShape gives it
                continue;
            }
            string declared = InputShapes.Declared(tt);
            if (tt.Shape.Dim.Count != spec.Shape.Length)
                throw new ModelGenException(ErrorCodes.InputShapeMismatch, modelPath,
                    $"{what} has {spec.Shape.Length} dimensions; the model declares {tt.Shape.Dim.Count}: {declared}; give one size for each, e.g. {InputShapes.Suggestion(input.Name, tt, batchSize)}");
            for (int i = 0; i < spec.Shape.Length; i++)
            {
                var d = tt.Shape.Dim[i];
                if (d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue >= 0)
                {
                    if (d.DimValue != spec.Shape[i])
                        throw new ModelGenException(ErrorCodes.InputShapeMismatch, modelPath,
                            $"{what} gives dimension {i} as {spec.Shape[i]}; the model fixes it at {d.DimValue}: {declared}; give {InputShapes.Suggestion(input.Name, tt, batchSize)} (only symbolic sizes can be chosen)");
                }
                else
                {
                    // BatchSize left at its default yields to InputShape; a BatchSize given too must agree.
                    if (i == 0 && batchSize != 1 && spec.Shape[0] != batchSize)
                        throw new ModelGenException(ErrorCodes.InputShapeMismatch, modelPath,
                            $"{what} gives the batch dimension as {spec.Shape[0]}, and BatchSize (--batch-size) is {batchSize}; make them agree, or leave BatchSize at 1 and let InputShape set it");
                    if (d.DimParam.Length > 0)
                    {
                        if (named.TryGetValue(d.DimParam, out int other) && other != spec.Shape[i])
                            throw new ModelGenException(ErrorCodes.InputShapeMismatch, modelPath,
                                $"{what} gives '{d.DimParam}' (dimension {i}) as {spec.Shape[i]}, and another input's InputShape gives it as {other}; the model names both '{d.DimParam}', so they must be equal");
                        named[d.DimParam] = spec.Shape[i];
                    }
                }
            }
            given[input.Name] = spec.Shape;
        }
        return (given, named);
    }

    static int[] InputShape(ValueInfoProto input, TypeProto.Types.Tensor tt, int batchSize, Dictionary<string, int[]> given, Dictionary<string, int> named, string modelPath)
    {
        if (given.TryGetValue(input.Name, out var fixedShape))
        {
            if (TensorData.Size(fixedShape) > MaxElements)
                throw new ModelGenException(ErrorCodes.TooLarge, modelPath, $"graph input '{input.Name}' of shape [{string.Join(",", fixedShape)}] (InputShape) has more than {MaxElements} elements; give smaller sizes");
            return fixedShape;
        }
        if (tt.Shape is null)
            throw new ModelGenException(ErrorCodes.DynamicShape, modelPath, $"graph input '{input.Name}' has no shape; ModelGen compiles fixed shapes: give it with the item metadata InputShape=\"{input.Name}:<dims>\" (modelgen --input-shape {input.Name}:<dims>), dims separated by 'x', or export with a known input shape");
        var shape = new int[tt.Shape.Dim.Count];
        var symbolic = new List<string>();
        for (int i = 0; i < shape.Length; i++)
        {
            var d = tt.Shape.Dim[i];
            if (d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue >= 0)
            {
                if (d.DimValue > MaxElements)
                    throw new ModelGenException(ErrorCodes.TooLarge, modelPath, $"graph input '{input.Name}' declares dimension {d.DimValue}, beyond what ModelGen compiles");
                shape[i] = (int)d.DimValue;
            }
            else if (d.DimParam.Length > 0 && named.TryGetValue(d.DimParam, out int size))
                shape[i] = size; // a size InputShape fixed on another input under the same name
            else if (i == 0)
                shape[i] = batchSize; // symbolic or unknown batch dimension
            else
                symbolic.Add(d.DimParam.Length > 0 ? $"{i} ('{d.DimParam}')" : $"{i} (unnamed)");
        }
        if (symbolic.Count > 0)
        {
            string suggestion = InputShapes.Suggestion(input.Name, tt, batchSize);
            throw new ModelGenException(ErrorCodes.DynamicShape, modelPath,
                $"graph input '{input.Name}' {InputShapes.Declared(tt)} has symbolic {(symbolic.Count == 1 ? "dimension" : "dimensions")} {string.Join(", ", symbolic)}; ModelGen compiles fixed sizes (only the first, batch dimension takes BatchSize): fix {(symbolic.Count == 1 ? "it" : "them")} with the item metadata InputShape=\"{suggestion}\" (modelgen --input-shape {suggestion}), each <…> replaced by the size you will run it with, or export the model with fixed sizes");
        }
        if (TensorData.Size(shape) > MaxElements)
            throw new ModelGenException(ErrorCodes.TooLarge, modelPath, $"graph input '{input.Name}' of shape [{string.Join(",", shape)}] is too large");
        return shape;
    }

    /// <summary>Kahn's algorithm, stable in file order; a cycle or an undefined input is an error.</summary>
    static List<Node> TopologicalOrder(List<Node> nodes, HashSet<string> defined, Graph graph, string modelPath)
    {
        var available = new HashSet<string>(graph.Values.Keys, StringComparer.Ordinal);
        foreach (var n in nodes)
            foreach (var i in n.Inputs)
                if (i.Length > 0 && !defined.Contains(i))
                    throw new ModelGenException(ErrorCodes.InvalidGraph, modelPath, $"{n.Describe} reads '{i}', which no node, input or initializer defines (a missing initializer?)");
        // Kahn's algorithm over value dependencies, linear in nodes + edges; ties keep file order.
        var waiting = new int[nodes.Count];
        var readers = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (int n = 0; n < nodes.Count; n++)
            foreach (var i in nodes[n].Inputs.Where(i => i.Length > 0 && !available.Contains(i)).Distinct())
            {
                waiting[n]++;
                if (!readers.TryGetValue(i, out var list)) readers[i] = list = [];
                list.Add(n);
            }
        var ready = new PriorityQueue<int, int>();
        for (int n = 0; n < nodes.Count; n++) if (waiting[n] == 0) ready.Enqueue(n, n);
        var order = new List<Node>(nodes.Count);
        while (ready.TryDequeue(out int n, out _))
        {
            order.Add(nodes[n]);
            foreach (var o in nodes[n].Outputs)
                if (o.Length > 0 && readers.TryGetValue(o, out var list))
                    foreach (int r in list)
                        if (--waiting[r] == 0) ready.Enqueue(r, r);
        }
        if (order.Count < nodes.Count)
        {
            var stuck = nodes.Where((_, n) => waiting[n] > 0).First();
            throw new ModelGenException(ErrorCodes.InvalidGraph, modelPath, $"the graph has a cycle through {stuck.Describe}; ONNX graphs must be acyclic");
        }
        return order;
    }

    public static TensorData ReadTensor(TensorProto t, string modelPath)
    {
        var shape = new int[t.Dims.Count];
        long count = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            long d = t.Dims[i];
            if (d < 0 || d > MaxElements)
                throw new ModelGenException(ErrorCodes.InvalidGraph, modelPath, $"tensor '{t.Name}' has dimension {d}");
            shape[i] = (int)d;
            count *= d;
            if (count > MaxElements)
                throw new ModelGenException(ErrorCodes.TooLarge, modelPath, $"tensor '{t.Name}' of {count}+ elements is too large");
        }
        var type = (TensorProto.Types.DataType)t.DataType;
        int elementSize = type switch
        {
            TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Int32 => 4,
            TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Double => 8,
            _ => throw new ModelGenException(ErrorCodes.UnsupportedDataType, modelPath, $"tensor '{t.Name}' has element type {DataTypeName(t.DataType)}; supported: float32, float64, int32, int64"),
        };
        ReadOnlySpan<byte> raw = default;
        byte[]? external = null;
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
        {
            external = OnnxModelLoader.ReadExternalData(t, modelPath, count * elementSize);
            raw = external;
        }
        else if (!t.RawData.IsEmpty) raw = t.RawData.Span;
        bool useRaw = external is not null || !t.RawData.IsEmpty;
        if (useRaw && raw.Length != count * elementSize)
            throw new ModelGenException(ErrorCodes.InvalidGraph, modelPath, $"tensor '{t.Name}' holds {raw.Length} bytes of data; its shape needs {count * elementSize}");

        int have = type switch
        {
            TensorProto.Types.DataType.Float => t.FloatData.Count,
            TensorProto.Types.DataType.Double => t.DoubleData.Count,
            TensorProto.Types.DataType.Int32 => t.Int32Data.Count,
            _ => t.Int64Data.Count,
        };
        // Before allocating: a tensor that declares many elements but holds few costs nothing.
        if (!useRaw && have != count)
            throw new ModelGenException(ErrorCodes.InvalidGraph, modelPath, $"tensor '{t.Name}' holds {have} values; its shape needs {count}");

        switch (type)
        {
            case TensorProto.Types.DataType.Float:
            {
                var values = new float[count];
                if (useRaw)
                    for (int i = 0; i < count; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(raw.Slice(i * 4));
                else t.FloatData.CopyTo(values, 0);
                return new TensorData(shape, values);
            }
            case TensorProto.Types.DataType.Double:
            {
                var values = new float[count];
                if (useRaw)
                    for (int i = 0; i < count; i++) values[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(raw.Slice(i * 8));
                else for (int i = 0; i < count; i++) values[i] = (float)t.DoubleData[i];
                return new TensorData(shape, values);
            }
            case TensorProto.Types.DataType.Int32:
            {
                var values = new long[count];
                if (useRaw)
                    for (int i = 0; i < count; i++) values[i] = BinaryPrimitives.ReadInt32LittleEndian(raw.Slice(i * 4));
                else for (int i = 0; i < count; i++) values[i] = t.Int32Data[i];
                return new TensorData(shape, values);
            }
            default:
            {
                var values = new long[count];
                if (useRaw)
                    for (int i = 0; i < count; i++) values[i] = BinaryPrimitives.ReadInt64LittleEndian(raw.Slice(i * 8));
                else t.Int64Data.CopyTo(values, 0);
                return new TensorData(shape, values);
            }
        }
    }

    public static string DataTypeName(int type) =>
        Enum.IsDefined(typeof(TensorProto.Types.DataType), type) ? ((TensorProto.Types.DataType)type).ToString().ToLowerInvariant() : $"#{type}";
}
