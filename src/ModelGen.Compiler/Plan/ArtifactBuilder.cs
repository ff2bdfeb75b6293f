using System.Buffers.Binary;
using System.Globalization;
using ModelGen.Artifact;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Plan;

/// <summary>
/// Lowers the normalized graph to the artifact: one kernel per node in schedule order, each value
/// given a storage (the caller's spans, embedded weights, or an arena slice from the memory plan).
/// Reshape, Flatten and Identity become aliases of their input's storage; a copy only where two
/// caller spans would have to be the same memory.
/// </summary>
public sealed class ArtifactBuilder : ILowering
{
    readonly Graph _graph;
    readonly ModelArtifact _artifact = new();
    readonly Dictionary<string, int> _tensorIds = new(StringComparer.Ordinal);
    // Storage groups: aliases share one group (union-find over tensor ids).
    readonly List<int> _parent = [];

    ArtifactBuilder(Graph graph) => _graph = graph;

    public static ModelArtifact Build(Graph graph, string className, string ns, string sourceFile, string sha256, SimdLevel simd)
    {
        var b = new ArtifactBuilder(graph);
        var a = b._artifact;
        a.ClassName = className;
        a.Namespace = ns;
        a.SourceFile = sourceFile;
        a.SourceSha256 = sha256;
        a.Producer = graph.Producer;
        a.Opset = graph.Opset;
        a.Simd = simd;
        b.Lower();
        return a;
    }

    void Lower()
    {
        // Names the emitted Run and Predict use for their own locals and parameters.
        var taken = new HashSet<string>(["scratch", "arena", "predicted", "best", "i", "parameter", "expected", "actual", "ticks", "start", "now"], StringComparer.Ordinal);
        for (int i = 0; i < _graph.Inputs.Count; i++)
        {
            int id = Tensor(_graph.Inputs[i]);
            _artifact.Tensors[id].Storage = TensorStorage.Input;
            _artifact.Tensors[id].Index = i;
            if (_graph[_graph.Inputs[i]].Type == ElementType.Int64) _artifact.Tensors[id].Element = TensorElement.Int64;
            _artifact.Inputs.Add(new ArtifactBinding { Tensor = id, Name = _graph.Inputs[i], Parameter = Identifiers.Unique(Identifiers.Camel(_graph.Inputs[i], "input"), taken) });
        }
        // Outputs get their tensors now so a node writing an output writes the caller's span directly.
        var outputIds = new List<int>();
        for (int j = 0; j < _graph.Outputs.Count; j++)
        {
            string name = _graph.Outputs[j];
            var source = _graph[name];
            int id = source.IsConstant || _graph.Inputs.Contains(name) ? NewTensor(name, source.Shape!) : Tensor(name);
            _artifact.Tensors[id].Storage = TensorStorage.Output;
            _artifact.Tensors[id].Index = j;
            if (source.Type == ElementType.Int64) _artifact.Tensors[id].Element = TensorElement.Int64;
            if (source.Type == ElementType.Int64 && !source.IsConstant && !_graph.Inputs.Contains(name))
                throw new ModelGenException(ErrorCodes.UnsupportedDataType, _graph.ModelPath, $"graph output '{name}' is an integer tensor computed at run time; only float32 is computed at run time");
            _artifact.Outputs.Add(new ArtifactBinding { Tensor = id, Name = name, Parameter = Identifiers.Unique(Identifiers.Camel(name, "output"), taken) });
            outputIds.Add(id);
        }

        foreach (var node in _graph.Nodes) LowerNode(node);

        // Outputs that no kernel writes (a constant or an input passed straight through) are copied.
        for (int j = 0; j < _graph.Outputs.Count; j++)
        {
            string name = _graph.Outputs[j];
            if (_graph[name].IsConstant || _graph.Inputs.Contains(name))
                AddNode(KernelKind.Copy, "Identity", name, [Tensor(name)], [outputIds[j]]);
        }
        PlanArena();
    }

    /// <summary>Every node lowers through its operator (Operator.Lower), which adds its kernels through ILowering.</summary>
    void LowerNode(Node node) => OperatorSet.Get(node, _graph).Lower(node, this);

