using Google.Protobuf;
using ModelGen.Artifact;
using ModelGen.Compiler.Operators;
using ModelGen.Onnx.Proto;

namespace ModelGen.Compiler.Normalize;

/// <summary>
/// Rewrites that keep the model's meaning and make it cheaper to run: Gemm and MatMul with constant
/// weights (plus a following bias Add) become Dense nodes with pre-transposed weights, and Relu is
/// fused into the node that produces its input.
/// </summary>
public static class Passes
{
    public static void Run(Graph graph)
    {
        SplitVariadic(graph);
        GemmToDense(graph);
        MatMulAddToDense(graph);
        FoldBatchNormalization(graph);
        FoldChannelConstants(graph);
        FoldPadIntoConv(graph);
        WholeWindowAveragePools(graph);
        FuseActivations(graph);
    }

    /// <summary>
    /// An AveragePool whose one window is its whole input (kernel = the spatial dims, no pads, no dilation; TensorFlow
    /// exports MobileNetV2's last pooling so) → GlobalAveragePool: the same means, by the global kernel, which between
    /// int8 layers averages the uint8 activations as they are.
    /// </summary>
    public static void WholeWindowAveragePools(Graph graph)
    {
        foreach (var node in graph.Nodes.Where(n => n.OpType == "AveragePool"))
        {
            if (graph[node.Inputs[0]].Shape is not { Length: >= 3 } x || node.Ints("kernel_shape") is not { } kernel || !kernel.SequenceEqual(x.Skip(2).Select(v => (long)v))) continue;
            if (node.Ints("pads") is { } pads && pads.Any(p => p != 0) || node.Ints("dilations") is { } d && d.Any(v => v != 1)) continue;
            if (node.Str("auto_pad", "NOTSET") is not ("NOTSET" or "VALID")) continue;
            node.OpType = "GlobalAveragePool";
            node.Attributes.Clear();
        }
    }

