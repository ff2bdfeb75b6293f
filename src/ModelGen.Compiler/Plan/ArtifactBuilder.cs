using System.Buffers.Binary;
using System.Globalization;
using ModelGen.Artifact;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Operators;
using ModelGen.Onnx;

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

    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ModelArtifact, MemoryPlanReport> Reports = new();

    /// <summary>How the arena of an artifact this builder made compares with its tensors (null for one read from text).</summary>
    public static MemoryPlanReport? MemoryPlanOf(ModelArtifact artifact) => Reports.TryGetValue(artifact, out var r) ? r : null;

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
            _artifact.Tensors[id].IsInt64 = _graph[_graph.Inputs[i]].Type == ElementType.Int64;
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
            _artifact.Tensors[id].IsInt64 = source.Type == ElementType.Int64;
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
                AddNode("Copy", "Identity", name, [Tensor(name)], [outputIds[j]]);
        }
        PlanArena();
    }

    void LowerNode(Node node)
    {
        switch (node.OpType)
        {
            case "Flatten":
                Alias(node);
                return;
            case "Conv":
            {
                var x = _graph[node.Inputs[0]].Shape!;
                var w = _graph[node.Inputs[1]].Shape!;
                var geo = ConvOperator.Geometry(node, x, w);
                int group = (int)node.Int("group", 1);
                var y = _graph[node.Outputs[0]].Shape!;
                if (Compress.Int8Quantization.OfConv(node) is { } int8)
                {
                    LowerConvInt8(node, int8, geo, group, x, y);
                    return;
                }
                // A GEMM (weights [M, K] times the input's patches [K, N]) wherever there is SIMD, but for
                // depthwise convolutions with unit stride, which the direct kernel does row by row. The
                // patches need a scratch matrix unless the convolution is 1x1 with unit stride and no pads
                // (then the input already is that matrix).
                // Undilated depthwise convolutions with a horizontal stride of 1 or 2 read the input in place
                // (DepthwiseRowsEmitter); other depthwise convolutions work on a padded copy of each plane.
                // Several filters per input channel (a first layer on one channel) take the strips too when
                // their weights stay float32 and have at most 9 taps: with 5x5, 25 weight vectors no longer
                // fit the registers (LeNet-5's conv1 took 8.6 µs so, against 5.9 µs as a GEMM).
                bool depthwiseRows = x.Length == 4 && geo.DilationH == 1 && geo.DilationW == 1 && geo.StrideW is 1 or 2;
                // The depthwise kernels unroll their taps: a kernel of more than 64 takes the GEMM, whose code
                // does not grow with the kernel.
                bool depthwise = w[1] == 1 && (group > 1 && w[0] == group && geo.KernelH * geo.KernelW <= 64
                    || depthwiseRows && geo.KernelH * geo.KernelW <= 9 && Compress.WeightQuantization.Of(node) is null);
                bool gemm = _artifact.Simd != SimdLevel.None && !depthwise;
                var outputs = new List<int> { Tensor(node.Outputs[0]) };
                bool pointwise = geo.KernelH == 1 && geo.KernelW == 1 && geo.StrideH == 1 && geo.StrideW == 1 && geo.PadTop == 0 && geo.PadLeft == 0 && geo.PadBottom == 0 && geo.PadRight == 0;
                if (gemm && !pointwise)
                {
                    // The patches of one band of output rows (all of them unless ConvBands splits a large stem).
                    int patchRows = w[1] * w.Skip(2).Aggregate(1, (a, b) => a * b);
                    int columns = y.Length == 4 ? ConvBands.Rows(patchRows, y[2], y[3]) * y[3] : y.Skip(2).Aggregate(1, (a, b) => a * b);
                    outputs.Add(((ILowering)this).Temporary(node.Name + ".patches", [patchRows, columns]));
                }
                if (depthwise && !depthwiseRows && _artifact.Simd != SimdLevel.None && DepthwisePlane(geo, x, y) is var (rows, width, wide))
                {
                    // A zero-padded copy of one input plane and a wide output plane: every tap is then one
                    // run of memory over the whole plane (see DepthwiseConvEmitter).
                    outputs.Add(((ILowering)this).Temporary(node.Name + ".padded", [rows, width]));
                    outputs.Add(((ILowering)this).Temporary(node.Name + ".wide", [wide]));
                }
                var q8 = gemm ? Compress.WeightQuantization.Of(node) : null;
                // The float weights are not embedded when the int8 ones are.
                int[] convInputs = q8 is null ? Inputs(node) : [Tensor(node.Inputs[0]), -1, .. node.Inputs.Skip(2).Where(i => i.Length > 0).Select(Tensor)];
                if (q8 is not null)
                {
                    // int8 weights [M, K] and a scale per output channel, widened into scratch [M, K] each call.
                    int wq = NewTensor(node.Inputs[1], [q8.N, q8.K]);
                    _artifact.Tensors[wq].Storage = TensorStorage.Weight;
                    _artifact.Tensors[wq].IsInt8 = true;
                    _artifact.Tensors[wq].Data = (byte[])(Array)q8.Q.Clone();
                    int scales = ((ILowering)this).Weight(node.Inputs[1] + ".scales", new TensorData([q8.N], q8.Scales));
                    convInputs = [convInputs[0], wq, scales, .. convInputs.Skip(2)];
                    outputs.Add(((ILowering)this).Temporary(node.Name + ".weights", [q8.N, q8.K]));
                }
                var n = AddNode("Conv", "Conv", node.Name, convInputs, [.. outputs]);
                Window(n, geo);
                n.Attributes["group"] = Int(group);
                if (convInputs.Length > 1 && _artifact.Tensors[convInputs[1]].IsInt8) n.Attributes["weights"] = "int8";
                if (gemm) n.Attributes["method"] = "gemm";
                else if (depthwise) n.Attributes["method"] = "depthwise";
                Activation(n, node);
                return;
            }
            case "MaxPool" when _graph[node.Inputs[0]].Shape!.Length == 5:
                OperatorSet.Get(node, _graph).Lower(node, this);
                return;
            case "MaxPool":
            {
                var geo = MaxPoolOperator.Geometry(_graph, node, _graph[node.Inputs[0]].Shape!);
                int input = Tensor(node.Inputs[0]);
                if (_artifact.Tensors[input].IsUInt8 && Compress.Int8Quantization.IsBytePool(_graph, node))
                {
                    // Between int8 layers (Int8Quantization.OutputOf): uint8 in, uint8 out, the same quantization.
                    int output = Tensor(node.Outputs[0]);
                    _artifact.Tensors[output].IsUInt8 = true;
                    Window(AddNode("MaxPoolU8", "MaxPool", node.Name, [input], [output]), geo);
                    return;
                }
                Window(AddNode("MaxPool", "MaxPool", node.Name, Inputs(node), [Tensor(node.Outputs[0])]), geo);
                return;
            }
            case DenseOperator.Name:
            {
                // One row of x (batch 1): W stays [N, K], each output one contiguous dot product. Several
                // rows: W re-packed [K, N], so the GEMM reads a contiguous row of N outputs per k.
                var weight = _graph[node.Inputs[1]].Constant ?? throw new InvalidOperationException("Dense without constant weights");
                int outN = weight.Shape[0], inK = weight.Shape[1];
                bool oneRow = TensorData.Size(_graph[node.Outputs[0]].Shape!) == outN && node.Int("transA", 0) == 0;
                int packedWeight;
                if (oneRow && Compress.Int8Quantization.Of(node) is { } int8)
                {
                    // int8 arithmetic: weights int8 [N, K], row sums and multipliers per output (float32 holds both exactly / as used).
                    int q8 = NewTensor(node.Inputs[1], [int8.N, int8.K]);
                    _artifact.Tensors[q8].Storage = TensorStorage.Weight;
                    _artifact.Tensors[q8].IsInt8 = true;
                    _artifact.Tensors[q8].Data = (byte[])(Array)int8.Q.Clone();
                    int bias8 = AccumulatorBiasWeight(node.Name + ".bias_int", int8.Bias(BiasOf(node)), out int biasShift);
                    int multipliers = MultiplierWeight(node.Inputs[1] + ".multipliers", int8.Multipliers, int8.MultiplierRatios);
                    // Scratch for the quantized input, unless the layer before wrote it as uint8 already.
                    bool byteInput = _artifact.Tensors[Tensor(node.Inputs[0])].IsUInt8;
                    int quantizedInput = ((ILowering)this).Temporary(node.Name + ".xq", [byteInput ? 1 : (int8.K + 3) / 4]);
                    var denseQ = AddNode("DenseInt8", node.Str("onnx_op", "Gemm"), node.Name, [Tensor(node.Inputs[0]), q8, bias8, multipliers], [Tensor(node.Outputs[0]), quantizedInput]);
                    denseQ.Attributes["scale"] = int8.Input.Scale.ToString("R", CultureInfo.InvariantCulture);
                    denseQ.Attributes["zero"] = Int(int8.Input.ZeroPoint);
                    LayerMultiplier(denseQ, int8.MultiplierRatios, int8.LayerMultiplier, biasShift);
                    if (Compress.Int8Quantization.OutputOf(node) is { } requant) Requantize(denseQ, requant);
                    else Activation(denseQ, node);
                    return;
                }
                // (After the int8 case, which folds the float bias into an integer: a bias tensor made before would be embedded unused.)
                int[] biasInput = [.. node.Inputs.Skip(2).Where(i => i.Length > 0).Select(Tensor)];
                if (oneRow && Compress.Int4Quantization.Of(node) is { } int4)
                {
                    // int4 weights packed two per byte [N, K'/2] and a float32 scale per output.
                    int packed4 = NewTensor(node.Inputs[1], [int4.N, int4.PaddedK / 2]);
                    _artifact.Tensors[packed4].Storage = TensorStorage.Weight;
                    _artifact.Tensors[packed4].IsUInt8 = true;
                    _artifact.Tensors[packed4].Data = (byte[])int4.Packed.Clone();
                    int scales4 = ((ILowering)this).Weight(node.Inputs[1] + ".scales", new TensorData([int4.N], int4.Scales));
                    var dense4 = AddNode("Dense", node.Str("onnx_op", "Gemm"), node.Name, [Tensor(node.Inputs[0]), packed4, scales4, .. biasInput], [Tensor(node.Outputs[0])]);
                    dense4.Attributes["transA"] = "0";
                    dense4.Attributes["layout"] = "nk4";
                    dense4.Attributes["k"] = Int(int4.K);
                    Activation(dense4, node);
                    return;
                }
                if (oneRow && Compress.WeightQuantization.Of(node) is { } quantized)
                {
                    // int8 weights [N, K] and a float32 scale per output: y[j] = scale[j]·Σk q[j, k]·x[k] + b[j].
                    int q = NewTensor(node.Inputs[1], [quantized.N, quantized.K]);
                    _artifact.Tensors[q].Storage = TensorStorage.Weight;
                    _artifact.Tensors[q].IsInt8 = true;
                    _artifact.Tensors[q].Data = (byte[])(Array)quantized.Q.Clone();
                    int scales = ((ILowering)this).Weight(node.Inputs[1] + ".scales", new TensorData([quantized.N], quantized.Scales));
                    var dense8 = AddNode("Dense", node.Str("onnx_op", "Gemm"), node.Name, [Tensor(node.Inputs[0]), q, scales, .. biasInput], [Tensor(node.Outputs[0])]);
                    dense8.Attributes["transA"] = "0";
                    dense8.Attributes["layout"] = "nk8";
                    Activation(dense8, node);
                    return;
                }
                if (oneRow) packedWeight = ((ILowering)this).Weight(node.Inputs[1] + ".panels4", new TensorData(PanelShape(outN, inK), Panels4(weight.Floats, outN, inK)));
                else
                {
                    // N padded with zero columns to a multiple of 16 (with a bias of N, padded too), so the
                    // last columns are one more vector tile rather than scalar code.
                    var bias = node.Inputs.Count > 2 && node.Inputs[2].Length > 0 ? _graph[node.Inputs[2]].Constant : null;
                    bool pad = outN % 16 != 0 && (bias is null || bias.Count == outN);
                    int padN = pad ? (outN + 15) / 16 * 16 : outN;
                    var packed = new float[(long)inK * padN];
                    for (int j = 0; j < outN; j++)
                        for (int p = 0; p < inK; p++) packed[(long)p * padN + j] = weight.Floats[(long)j * inK + p];
                    packedWeight = ((ILowering)this).Weight(node.Inputs[1] + ".kn", new TensorData([inK, padN], packed));
                    if (pad && bias is not null)
                    {
                        var padded = new float[padN];
                        Array.Copy(bias.Floats, padded, outN);
                        biasInput = [((ILowering)this).Weight(node.Inputs[2] + ".padded", new TensorData([padN], padded))];
                    }
                }
                int[] inputs = [Tensor(node.Inputs[0]), packedWeight, .. biasInput];
                var n = AddNode("Dense", node.Str("onnx_op", "Gemm"), node.Name, inputs, [Tensor(node.Outputs[0])]);
                n.Attributes["transA"] = Int(node.Int("transA", 0));
                n.Attributes["layout"] = oneRow ? "panels4" : "kn";
                if (oneRow) { n.Attributes["n"] = Int(outN); n.Attributes["k"] = Int(inK); }
                Activation(n, node);
                return;
            }
            case "MatMul":
                AddNode("MatMul", "MatMul", node.Name, Inputs(node), [Tensor(node.Outputs[0])]);
                return;
            case "Add" when Compress.Int8Quantization.ByteAddOf(node) is { } add:
            {
                // Between int8 layers (Int8Quantization.ByteAddOf): uint8 in, uint8 out, integers only.
                int a = Tensor(node.Inputs[0]), b = Tensor(node.Inputs[1]), y = Tensor(node.Outputs[0]);
                if (!_artifact.Tensors[a].IsUInt8 || !_artifact.Tensors[b].IsUInt8)
                    throw new InvalidOperationException($"Add '{node.Name}': a uint8 Add's inputs must be uint8 (the layers before requantize for it)");
                _artifact.Tensors[y].IsUInt8 = true;
                var n = AddNode("AddU8", "Add", node.Name, [a, b], [y]);
                n.Attributes["a_zero"] = Int(add.A.ZeroPoint);
                n.Attributes["b_zero"] = Int(add.B.ZeroPoint);
                n.Attributes["out_zero"] = Int(add.Output.ZeroPoint);
                n.Attributes["out_scale"] = add.Output.Scale.ToString("R", CultureInfo.InvariantCulture);
                n.Attributes["multipliers"] = $"{Int(add.MultiplierA)},{Int(add.MultiplierB)}";
                n.Attributes["shift"] = Int(add.Shift);
                n.Attributes["clamp"] = $"{Int(add.Lo)},{Int(add.Hi)}";
                return;
            }
            case "Add" or "Sub" or "Mul" or "Div" or "Pow" or "PRelu" or "Max" or "Min":
            {
                var n = AddNode("Binary", node.OpType, node.Name, Inputs(node), [Tensor(node.Outputs[0])]);
                n.Attributes["op"] = node.OpType;
                if (node.Annotations.TryGetValue("bshape", out var bshape)) n.Attributes["bshape"] = bshape;
                Activation(n, node);
                return;
            }
            case "Clip" when !node.Annotations.ContainsKey("function"):
            {
                var n = AddNode("ClipRuntime", "Clip", node.Name, [.. node.Inputs.Where(i => i.Length > 0).Select(Tensor)], [Tensor(node.Outputs[0])]);
                n.Attributes["bounds"] = (node.HasInput(1) ? "min" : "") + (node.HasInput(2) ? "max" : "");
                return;
            }
            case var op when Activations.Names.Contains(op):
            {
                var n = AddNode("Unary", op, node.Name, [Tensor(node.Inputs[0])], [Tensor(node.Outputs[0])]);
                n.Attributes["function"] = node.Annotations["function"];
                return;
            }
            default:
                OperatorSet.Get(node, _graph).Lower(node, this);
                return;
        }
    }

    void Alias(Node node) => ((ILowering)this).Alias(node.Inputs[0], node.Outputs[0], node);

    void ILowering.Alias(string input, string output, Node node)
    {
        int x = Tensor(input);
        int y = Tensor(output);
        var (rx, ry) = (Find(x), Find(y));
        var (sx, sy) = (_artifact.Tensors[rx], _artifact.Tensors[ry]);
        // uint8 activations between int8 layers (a Flatten between a pooling and a fully connected layer) stay bytes.
        if (_artifact.Tensors[x].IsUInt8) _artifact.Tensors[y].IsUInt8 = true;
        bool xFixed = sx.Storage != TensorStorage.Arena, yFixed = sy.Storage != TensorStorage.Arena;
        if (xFixed && yFixed)
        {
            // Two caller spans (input → output, output → output) are different memory: copy.
            AddNode("Copy", node.OpType, node.Name, [x], [y]);
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

    int[] Inputs(Node node) => [.. node.Inputs.Where(i => i.Length > 0).Select(Tensor)];

    Graph ILowering.Graph => _graph;

    bool ILowering.IsUInt8(int tensor) => _artifact.Tensors[tensor].IsUInt8;

    void ILowering.MarkUInt8(int tensor) => _artifact.Tensors[tensor].IsUInt8 = true;

    int ILowering.Temporary(string name, int[] shape) => NewTensor(name, shape);

    int ILowering.Weight(string name, TensorData data)
    {
        int id = NewTensor(name, data.Shape);
        SetWeight(_artifact.Tensors[id], data);
        return id;
    }

    static void SetWeight(ArtifactTensor t, TensorData c)
    {
        t.Storage = TensorStorage.Weight;
        if (c.Type == ElementType.Int64)
        {
            // An integer constant only ever reaches a kernel as a graph output (a folded Shape, say).
            t.IsInt64 = true;
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

    public ArtifactNode AddNode(string kernel, string onnxOp, string name, int[] inputs, int[] outputs)
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

    /// <summary>
    /// Conv in int8 arithmetic (see ConvInt8Kernel): int8 weights [M, C/group·kH·kW'] (kernel rows padded to
    /// kW' = a multiple of 4), row sums and multipliers per output channel; scratch for the input quantized
    /// into a plane with zero-point borders, and for the uint8 patch matrix of one group.
    /// </summary>
    void LowerConvInt8(Node node, Compress.Int8Conv int8, WindowGeometry geo, int group, int[] x, int[] y)
    {
        int q8 = NewTensor(node.Inputs[1], [int8.M, int8.RowLength]);
        _artifact.Tensors[q8].Storage = TensorStorage.Weight;
        _artifact.Tensors[q8].IsInt8 = true;
        _artifact.Tensors[q8].Data = (byte[])(Array)int8.Q.Clone();
        int bias = AccumulatorBiasWeight(node.Name + ".bias_int", int8.Bias(BiasOf(node)), out int biasShift);
        int multipliers = MultiplierWeight(node.Inputs[1] + ".multipliers", int8.Multipliers, int8.MultiplierRatios);
        if (int8.Depthwise)
        {
            int[] scratch;
            string? planeShape = null;
            if (geo.DilationH == 1 && geo.DilationW == 1)
            {
                // The weights as float32 (converted once a call), then one channel at a time the float32 depthwise
                // kernel's strips (see DepthwiseInt8Kernel): over a uint8 input as it is, each load widened; over a
                // float32 input, its plane quantized (uint8 values less the zero point, held as float32) after the weights.
                // Over a uint8 input, machines with AVX-VNNI take the padded plane and its quads instead (DepthwiseQuadLayout),
                // in the same scratch.
                bool byteInput = _artifact.Tensors[Tensor(node.Inputs[0])].IsUInt8;
                long floats = int8.M * geo.KernelH * geo.KernelW + (byteInput ? 0 : x[2] * x[3]);
                if (byteInput && DepthwiseQuadLayout.For(geo.InH, geo.InW, geo.OutH, geo.OutW, geo.KernelH, geo.KernelW, geo.StrideH, geo.StrideW,
                        geo.PadTop, geo.PadLeft, geo.PadBottom, geo.PadRight, geo.DilationH, geo.DilationW) is { } quads)
                    floats = Math.Max(floats, (quads.ScratchBytes + 3) / 4);
                scratch = [((ILowering)this).Temporary(node.Name + ".quantized", [checked((int)floats)])];
            }
            else
            {
                // Dilated: one channel at a time, its plane quantized (uint8 values held as float32) with the zero
                // point in the padding, the taps summed over a wide plane. The raw plane (zeros in the padding,
                // which quantize to the zero point) and the quantized one, rounded to whole vectors so the plane
                // quantizes in one flat run; a uint8 input, as the int8 layer before wrote it, goes straight into
                // the quantized plane (no raw one).
                var dw = DepthwisePlane(geo, x, y) ?? throw new InvalidOperationException($"'{node.Name}': no depthwise plane");
                int planeLength = (dw.Rows * dw.Width + 15) / 16 * 16;
                bool byteInput = _artifact.Tensors[Tensor(node.Inputs[0])].IsUInt8;
                scratch = [((ILowering)this).Temporary(node.Name + ".plane", [byteInput ? 1 : planeLength]),
                    ((ILowering)this).Temporary(node.Name + ".wide", [dw.Wide]), ((ILowering)this).Temporary(node.Name + ".quantized", [planeLength])];
                planeShape = $"{dw.Rows},{dw.Width}";
            }
            var d = AddNode("DepthwiseInt8", "Conv", node.Name, [Tensor(node.Inputs[0]), q8, bias, multipliers], [Tensor(node.Outputs[0]), .. scratch]);
            if (planeShape is not null) d.Attributes["plane"] = planeShape;
            Window(d, geo);
            d.Attributes["scale"] = int8.Input.Scale.ToString("R", CultureInfo.InvariantCulture);
            d.Attributes["zero"] = Int(int8.Input.ZeroPoint);
            LayerMultiplier(d, int8.MultiplierRatios, int8.LayerMultiplier, biasShift);
            if (Compress.Int8Quantization.OutputOf(node) is { } dwRequant) Requantize(d, dwRequant);
            else Activation(d, node);
            return;
        }
        // The padded plane, slack for the last 16-byte loads, and with pads a flat copy of the quantized image;
        // none for a pointwise convolution (1x1, stride 1, no pads), whose input quantizes straight into its patches.
        bool pointwise = int8.ChannelPacked && geo.StrideH == 1 && geo.StrideW == 1 && !geo.HasPadding;
        long planeBytes = pointwise ? 4 : (long)x[1] * (geo.InH + geo.PadTop + geo.PadBottom) * (geo.InW + geo.PadLeft + geo.PadRight) + int8.PaddedKernelW + 16
            + (geo.HasPadding ? (long)x[1] * geo.InH * geo.InW : 0);
        long patchBytes = (long)int8.RowLength * ((geo.OutH * geo.OutW + 7) / 8 * 8);
        int plane = ((ILowering)this).Temporary(node.Name + ".quantized", [checked((int)((planeBytes + 3) / 4))]);
        int patches = ((ILowering)this).Temporary(node.Name + ".patches", [checked((int)((patchBytes + 3) / 4))]);
        var n = AddNode("ConvInt8", "Conv", node.Name, [Tensor(node.Inputs[0]), q8, bias, multipliers], [Tensor(node.Outputs[0]), plane, patches]);
        Window(n, geo);
        n.Attributes["group"] = Int(group);
        n.Attributes["scale"] = int8.Input.Scale.ToString("R", CultureInfo.InvariantCulture);
        n.Attributes["zero"] = Int(int8.Input.ZeroPoint);
        LayerMultiplier(n, int8.MultiplierRatios, int8.LayerMultiplier, biasShift);
        if (Compress.Int8Quantization.OutputOf(node) is { } requant) Requantize(n, requant);
        else Activation(n, node);
    }

    /// <summary>
    /// An int8 layer's per-channel multipliers: float16 ratios of the layer-wide multiplier (attribute
    /// "multiplier"; the kernel forms (float)ratio·multiplier, the evaluator's float) or, without ratios, float32.
    /// </summary>
    int MultiplierWeight(string name, float[] multipliers, Half[]? ratios)
    {
        if (ratios is null) return ((ILowering)this).Weight(name, new TensorData([multipliers.Length], multipliers));
        while (_graph.Values.ContainsKey(name) || _artifact.Tensors.Any(t => t.Name == name)) name += "_";
        int id = NewTensor(name, [ratios.Length]);
        _artifact.Tensors[id].Storage = TensorStorage.Weight;
        _artifact.Tensors[id].IsFloat16 = true;
        var data = new byte[ratios.Length * 2];
        for (int i = 0; i < ratios.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(i * 2), ratios[i]);
        _artifact.Tensors[id].Data = data;
        return id;
    }

    /// <summary>
    /// The layer writes uint8 (its output tensor's type) for the int8 layers reading it: attributes of the
    /// fixed-point requantization (Compress.Requantization), whose clamp is the fused activation.
    /// </summary>
    void Requantize(ArtifactNode n, Compress.Requantization r)
    {
        _artifact.Tensors[n.Outputs[0]].IsUInt8 = true;
        n.Attributes["out_zero"] = Int(r.Output.ZeroPoint);
        n.Attributes["out_scale"] = r.Output.Scale.ToString("R", CultureInfo.InvariantCulture);
        // A fifth part, "narrow", says every sum·M + rounding fits int32 (Requantization.Narrow): one 32-bit multiply.
        n.Attributes["requant"] = $"{Int(r.Shift)},{r.Scale.ToString("R", CultureInfo.InvariantCulture)},{Int(r.Lo)},{Int(r.Hi)}{(r.Narrow ? ",narrow" : "")}";
    }

    static void LayerMultiplier(ArtifactNode n, Half[]? ratios, float layer, int biasShift)
    {
        if (ratios is not null) n.Attributes["multiplier"] = layer.ToString("R", CultureInfo.InvariantCulture);
        if (biasShift != 0) n.Attributes["bias_shift"] = Int(biasShift);
    }

    /// <summary>The float bias of an int8 layer (a constant, or none), which it folds into an integer.</summary>
    float[]? BiasOf(Node node) => node.HasInput(2) ? _graph[node.Inputs[2]].Constant!.Floats : null;

    /// <summary>
    /// The biases of an int8 layer in accumulator units, little-endian: int16 when they fit with a small shift
    /// (each folded bias a multiple of 2^shift, AccumulatorBias.Fold), stored shifted right, with the node's
    /// "bias_shift" attribute saying by how much the kernel shifts it back; int32 otherwise, as they are.
    /// </summary>
    int AccumulatorBiasWeight(string name, int[] values, out int shift)
    {
        bool narrow = Compress.AccumulatorBias.Narrow(values);
        shift = narrow ? Compress.AccumulatorBias.Shift(values) : 0;
        while (_graph.Values.ContainsKey(name) || _artifact.Tensors.Any(t => t.Name == name)) name += "_";
        int id = NewTensor(name, [values.Length]);
        var t = _artifact.Tensors[id];
        t.Storage = TensorStorage.Weight;
        t.IsInt16 = narrow;
        t.IsInt32 = !narrow;
        var data = new byte[values.Length * (narrow ? 2 : 4)];
        for (int i = 0; i < values.Length; i++)
            if (narrow) System.Buffers.Binary.BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(i * 2), checked((short)(values[i] >> shift)));
            else System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(i * 4), values[i]);
        t.Data = data;
        return id;
    }

    static void Window(ArtifactNode n, WindowGeometry g)
    {
        n.Attributes["kernel"] = $"{g.KernelH},{g.KernelW}";
        n.Attributes["strides"] = $"{g.StrideH},{g.StrideW}";
        n.Attributes["dilations"] = $"{g.DilationH},{g.DilationW}";
        n.Attributes["pads"] = $"{g.PadTop},{g.PadLeft},{g.PadBottom},{g.PadRight}";
    }

    static void Activation(ArtifactNode n, Node node)
    {
        if (node.Annotations.TryGetValue("activation", out var act)) n.Attributes["activation"] = act;
    }

    static string Int(long v) => v.ToString(CultureInfo.InvariantCulture);

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
        Reports.AddOrUpdate(_artifact, new MemoryPlanReport(arena, requests.Sum(r => MemoryPlanner.Align(r.Bytes)), MemoryPlanner.LowerBound(requests)));
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