    void ILowering.Alias(string input, string output, Node node)
    {
        int x = Tensor(input);
        int y = Tensor(output);
        var (rx, ry) = (Find(x), Find(y));
        var (sx, sy) = (_artifact.Tensors[rx], _artifact.Tensors[ry]);
        // uint8 activations between int8 layers (a Flatten between a pooling and a fully connected layer) stay bytes.
        if (_artifact.Tensors[x].Element == TensorElement.UInt8) _artifact.Tensors[y].Element = TensorElement.UInt8;
        bool xFixed = sx.Storage != TensorStorage.Arena, yFixed = sy.Storage != TensorStorage.Arena;
        if (xFixed && yFixed)
        {
            // Two caller spans (input → output, output → output) are different memory: copy.
            AddNode(KernelKind.Copy, node.OpType, node.Name, [x], [y]);
            return;
        }
        // The group keeps the fixed storage, if either side has one.
        if (xFixed) _parent[ry] = rx; else _parent[rx] = ry;
    }

    int Find(int id)
    {
        while (_parent[id] != id) id = _parent[id] = _parent[_parent[id]];
        return id;
    }

    Graph ILowering.Graph => _graph;

    bool ILowering.IsUInt8(int tensor) => _artifact.Tensors[tensor].Element == TensorElement.UInt8;

    void ILowering.MarkUInt8(int tensor) => _artifact.Tensors[tensor].Element = TensorElement.UInt8;

    int ILowering.Temporary(string name, int[] shape) => NewTensor(name, shape);

    int ILowering.Embed(string name, int[] shape, TensorElement element, byte[] data)
    {
        if (Embedded(name, shape, element, data) is int same) return same;
        int id = NewTensor(name, shape);
        var t = _artifact.Tensors[id];
        t.Storage = TensorStorage.Weight;
        t.Element = element;
        t.Data = data;
        _embedded.TryAdd(name, id);
        return id;
    }

    readonly Dictionary<string, int> _embedded = new(StringComparer.Ordinal);

    /// <summary>The weight tensor already embedded under this name with these bytes: nodes reading one constant (layers tied by weight sharing) read one copy.</summary>
    int? Embedded(string name, int[] shape, TensorElement element, byte[] data) =>
        _embedded.TryGetValue(name, out int id) && _artifact.Tensors[id] is var t && t.Element == element && t.Shape.SequenceEqual(shape) && t.Data.AsSpan().SequenceEqual(data) ? id : null;

    bool ILowering.NameTaken(string name) => _graph.Values.ContainsKey(name) || _artifact.Tensors.Any(t => t.Name == name);

    SimdLevel ILowering.Simd => _artifact.Simd;

    int ILowering.Weight(string name, TensorData data)
    {
        var bytes = new ArtifactTensor { Shape = data.Shape };
        SetWeight(bytes, data);
        return ((ILowering)this).Embed(name, data.Shape, bytes.Element, bytes.Data!);
    }