    /// <summary>
    /// Pad (constant zeros, on the two spatial axes of a 4-D tensor) read only as the input of 2-D Convs with
    /// explicit pads → those Convs' pads grow by the Pad's, and the Pad goes: a padded copy of the whole
    /// tensor is no longer made (TensorFlow exports one before each stride-2 convolution with "same"
    /// padding; in MobileNetV2 the first cost a quarter of the run).
    /// </summary>
    public static void FoldPadIntoConv(Graph graph)
    {
        var index = new GraphIndex(graph);
        foreach (var pad in graph.Nodes.Where(n => n.OpType == "Pad").ToList())
        {
            if (pad.Str("mode", "constant") != "constant" || graph[pad.Inputs[0]].Shape is not { Length: 4 }) continue;
            long[]? pads;
            if (graph.Opset < 11)
            {
                pads = pad.Ints("pads");
                if (pad.Float("value", 0f) != 0f) continue;
            }
            else
            {
                if (pad.HasInput(3) || !pad.HasInput(1) || graph[pad.Inputs[1]].Constant is not { Type: ElementType.Int64 } p) continue;
                pads = p.Ints;
                if (pad.HasInput(2))
                {
                    var value = graph[pad.Inputs[2]].Constant;
                    if (value is null || (value.Type == ElementType.Float32 ? value.Floats[0] != 0f : value.Ints[0] != 0)) continue;
                }
            }
            // [N, C, H, W] begins then ends: nothing on N and C, nothing negative (a crop).
            if (pads is not { Length: 8 } || pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0 || pads.Any(v => v < 0)) continue;
            string output = pad.Outputs[0];
            var readers = index.Consumers(output).ToList();
            if (readers.Count == 0 || index.Uses(output) != readers.Count) continue;
            if (!readers.All(c => c.OpType == "Conv" && c.Inputs[0] == output && c.Inputs.Skip(1).All(i => i != output)
                && c.Str("auto_pad", "NOTSET") == "NOTSET" && graph[c.Inputs[1]].Shape is { Length: 4 })) continue;
            foreach (var conv in readers)
            {
                long[] old = conv.Ints("pads") ?? new long[4];
                long[] grown = [old[0] + pads[2], old[1] + pads[3], old[2] + pads[6], old[3] + pads[7]];
                var attribute = new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints };
                attribute.Ints.AddRange(grown);
                conv.Attributes["pads"] = attribute;
                conv.Inputs[0] = pad.Inputs[0];
            }
            index.Remove(pad);
        }
        index.Commit();
    }

    /// <summary>Gemm(A, B const, C const) → Dense(A, alpha·B' as [N,K], beta·C).</summary>
    public static void GemmToDense(Graph graph)
    {
        foreach (var node in graph.Nodes.Where(n => n.OpType == "Gemm").ToList())
        {
            var b = graph[node.Inputs[1]].Constant;
            var c = node.HasInput(2) ? graph[node.Inputs[2]].Constant : null;
            if (b is null || (node.HasInput(2) && c is null)) continue;
            bool tb = node.Int("transB", 0) != 0;
            float alpha = node.Float("alpha", 1f), beta = node.Float("beta", 1f);
            int n = tb ? b.Shape[0] : b.Shape[1], k = tb ? b.Shape[1] : b.Shape[0];
            var w = new float[(long)n * k];
            for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++)
                w[(long)j * k + p] = alpha * (tb ? b.Floats[(long)j * k + p] : b.Floats[(long)p * n + j]);
            TensorData? bias = null;
            if (c is not null)
            {
                var outShape = graph[node.Outputs[0]].Shape!;
                int m = outShape[0];
                // A C that varies only along N becomes a bias vector; one that varies along M stays [M, N].
                bool perColumn = c.Shape.Length == 0 || c.Shape[0] == 1 || c.Shape.Length == 1;
                int[] shape = perColumn ? [n] : [m, n];
                var cs = Broadcast.Strides(c.Shape, perColumn ? [1, n] : [m, n]);
                var values = new float[TensorData.Size(shape)];
                for (int i = 0; i < values.Length; i++)
                    values[i] = beta * c.Floats[Broadcast.Offset(i, perColumn ? [1, n] : [m, n], cs)];
                bias = new TensorData(shape, values);
            }
            ReplaceWithDense(graph, node, node.Inputs[0], new TensorData([n, k], w), bias, node.Outputs[0], node.Int("transA", 0) != 0);
        }
    }

    /// <summary>MatMul(X, W const [K,N]) [→ Add(·, b const broadcasting along N)] → Dense.</summary>
    public static void MatMulAddToDense(Graph graph)
    {
        var index = new GraphIndex(graph);
        foreach (var node in graph.Nodes.Where(n => n.OpType == "MatMul").ToList())
        {
            var wConst = graph[node.Inputs[1]].Constant;
            if (wConst is null || wConst.Shape.Length != 2 || graph[node.Inputs[0]].Shape!.Length < 1) continue;
            int k = wConst.Shape[0], n = wConst.Shape[1];
            var w = new float[(long)n * k];
            for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++)
                w[(long)j * k + p] = wConst.Floats[(long)p * n + j];
            string output = node.Outputs[0];
            TensorData? bias = null;
            var add = index.Consumers(output).FirstOrDefault(a => a.OpType == "Add");
            if (add is not null && index.Uses(output) == 1)
            {
                string other = add.Inputs[0] == output ? add.Inputs[1] : add.Inputs[0];
                var b = graph[other].Constant;
                var outShape = graph[output].Shape!;
                if (b is not null && b.Count == n && b.Shape.Length <= outShape.Length && b.Shape.Length >= 1 && b.Shape[^1] == n
                    && graph[add.Outputs[0]].Shape!.SequenceEqual(outShape))
                {
                    bias = new TensorData([n], b.Floats);
                    index.Remove(add);
                    output = add.Outputs[0];
                }
            }
            ReplaceWithDense(graph, node, node.Inputs[0], new TensorData([n, k], w), bias, output, transA: false);
        }
        index.Commit();
    }

    static void ReplaceWithDense(Graph graph, Node node, string input, TensorData weight, TensorData? bias, string output, bool transA)
    {
        // Rewritten in place: the node keeps its name and its place in the schedule.
        string onnxOp = node.OpType;
        node.OpType = DenseOperator.Name;
        node.Domain = DenseOperator.Domain;
        node.Inputs = [input, AddConstant(graph, node.Name + ".weight", weight)];
        node.Outputs = [output];
        if (bias is not null) node.Inputs.Add(AddConstant(graph, node.Name + ".bias", bias));
        node.Attributes.Clear();
        if (transA) node.Attributes["transA"] = new AttributeProto { Name = "transA", Type = AttributeProto.Types.AttributeType.Int, I = 1 };
        node.Attributes["onnx_op"] = new AttributeProto { Name = "onnx_op", Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(onnxOp) };
    }

    static string AddConstant(Graph graph, string baseName, TensorData data)
    {
        string name = baseName;
        for (int i = 2; graph.Values.ContainsKey(name); i++) name = baseName + "_" + i;
        var v = graph.GetOrAdd(name);
        v.Constant = data;
        v.Shape = data.Shape;
        return name;
    }

    /// <summary>
    /// f(Y) for an element-wise f (Relu, Clip, Sigmoid, …, or a Max, Min or Mul with a constant) where Y comes from
    /// Conv, Dense or a binary element-wise node and nothing else reads Y: f is computed in the producer as Y is
    /// written. Successive ones chain (an exporter's LeakyRelu then Max(·, c)), up to <see cref="MaxChain"/> steps.
    /// </summary>
    public static void FuseActivations(Graph graph)
    {
        var index = new GraphIndex(graph);
        foreach (var act in graph.Nodes.ToList())
        {
            if (Step(graph, act) is not var (input, step)) continue;
            var producer = index.Producer(input);
            if (producer is null) continue;
            if (producer.OpType is not ("Conv" or DenseOperator.Name or "BatchNormalization" or "Gemm") && !Activations.BinaryNames.Contains(producer.OpType)) continue;
            if (index.Uses(input) != 1) continue;
            string? chain = producer.Annotations.GetValueOrDefault("activation");
            if (chain is not null && chain.Split(Activations.ChainSeparator).Length >= MaxChain) continue;
            producer.Annotations["activation"] = Activations.Append(chain, step);
            index.Rewire(producer, act.Outputs[0]);
            index.Remove(act);
        }
        index.Commit();
    }

    /// <summary>Most steps fused into one kernel: past a few, the expression the kernel repeats per value grows long.</summary>
    public const int MaxChain = 4;

    /// <summary>
    /// The node as a step of a fused activation: its input and the step's text. A unary activation's function; a Max
    /// or Min with a one-value constant as a Clip with that bound; a Mul by one as a Scale. Null for anything else.
    /// </summary>
    static (string Input, string Step)? Step(Graph graph, Node node)
    {
        if (Activations.Names.Contains(node.OpType))
            return node.Annotations.TryGetValue("function", out var f) ? (node.Inputs[0], f) : null;
        if (node.OpType is not ("Max" or "Min" or "Mul") || node.Inputs.Count != 2) return null;
        int constant = graph[node.Inputs[1]].Constant is not null ? 1 : graph[node.Inputs[0]].Constant is not null ? 0 : -1;
        if (constant < 0) return null;
        var c = graph[node.Inputs[constant]].Constant!;
        string input = node.Inputs[1 - constant];
        // One value, and the output no larger than the input (a constant may not broadcast the input to more values).
        if (c.Type != ElementType.Float32 || c.Count != 1 || graph[input].Constant is not null
            || graph[input].Shape is not { } x || graph[node.Outputs[0]].Shape is not { } y || !x.SequenceEqual(y)) return null;
        float v = c.Floats[0];
        if (float.IsNaN(v)) return null;
        return node.OpType switch
        {
            "Max" => (input, Activations.Format("Clip", v, float.PositiveInfinity)),
            "Min" => (input, Activations.Format("Clip", float.NegativeInfinity, v)),
            _ => (input, Activations.Format("Scale", v, 0f)),
        };
    }

    /// <summary>
    /// Conv → Add, Sub or Mul with a constant that is one value per output channel (or one value), nothing else reading
    /// the Conv's output: the constant goes into the Conv's bias (Add, Sub) or its weights and bias (Mul), and the
    /// element-wise node goes. Exporters that keep the bias apart (CNTK's Convolution then Plus, a scale after the
    /// convolution) otherwise cost a pass over the whole output.
    /// </summary>
    public static void FoldChannelConstants(Graph graph)
    {
        var index = new GraphIndex(graph);
        foreach (var op in graph.Nodes.Where(n => n.OpType is "Add" or "Sub" or "Mul" && n.Inputs.Count == 2).ToList())
        {
            // The Conv's output first; for Add and Mul the constant may come first (Sub: y - c only).
            int side = graph[op.Inputs[0]].Constant is null ? 0 : op.OpType == "Sub" ? -1 : 1;
            if (side < 0) continue;
            string input = op.Inputs[side];
            var c = graph[op.Inputs[1 - side]].Constant;
            var producer = index.Producer(input);
            if (c is null || c.Type != ElementType.Float32 || producer is null || producer.OpType != "Conv" || producer.Annotations.ContainsKey("activation")) continue;
            if (index.Uses(input) != 1 || graph[input].Shape is not { Length: >= 3 } y || graph[op.Outputs[0]].Shape is not { } outShape || !outShape.SequenceEqual(y)) continue;
            var w = graph[producer.Inputs[1]].Constant;
            if (w is null || producer.HasInput(2) && graph[producer.Inputs[2]].Constant is null) continue;
            if (PerChannel(c, y) is not { } perChannel) continue;
            int channels = y[1];
            var oldBias = producer.HasInput(2) ? graph[producer.Inputs[2]].Constant : null;
            var bias = new float[channels];
            for (int m = 0; m < channels; m++) bias[m] = oldBias is null ? 0f : oldBias.Floats[m];
            if (op.OpType == "Mul")
            {
                long per = w.Count / channels;
                var scaled = new float[w.Floats.Length];
                for (long i = 0; i < scaled.LongLength; i++) scaled[i] = w.Floats[i] * perChannel[i / per];
                for (int m = 0; m < channels; m++) bias[m] *= perChannel[m];
                producer.Inputs[1] = AddConstant(graph, producer.Name + ".weight.scaled", new TensorData(w.Shape, scaled));
            }
            else
            {
                for (int m = 0; m < channels; m++) bias[m] = op.OpType == "Add" ? bias[m] + perChannel[m] : bias[m] - perChannel[m];
            }
            string biasName = AddConstant(graph, producer.Name + ".bias.folded", new TensorData([channels], bias));
            if (producer.Inputs.Count > 2) producer.Inputs[2] = biasName; else producer.Inputs.Add(biasName);
            index.Rewire(producer, op.Outputs[0]);
            index.Remove(op);
        }
        index.Commit();
    }

    /// <summary>The constant as one value per channel (axis 1) of <paramref name="y"/>, or null when it varies along another axis.</summary>
    static float[]? PerChannel(TensorData c, int[] y)
    {
        if (c.Shape.Length > y.Length) return null;
        // Right-aligned broadcasting: every axis of c but the channel axis has size 1.
        int channelAxis = c.Shape.Length - (y.Length - 1);
        for (int a = 0; a < c.Shape.Length; a++)
            if (c.Shape[a] != 1 && !(a == channelAxis && c.Shape[a] == y[1])) return null;
        var values = new float[y[1]];
        for (int m = 0; m < values.Length; m++) values[m] = c.Count == 1 ? c.Floats[0] : c.Floats[m];
        return values;
    }

    /// <summary>
    /// BatchNormalization right after a Conv or a 2-D Dense that nothing else reads: its per-channel
    /// a·x + b is folded into that node's weights and bias (w' = a·w, b' = a·b + shift).
    /// </summary>
    public static void FoldBatchNormalization(Graph graph)
    {
        var index = new GraphIndex(graph);
        foreach (var bn in graph.Nodes.Where(n => n.OpType == "BatchNormalization").ToList())
        {
            string input = bn.Inputs[0];
            var producer = index.Producer(input);
            if (producer is null || producer.Annotations.ContainsKey("activation")) continue;
            if (index.Uses(input) != 1) continue;
            bool conv = producer.OpType == "Conv";
            bool dense = producer.OpType == DenseOperator.Name && graph[input].Shape!.Length == 2
                && (!producer.HasInput(2) || graph[producer.Inputs[2]].Constant!.Shape.Length == 1);
            if (!conv && !dense) continue;
            var w = graph[producer.Inputs[1]].Constant;
            if (w is null || bn.Inputs.Skip(1).Take(4).Any(i => graph[i].Constant is null)) continue;
            if (producer.HasInput(2) && graph[producer.Inputs[2]].Constant is null) continue;
            var (a, shift) = BatchNormalizationOperator.Affine(bn, graph[bn.Inputs[1]].Constant!, graph[bn.Inputs[2]].Constant!, graph[bn.Inputs[3]].Constant!, graph[bn.Inputs[4]].Constant!);
            int channels = w.Shape[0];
            long per = w.Count / channels;
            var scaled = new float[w.Floats.Length];
            for (long i = 0; i < scaled.LongLength; i++) scaled[i] = w.Floats[i] * a[i / per];
            var bias = new float[channels];
            var oldBias = producer.HasInput(2) ? graph[producer.Inputs[2]].Constant : null;
            for (int c = 0; c < channels; c++) bias[c] = (oldBias is null ? 0f : oldBias.Floats[c]) * a[c] + shift[c];
            producer.Inputs[1] = AddConstant(graph, producer.Name + ".weight.bn", new TensorData(w.Shape, scaled));
            string biasName = AddConstant(graph, producer.Name + ".bias.bn", new TensorData([channels], bias));
            if (producer.Inputs.Count > 2) producer.Inputs[2] = biasName; else producer.Inputs.Add(biasName);
            index.Rewire(producer, bn.Outputs[0]);
            index.Remove(bn);
        }
        index.Commit();
    }

    /// <summary>Sum, Mean, Max, Min of N inputs → a chain of binary nodes (Mean: the sum times 1/N); of one input → Identity.</summary>
    public static void SplitVariadic(Graph graph)
    {
        var rewritten = new List<Node>(graph.Nodes.Count);
        foreach (var node in graph.Nodes)
        {
            if (node.OpType is not ("Sum" or "Mean" or "Max" or "Min"))
            {
                rewritten.Add(node);
                continue;
            }
            var inputs = node.Inputs.Where(i => i.Length > 0).ToList();
            string binary = node.OpType is "Sum" or "Mean" ? "Add" : node.OpType;
            var chain = new List<Node>();
            string acc = inputs[0];
            int[] shape = graph[acc].Shape!;
            for (int i = 1; i < inputs.Count; i++)
            {
                shape = Broadcast.Shape(shape, graph[inputs[i]].Shape!)!;
                bool last = i == inputs.Count - 1 && node.OpType != "Mean";
                string output = last ? node.Outputs[0] : NewValue(graph, $"{node.Name}/{binary}_{i}", shape);
                chain.Add(new Node { Name = $"{node.Name}/{binary}_{i}", OpType = binary, Inputs = [acc, inputs[i]], Outputs = [output] });
                acc = output;
            }
            if (node.OpType == "Mean" && inputs.Count > 1)
            {
                string scale = AddConstant(graph, node.Name + ".scale", new TensorData([], [1f / inputs.Count]));
                chain.Add(new Node { Name = node.Name + "/Mul", OpType = "Mul", Inputs = [acc, scale], Outputs = [node.Outputs[0]] });
            }
            if (inputs.Count == 1)
                chain.Add(new Node { Name = node.Name, OpType = "Identity", Inputs = [acc], Outputs = [node.Outputs[0]] });
            rewritten.AddRange(chain);
        }
        graph.Nodes = rewritten;
    }

    static string NewValue(Graph graph, string baseName, int[] shape)
    {
        string name = baseName;
        for (int i = 2; graph.Values.ContainsKey(name); i++) name = baseName + "_" + i;
        graph.GetOrAdd(name).Shape = shape;
        return name;
    }
}

