using Google.Protobuf;
using ModelGen.Onnx.Proto;

namespace ModelGen.Tests.Support;

/// <summary>Writes small ONNX models for tests with our own protobuf schema: what ONNX Runtime and ModelGen both read.</summary>
public sealed class OnnxBuilder
{
    readonly ModelProto _model;
    GraphProto Graph => _model.Graph;
    int _nodes;

    public OnnxBuilder(long opset = 13, string graphName = "test")
    {
        _model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "ModelGen.Tests",
            Graph = new GraphProto { Name = graphName },
        };
        _model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
    }

    /// <summary>A float32 graph input; a null dimension is symbolic ("N").</summary>
    public OnnxBuilder Input(string name, params int?[] shape)
    {
        Graph.Input.Add(ValueInfo(name, shape));
        return this;
    }

    /// <summary>An int64 graph input (indices, or shape parameters given at run time).</summary>
    public OnnxBuilder IntInput(string name, params int[] shape)
    {
        var info = ValueInfo(name, [.. shape.Select(d => (int?)d)]);
        info.Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Int64;
        Graph.Input.Add(info);
        return this;
    }

    /// <summary>A float32 graph output with a declared shape.</summary>
    public OnnxBuilder Output(string name, params int[] shape)
    {
        Graph.Output.Add(ValueInfo(name, [.. shape.Select(d => (int?)d)]));
        return this;
    }

    /// <summary>A float32 graph output of unstated shape (ONNX Runtime and ModelGen infer it).</summary>
    public OnnxBuilder Output(string name)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float };
        Graph.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } });
        return this;
    }

    public OnnxBuilder Initializer(string name, int[] shape, float[] values)
    {
        Graph.Initializer.Add(Tensor(name, shape, values));
        return this;
    }

    public OnnxBuilder Initializer(string name, long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.AddRange(values);
        Graph.Initializer.Add(t);
        return this;
    }

    /// <summary>An int64 scalar initializer (rank 0).</summary>
    public OnnxBuilder ScalarInitializer(string name, long value)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Int64Data.Add(value);
        Graph.Initializer.Add(t);
        return this;
    }

    public OnnxBuilder Node(string op, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = $"{op}_{_nodes++}" };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        foreach (var (name, value) in attributes) node.Attribute.Add(Attribute(name, value));
        Graph.Node.Add(node);
        return this;
    }

    /// <summary>Gives the last node added another name (hostile-name tests).</summary>
    public OnnxBuilder NamedLast(string name)
    {
        Graph.Node[^1].Name = name;
        return this;
    }

    public ModelProto Model => _model;

    public byte[] Bytes() => _model.ToByteArray();

    /// <summary>Writes the model into a fresh temporary folder and returns its path.</summary>
    public string Save(string fileName = "model.onnx")
    {
        string dir = Path.Combine(Path.GetTempPath(), "modelgen-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, fileName);
        File.WriteAllBytes(path, Bytes());
        return path;
    }

    public static TensorProto Tensor(string name, int[] shape, float[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(shape.Select(d => (long)d));
        var raw = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, raw, 0, raw.Length);
        t.RawData = ByteString.CopyFrom(raw);
        return t;
    }

    static ValueInfoProto ValueInfo(string name, int?[] shape)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() };
        foreach (var d in shape)
            tensor.Shape.Dim.Add(d is { } v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = "N" });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }

    static AttributeProto Attribute(string name, object value) => value switch
    {
        int i => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = i },
        long l => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = l },
        float f => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = f },
        string s => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(s) },
        int[] ints => Ints(name, ints.Select(v => (long)v)),
        long[] longs => Ints(name, longs),
        float[] floats => FloatList(name, floats),
        string[] strings => StringList(name, strings),
        TensorProto t => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = t },
        _ => throw new ArgumentException($"attribute type {value.GetType()}"),
    };

    static AttributeProto StringList(string name, string[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Strings };
        a.Strings.AddRange(values.Select(ByteString.CopyFromUtf8));
        return a;
    }

    static AttributeProto FloatList(string name, float[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Floats };
        a.Floats.AddRange(values);
        return a;
    }

    static AttributeProto Ints(string name, IEnumerable<long> values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    /// <summary>Deterministic values in [-1, 1).</summary>
    public static float[] Random(int count, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1))];
    }
}