    static void SetWeight(ArtifactTensor t, TensorData c)
    {
        t.Storage = TensorStorage.Weight;
        if (c.Type == ElementType.Int64)
        {
            // An integer constant only ever reaches a kernel as a graph output (a folded Shape, say).
            t.Element = TensorElement.Int64;
            t.Data = new byte[c.Ints.Length * 8];
            for (int i = 0; i < c.Ints.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(t.Data.AsSpan(i * 8), c.Ints[i]);
            return;
        }
        t.Data = new byte[c.Floats.Length * 4];
        for (int i = 0; i < c.Floats.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(t.Data.AsSpan(i * 4), c.Floats[i]);
    }

    public int Tensor(string name)
    {
        if (_tensorIds.TryGetValue(name, out int id)) return id;
        var v = _graph[name];
        // A node of a hostile file may name more outputs than its operator has: those get no shape.
        id = NewTensor(name, v.Shape ?? throw new ModelGenException(ErrorCodes.InvalidGraph, _graph.ModelPath,
            $"'{name}' has no shape: the node writing it names an output its operator does not have"));
        if (v.Constant is { } c)
        {
            SetWeight(_artifact.Tensors[id], c);
        }
        _tensorIds[name] = id;
        return id;
    }

    int NewTensor(string name, int[] shape)
    {
        int id = _artifact.Tensors.Count;
        _artifact.Tensors.Add(new ArtifactTensor { Id = id, Name = name, Shape = shape, Storage = TensorStorage.Arena });
        _parent.Add(id);
        return id;
    }

    public ArtifactNode AddNode(KernelKind kernel, string onnxOp, string name, int[] inputs, int[] outputs)
    {
        var n = new ArtifactNode { Kernel = kernel, OnnxOp = onnxOp, Name = name, Inputs = inputs, Outputs = outputs };
        _artifact.Nodes.Add(n);
        return n;
    }

    /// <summary>
    /// For a depthwise Conv with equal strides of 1 or 2 (and SIMD): the padded plane (rows, width) and
    /// the wide output's length. Output (oy, ox) is element j = oy·width + ox of the wide output, and
    /// tap (kh, kw) reads padded element stride·j + kh·dH·width + kw·dW: for the whole plane, a run of
    /// memory (stride 1) or its even elements (stride 2). Lengths are rounded to whole 16-float vectors
    /// and the padded plane has the rows the last vector reads.
    /// </summary>
    public static (int Rows, int Width, int Wide)? DepthwisePlane(WindowGeometry g, int[] x, int[] y)
    {
        if (g.StrideH != g.StrideW || g.StrideW is not (1 or 2) || x.Length != 4) return null;
        int width = x[3] + g.PadLeft + g.PadRight;
        long wide = ((long)y[2] * width + 15) / 16 * 16;
        long reach = g.StrideW * (wide - 1) + (g.KernelH - 1) * g.DilationH * width + (g.KernelW - 1) * g.DilationW + g.StrideW;
        long rows = Math.Max(x[2] + g.PadTop + g.PadBottom, (reach + width) / width);
        if (rows * width > 1 << 26) return null;
        return ((int)rows, width, (int)wide);
    }

    /// <summary>[N', K'] of a one-row fully connected layer in 4-row panels: N rounded up to 4, K to 16.</summary>
    internal static int[] PanelShape(int n, int k) => [(n + 3) / 4, (k + 15) / 16, 4, 16];

    /// <summary>
    /// W [N, K] re-packed for the one-row kernel: panels of 4 rows, each panel 16 columns of every row
    /// in turn ([N'/4, K'/16, 4, 16], zero rows and columns to fill), so the kernel reads the weights as
    /// one stream in order (one prefetch stream, whole cache lines) instead of 4 rows K apart.
    /// </summary>
    internal static float[] Panels4(float[] w, int n, int k)
    {
        int[] shape = PanelShape(n, k);
        var packed = new float[(long)shape[0] * shape[1] * 64];
        for (int j = 0; j < n; j++)
            for (int i = 0; i < k; i++)
                packed[((long)(j / 4) * shape[1] + i / 16) * 64 + j % 4 * 16 + i % 16] = w[(long)j * k + i];
        return packed;
    }

    /// <summary>Gives each arena group an offset; every member of a group (aliases) shares it.</summary>
    void PlanArena()
    {
        var first = new Dictionary<int, int>();
        var last = new Dictionary<int, int>();
        for (int step = 0; step < _artifact.Nodes.Count; step++)
        {
            var node = _artifact.Nodes[step];
            foreach (int id in node.Inputs.Concat(node.Outputs))
            {
                int root = Find(id);
                if (_artifact.Tensors[root].Storage != TensorStorage.Arena) continue;
                if (!first.ContainsKey(root)) first[root] = step;
                last[root] = step;
            }
        }
        var groupBytes = new Dictionary<int, long>();
        foreach (var t in _artifact.Tensors)
        {
            int root = Find(t.Id);
            groupBytes[root] = Math.Max(groupBytes.GetValueOrDefault(root), t.ArenaBytes);
        }
        var requests = first.Keys.Order()
            .Select(root => new BufferRequest(root, groupBytes[root], first[root], last[root]))
            .ToList();
        var (offsets, arena) = MemoryPlanner.Plan(requests);
        _artifact.MemoryPlan = new MemoryPlanReport(arena, requests.Sum(r => MemoryPlanner.Align(r.Bytes)), MemoryPlanner.LowerBound(requests));
        if (arena > int.MaxValue)
            throw new ModelGenException(ErrorCodes.TooLarge, _graph.ModelPath, $"the model needs {arena} bytes of scratch memory at once; ModelGen's limit is 2 GiB: reduce the batch size or input size");
        _artifact.ScratchBytes = arena;
        foreach (var t in _artifact.Tensors)
        {
            var root = _artifact.Tensors[Find(t.Id)];
            t.Storage = root.Storage;
            t.Index = root.Index;
            if (root.Storage == TensorStorage.Arena) t.Offset = offsets.GetValueOrDefault(root.Id);
            if (root.Storage == TensorStorage.Weight && t.Id != root.Id) t.Data = root.Data;
        }
    }
}