/// <summary>
/// Who produces and who reads each value, built once per pass so that passes stay linear in the size
/// of the graph (a hostile model may have very many nodes). Removals are applied by <see cref="Commit"/>.
/// </summary>
internal sealed class GraphIndex
{
    readonly Graph _graph;
    readonly Dictionary<string, Node> _producers = new(StringComparer.Ordinal);
    readonly Dictionary<string, List<Node>> _consumers = new(StringComparer.Ordinal);
    readonly HashSet<string> _outputs;
    readonly HashSet<Node> _removed = [];

    public GraphIndex(Graph graph)
    {
        _graph = graph;
        _outputs = new HashSet<string>(graph.Outputs, StringComparer.Ordinal);
        foreach (var n in graph.Nodes)
        {
            foreach (var o in n.Outputs) if (o.Length > 0) _producers[o] = n;
            foreach (var i in n.Inputs.Where(i => i.Length > 0).Distinct())
            {
                if (!_consumers.TryGetValue(i, out var list)) _consumers[i] = list = [];
                list.Add(n);
            }
        }
    }

    public Node? Producer(string value) => _producers.GetValueOrDefault(value) is { } n && !_removed.Contains(n) ? n : null;

    public IEnumerable<Node> Consumers(string value) => _consumers.TryGetValue(value, out var list) ? list.Where(n => !_removed.Contains(n)) : [];

    /// <summary>Readers of the value, a graph output counting as one.</summary>
    public int Uses(string value) => Consumers(value).Count() + (_outputs.Contains(value) ? 1 : 0);

    /// <summary>The node's first output becomes <paramref name="output"/> (the node it absorbed wrote that value).</summary>
    public void Rewire(Node node, string output)
    {
        _producers.Remove(node.Outputs[0]);
        node.Outputs[0] = output;
        _producers[output] = node;
    }

    public void Remove(Node node) => _removed.Add(node);

    public void Commit()
    {
        if (_removed.Count > 0) _graph.Nodes = [.. _graph.Nodes.Where(n => !_removed.Contains(n))];
    }
}
