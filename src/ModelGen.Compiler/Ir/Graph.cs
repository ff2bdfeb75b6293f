using ModelGen.Onnx.Proto;

namespace ModelGen.Compiler.Ir;

/// <summary>Element types the compiler computes with. Integer constants (shapes, axes) are widened to int64.</summary>
public enum ElementType { Float32, Int64 }

/// <summary>A constant tensor: initializer, Constant output or folded value.</summary>
public sealed class TensorData
{
    public ElementType Type { get; }
    public int[] Shape { get; }
    public float[] Floats { get; } = [];
    public long[] Ints { get; } = [];

    public TensorData(int[] shape, float[] values)
    {
        Type = ElementType.Float32;
        Shape = shape;
        Floats = values;
        if (values.LongLength != Size(shape)) throw new ArgumentException("element count does not match the shape");
    }

    public TensorData(int[] shape, long[] values)
    {
        Type = ElementType.Int64;
        Shape = shape;
        Ints = values;
        if (values.LongLength != Size(shape)) throw new ArgumentException("element count does not match the shape");
    }

    public long Count => Type == ElementType.Float32 ? Floats.LongLength : Ints.LongLength;

    public static long Size(IReadOnlyList<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }
}

/// <summary>A named value of the graph: its type, its fixed shape once inferred, and its data if constant.</summary>
public sealed class Value(string name)
{
    public string Name { get; } = name;
    public ElementType Type { get; set; } = ElementType.Float32;
    public int[]? Shape { get; set; }
    public TensorData? Constant { get; set; }
    public bool IsConstant => Constant is not null;
    /// <summary>The static shape the model file declares for this value (graph outputs, value_info), if any.</summary>
    public int[]? DeclaredShape { get; set; }
}

/// <summary>One ONNX node. Attributes are kept as protobuf messages and read through <see cref="Attr"/>.</summary>
public sealed class Node
{
    public string Name { get; set; } = "";
    public string OpType { get; set; } = "";
    public string Domain { get; set; } = "";
    public List<string> Inputs { get; set; } = [];
    public List<string> Outputs { get; set; } = [];
    public Dictionary<string, AttributeProto> Attributes { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The compiler's own notes on a node, never ONNX attributes: "activation" is an element-wise function
    /// fused into the node's output (Activations' text form); "function" is a unary node's resolved function.
    /// </summary>
    public Dictionary<string, string> Annotations { get; } = new(StringComparer.Ordinal);

    /// <summary>How the node is realised (float32 unless a compression pass gave it another form).</summary>
    public LayerForm Form { get; set; } = LayerForm.Float32;

    /// <summary>"name" (Op), for error messages.</summary>
    public string Describe => $"node '{Name}' ({OpType})";

    /// <summary>An optional input is missing when absent or given as "".</summary>
    public bool HasInput(int i) => i < Inputs.Count && Inputs[i].Length > 0;

    public long Int(string name, long fallback) => Attributes.TryGetValue(name, out var a) ? a.I : fallback;
    public float Float(string name, float fallback) => Attributes.TryGetValue(name, out var a) ? a.F : fallback;
    public string Str(string name, string fallback) => Attributes.TryGetValue(name, out var a) ? a.S.ToStringUtf8() : fallback;
    public long[]? Ints(string name) => Attributes.TryGetValue(name, out var a) ? [.. a.Ints] : null;
    public bool Has(string name) => Attributes.ContainsKey(name);
}

/// <summary>The model after import: nodes in topological order over named values.</summary>
public sealed class Graph
{
    /// <summary>The model file, for error messages.</summary>
    public string ModelPath { get; set; } = "";
    /// <summary>Size of the model file (and its external data): the scale for the compiler's own memory bounds.</summary>
    public long FileBytes { get; set; }
    public long Opset { get; set; }
    public string Producer { get; set; } = "";
    public List<Node> Nodes { get; set; } = [];
    public Dictionary<string, Value> Values { get; } = new(StringComparer.Ordinal);
    public List<string> Inputs { get; } = [];
    public List<string> Outputs { get; } = [];

    public Value this[string name] => Values[name];

    public Value GetOrAdd(string name)
    {
        if (!Values.TryGetValue(name, out var v)) Values[name] = v = new Value(name);
        return v;
    }

    /// <summary>How many nodes read each value (graph outputs count as a reader).</summary>
    public Dictionary<string, int> UseCounts()
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var n in Nodes)
            foreach (var i in n.Inputs)
                if (i.Length > 0) counts[i] = counts.GetValueOrDefault(i) + 1;
        foreach (var o in Outputs) counts[o] = counts.GetValueOrDefault(o) + 1;
        return counts;
    }

    public Node? ProducerOf(string value) => Nodes.FirstOrDefault(n => n.Outputs.Contains(value));

    /// <summary>The compression stages run on this graph, in order (the compression report lists them).</summary>
    public List<CompressionStage> CompressionStages { get; } = [];

    /// <summary>
    /// A copy that can be compressed or rewritten without changing this graph: new nodes (their inputs, outputs,
    /// attributes, annotations), new values, new lists. Shared, because nothing changes them in place: constant
    /// tensors (a pass that changes weights puts a new <see cref="TensorData"/> on a new or the same value) and
    /// forms (immutable records). The operators' per-node plans, made at shape inference, are made again for the
    /// new nodes.
    /// </summary>
    public Graph Clone()
    {
        var clone = new Graph { ModelPath = ModelPath, FileBytes = FileBytes, Opset = Opset, Producer = Producer };
        foreach (var (name, v) in Values)
            clone.Values[name] = new Value(name) { Type = v.Type, Shape = v.Shape is null ? null : [.. v.Shape], Constant = v.Constant, DeclaredShape = v.DeclaredShape is null ? null : [.. v.DeclaredShape] };
        clone.Inputs.AddRange(Inputs);
        clone.Outputs.AddRange(Outputs);
        clone.CompressionStages.AddRange(CompressionStages);
        foreach (var node in Nodes)
        {
            var copy = new Node { Name = node.Name, OpType = node.OpType, Domain = node.Domain, Inputs = [.. node.Inputs], Outputs = [.. node.Outputs], Form = node.Form };
            foreach (var (key, attribute) in node.Attributes) copy.Attributes[key] = attribute.Clone();
            foreach (var (key, note) in node.Annotations) copy.Annotations[key] = note;
            clone.Nodes.Add(copy);
        }
        foreach (var node in clone.Nodes) Operators.OperatorSet.Get(node, clone).InferShapes(node, clone);
        return clone;
    }
}
