using System.Runtime.InteropServices;
using Google.Protobuf;
using ModelGen.Artifact;
using ModelGen.Compiler.Operators;
using ModelGen.Onnx.Proto;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// The compressed graph (as <see cref="ModelCompiler.Prepare(CompileOptions)"/> leaves it) written back as an ONNX model
/// that ONNX Runtime runs: what the generated code computes, so pruned, restructured and fine-tuned weights all go out.
/// Dense becomes Gemm (2-D input; transB) or MatMul + Add; a fused activation chain becomes its ONNX nodes after the
/// producing node; every other node keeps its ONNX operator and attributes; constants become initializers; the
/// shapes are the fixed ones the graph was compiled for. Weight-only int8 and int4 layers carry their int8 values
/// as a uint8 initializer (value + 128, zero point 128) and a per-axis DequantizeLinear (the same floats the graph
/// computes with). Layers in int8 arithmetic are QDQ: the input through QuantizeLinear/DequantizeLinear with its
/// calibrated parameters, the weights as above, and the bias the kernel adds (ONNX Runtime fuses these into its
/// integer kernels). uint8 Adds, Concats and poolings between int8 layers are written in float32. Below opset 13
/// (no per-axis DequantizeLinear) every layer is written with the float32 weights the graph holds.
/// </summary>
public static class OnnxExport
{
    /// <summary>Writes the graph as ONNX to <paramref name="outputPath"/>; returns a note per layer not written in float32 as computed.</summary>
    public static IReadOnlyList<string> Write(Graph graph, string outputPath)
    {
        var notes = new List<string>();
        var model = Build(graph, notes);
        OutputFile.WriteIfChanged(outputPath, model.ToByteArray(), graph.ModelPath);
        return notes;
    }

    /// <summary>The graph as an ONNX model; notes on how quantized layers were written go to <paramref name="notes"/>.</summary>
    public static ModelProto Build(Graph graph, List<string> notes) => new Writer(graph, notes).Model();

    /// <summary>A layer's weights as the export carries them quantized: Q [N, K] by output channel, per-channel scales, and for int8 arithmetic the input's quantization and the bias the kernel adds.</summary>
    sealed record QuantizedLayer(sbyte[] Q, float[] Scales, int N, int K, QuantParams? Input, float[]? KernelBias);

    sealed class Writer(Graph graph, List<string> notes)
    {
        readonly GraphProto _out = new() { Name = "modelgen" };
        readonly HashSet<string> _names = new(graph.Values.Keys.Concat(graph.Nodes.Select(n => n.Name)), StringComparer.Ordinal);
        readonly HashSet<string> _initializers = new(StringComparer.Ordinal);

        public ModelProto Model()
        {
            foreach (var name in graph.Inputs) _out.Input.Add(Info(name));
            foreach (var node in graph.Nodes) Node(node);
            foreach (var name in graph.Outputs)
            {
                // A constant (or an input) given back as an output: an Identity, so that a node writes it.
                if (graph[name].IsConstant || graph.Inputs.Contains(name))
                {
                    string source = graph[name].IsConstant ? Initializer(Fresh(name + ".constant"), graph[name].Constant!) : name;
                    string output = graph[name].IsConstant ? name : Fresh(name + ".output");
                    _out.Node.Add(new NodeProto { Name = Fresh(name + ".identity"), OpType = "Identity", Input = { source }, Output = { output } });
                    _out.Output.Add(Info(name, output));
                }
                else _out.Output.Add(Info(name));
            }
            var model = new ModelProto { IrVersion = IrVersion(graph.Opset), ProducerName = "ModelGen", Graph = _out };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = graph.Opset });
            return model;
        }

        /// <summary>The lowest IR version that holds the opset (and at least 7: initializers need not be graph inputs).</summary>
        static long IrVersion(long opset) => opset <= 14 ? 7 : opset <= 18 ? 8 : opset <= 20 ? 9 : 10;

        ValueInfoProto Info(string value, string? name = null)
        {
            var v = graph[value];
            var tensor = new TypeProto.Types.Tensor { ElemType = (int)ElementOf(v.Type), Shape = new TensorShapeProto() };
            foreach (int d in v.Shape ?? throw Error($"graph input or output '{value}' has no inferred shape", null))
                tensor.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            return new ValueInfoProto { Name = name ?? value, Type = new TypeProto { TensorType = tensor } };
        }

        static TensorProto.Types.DataType ElementOf(ElementType type) => type == ElementType.Int64 ? TensorProto.Types.DataType.Int64 : TensorProto.Types.DataType.Float;

        string Fresh(string baseName)
        {
            string name = baseName;
            for (int i = 2; !_names.Add(name); i++) name = baseName + "_" + i;
            return name;
        }

        ModelGenException Error(string what, Node? node) =>
            new(ErrorCodes.UnsupportedOperator, graph.ModelPath, $"--emit-onnx: {(node is null ? "" : node.Describe + ": ")}{what}; the ONNX export cannot express it: leave out --emit-onnx (the generated code is not affected)");

        /// <summary>A constant value as an initializer under its own name (once), or a new one.</summary>
        string Initializer(string name, TensorData data)
        {
            if (!_initializers.Add(name)) return name;
            var t = new TensorProto { Name = name, DataType = (int)ElementOf(data.Type) };
            t.Dims.AddRange(data.Shape.Select(d => (long)d));
            t.RawData = data.Type == ElementType.Int64 ? ByteString.CopyFrom(MemoryMarshal.AsBytes(data.Ints.AsSpan())) : ByteString.CopyFrom(MemoryMarshal.AsBytes(data.Floats.AsSpan()));
            _out.Initializer.Add(t);
            return name;
        }

        string Bytes(string name, long[] dims, byte[] values)
        {
            _initializers.Add(name);
            var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Uint8, RawData = ByteString.CopyFrom(values) };
            t.Dims.AddRange(dims);
            _out.Initializer.Add(t);
            return name;
        }

        string Floats(string baseName, int[] shape, float[] values) => Initializer(Fresh(baseName), new TensorData(shape, values));

        /// <summary>An input of a node: a constant becomes an initializer; anything else is a value a node or the graph input writes.</summary>
        string Input(string name) => name.Length > 0 && graph[name].Constant is { } c ? Initializer(name, c) : name;

        void Add(string op, string name, string[] inputs, string[] outputs, params AttributeProto[] attributes)
        {
            var n = new NodeProto { Name = name, OpType = op };
            n.Input.AddRange(inputs);
            n.Output.AddRange(outputs);
            n.Attribute.AddRange(attributes);
            _out.Node.Add(n);
        }

        static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
        static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

        void Node(Node node)
        {
            // Integer forms the export knows: int8 layers (QDQ), and uint8 Adds and poolings (float32, as they compute on real values).
            if (node.Form is IntegerForm and not (Int8DenseForm or Int8ConvForm or ByteAddForm or ByteAverageForm))
                throw Error($"its form {node.Form.GetType().Name} computes in integers in a way ONNX has no operator for", node);
            // The node writes its first output through a fused activation chain: an intermediate value, then the chain's nodes.
            string? chain = node.Annotations.GetValueOrDefault("activation");
            var outputs = node.Outputs.ToArray();
            if (chain is not null) outputs[0] = Fresh(node.Outputs[0] + ".preactivation");
            if (node.OpType == DenseOperator.Name && node.Domain == DenseOperator.Domain) Dense(node, outputs[0]);
            else if (node.Domain is not ("" or "ai.onnx")) throw Error($"operator domain '{node.Domain}' is the compiler's own", node);
            else if (node.OpType == "Conv") Conv(node, outputs);
            else
            {
                var n = new NodeProto { Name = node.Name, OpType = node.OpType, Domain = node.Domain };
                n.Input.AddRange(node.Inputs.Select(Input));
                n.Output.AddRange(outputs);
                n.Attribute.AddRange(node.Attributes.Values);
                _out.Node.Add(n);
            }
            if (chain is not null) Activation(node, chain, outputs[0], node.Outputs[0]);
        }

        /// <summary>Each step of a fused chain as its ONNX node, from <paramref name="input"/> to <paramref name="output"/>.</summary>
        void Activation(Node node, string chain, string input, string output)
        {
            var steps = Activations.ParseChain(chain);
            for (int i = 0; i < steps.Length; i++)
            {
                var (op, alpha, beta) = steps[i];
                string name = Fresh($"{node.Name}.{op}"), y = i == steps.Length - 1 ? output : Fresh($"{node.Outputs[0]}.{op}");
                switch (op)
                {
                    case "Relu" or "Sigmoid" or "Tanh" or "Softplus" or "Softsign" or "Erf" or "Exp" or "Log" or "Sqrt" or "Neg" or "Abs" or "HardSwish":
                        Add(op, name, [input], [y]);
                        break;
                    case "LeakyRelu" or "Elu":
                        Add(op, name, [input], [y], Float("alpha", alpha));
                        break;
                    case "Selu":
                        Add(op, name, [input], [y], Float("alpha", alpha), Float("gamma", beta));
                        break;
                    case "HardSigmoid":
                        Add(op, name, [input], [y], Float("alpha", alpha), Float("beta", beta));
                        break;
                    case "Clip" when graph.Opset >= 11:
                        // Bounds as scalar inputs; an infinite one left out.
                        var clip = new List<string> { input, float.IsNegativeInfinity(alpha) ? "" : Floats($"{name}.min", [], [alpha]) };
                        if (!float.IsPositiveInfinity(beta)) clip.Add(Floats($"{name}.max", [], [beta]));
                        Add("Clip", name, [.. clip], [y]);
                        break;
                    case "Clip" when graph.Opset >= 6:
                        Add("Clip", name, [input], [y], Float("min", Math.Max(alpha, float.MinValue)), Float("max", Math.Min(beta, float.MaxValue)));
                        break;
                    case "Scale" when graph.Opset >= 7:
                        Add("Mul", name, [input, Floats($"{name}.scale", [], [alpha])], [y]);
                        break;
                    default:
                        throw Error($"its fused activation step '{op}' has no ONNX operator at opset {graph.Opset}", node);
                }
                input = y;
            }
        }

        /// <summary>Dense (W [N, K]) as Gemm with transB when its input is 2-D, else as MatMul with W' [K, N] and an Add of the bias.</summary>
        void Dense(Node node, string output)
        {
            var w = graph[node.Inputs[1]].Constant ?? throw Error("its weights are computed at run time", node);
            int n = w.Shape[0], k = w.Shape[1];
            bool transA = node.Int("transA", 0) != 0, gemm = transA || graph[node.Inputs[0]].Shape is { Length: 2 };
            var layer = Quantized(node, w.Floats, n, k);
            string x = layer?.Input is { } input ? QuantizeInput(node, input) : node.Inputs[0];
            string weight;
            if (gemm) weight = Weights(node.Inputs[1], w, layer, axis: 0);
            else
            {
                var transposed = new float[w.Floats.Length];
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < k; i++) transposed[(long)i * n + j] = w.Floats[(long)j * k + i];
                weight = Weights(Fresh(node.Inputs[1] + ".transposed"), new TensorData([k, n], transposed), layer, axis: 1);
            }
            string? bias = layer?.KernelBias is { } kernelBias ? Floats(node.Name + ".kernel_bias", [n], kernelBias) : node.HasInput(2) ? Input(node.Inputs[2]) : null;
            if (gemm)
            {
                // Before opset 11 Gemm's C is required (and before 7 broadcast is asked for).
                if (bias is null && graph.Opset < 11) bias = Floats(node.Name + ".zero_bias", [n], new float[n]);
                AttributeProto[] attributes = [Int("transB", 1), .. transA ? [Int("transA", 1)] : Array.Empty<AttributeProto>(), .. graph.Opset < 7 ? [Int("broadcast", 1)] : Array.Empty<AttributeProto>()];
                Add("Gemm", node.Name, bias is null ? [x, weight] : [x, weight, bias], [output], attributes);
            }
            else if (bias is null) Add("MatMul", node.Name, [x, weight], [output]);
            else
            {
                string product = Fresh(output + ".matmul");
                Add("MatMul", node.Name, [x, weight], [product]);
                Add("Add", Fresh(node.Name + ".bias"), [product, bias], [output], graph.Opset < 7 ? [Int("broadcast", 1)] : []);
            }
        }

        /// <summary>Conv with its weights (and, in int8 arithmetic, its input and bias) as the layer's form has them.</summary>
        void Conv(Node node, string[] outputs)
        {
            var w = graph[node.Inputs[1]].Constant ?? throw Error("its weights are computed at run time", node);
            int m = w.Shape[0], k = (int)(w.Count / m);
            var layer = Quantized(node, w.Floats, m, k);
            var conv = new NodeProto { Name = node.Name, OpType = "Conv", Domain = node.Domain };
            conv.Input.AddRange(node.Inputs.Select(Input));
            if (layer?.Input is { } input) conv.Input[0] = QuantizeInput(node, input);
            conv.Input[1] = Weights(node.Inputs[1], w, layer, axis: 0);
            if (layer?.KernelBias is { } kernelBias)
            {
                string bias = Floats(node.Name + ".kernel_bias", [m], kernelBias);
                if (conv.Input.Count > 2) conv.Input[2] = bias; else conv.Input.Add(bias);
            }
            conv.Output.AddRange(outputs);
            conv.Attribute.AddRange(node.Attributes.Values);
            _out.Node.Add(conv);
        }

        /// <summary>
        /// Float weights as the initializer <paramref name="value"/>; quantized ones (Q [N, K] by output channel, laid out as <paramref name="w"/>:
        /// channels along <paramref name="axis"/>) as uint8 values + 128 and a per-axis DequantizeLinear. uint8 weights make
        /// ONNX Runtime take its u8u8 kernels, which widen to 16 bits and are exact; its u8s8 kernels on AVX2 without VNNI
        /// (vpmaddubsw) saturate pair sums and differ from ours.
        /// </summary>
        string Weights(string value, TensorData w, QuantizedLayer? layer, int axis)
        {
            if (layer is null) return Initializer(value, w);
            int n = layer.N, k = layer.K;
            var data = new byte[(long)n * k];
            for (int j = 0; j < n; j++)
                for (int i = 0; i < k; i++)
                    data[axis == 0 ? (long)j * k + i : (long)i * n + j] = (byte)(layer.Q[(long)j * k + i] + 128);
            string name = Fresh(value + ".dequantized");
            string quantized = Bytes(Fresh(value + "_quantized"), [.. w.Shape.Select(d => (long)d)], data);
            string scale = Floats(name + "_scale", [n], layer.Scales);
            string zero = Bytes(Fresh(name + "_zero_point"), [n], Enumerable.Repeat((byte)128, n).ToArray());
            Add("DequantizeLinear", Fresh(name + "_dequantize"), [quantized, scale, zero], [name], Int("axis", axis));
            return name;
        }

        /// <summary>The layer's input through QuantizeLinear and DequantizeLinear (uint8, its calibrated scale and zero point).</summary>
        string QuantizeInput(Node node, QuantParams input)
        {
            string x = node.Inputs[0], name = Fresh($"{x}_{node.Name}_quantized");
            string scale = Floats(name + "_scale", [], [input.Scale]);
            string zero = Bytes(Fresh(name + "_zero_point"), [], [(byte)input.ZeroPoint]);
            string dequantized = Fresh($"{x}_{node.Name}_dequantized");
            Add("QuantizeLinear", Fresh(name + "_q"), [x, scale, zero], [name]);
            Add("DequantizeLinear", Fresh(name + "_dq"), [name, scale, zero], [dequantized]);
            return dequantized;
        }

        /// <summary>
        /// The layer's quantized weights, or null when it is written in float32: a float32 form, opset below 13 (no
        /// per-axis DequantizeLinear), or weight-only values that are not exactly the float weights the graph computes with.
        /// </summary>
        QuantizedLayer? Quantized(Node node, float[] w, int n, int k)
        {
            var int8 = WeightQuantization.Of(node);
            var int4 = Int4Quantization.Of(node);
            var dense = Int8Quantization.Of(node);
            var conv = Int8Quantization.OfConv(node);
            if (int8 is null && int4 is null && dense is null && conv is null) return null;
            if (graph.Opset < 13)
            {
                notes.Add($"{node.Name}: float32 in the ONNX export (opset {graph.Opset} has no per-axis DequantizeLinear)");
                return null;
            }
            if (int8 is not null || int4 is not null)
            {
                sbyte[] q = int8?.Q ?? Unpack(int4!);
                float[] scales = int8?.Scales ?? int4!.Scales;
                if (q.LongLength != (long)n * k || scales.Length != n || !SameWeights(q, scales, w, k))
                {
                    notes.Add($"{node.Name}: float32 in the ONNX export (its float weights are not its quantized values times their scales)");
                    return null;
                }
                notes.Add($"{node.Name}: {(int8 is not null ? "int8 weights" : "int4 (as int8 values) weights")} through DequantizeLinear");
                return new QuantizedLayer(q, scales, n, k, null, null);
            }
            IInt8Layer layer = (IInt8Layer?)dense ?? conv!;
            var x = layer.Input;
            float[] multipliers = layer.Multipliers;
            float[] weightScales = [.. multipliers.Select(m => m / x.Scale)];
            // A kernel that requantizes its output to uint8 multiplies by an integer over 2^shift, which may keep as few as
            // 10 bits of sx·sw / sy: the weight scales are then the ones whose sx·sw / sy is that multiplier, so that
            // ONNX Runtime rounds to the same uint8 outputs.
            if (Int8Quantization.OutputOf(node) is { } requant)
                weightScales = [.. weightScales.Select(s => (float)(requant.Multiplier(s * x.Scale) * (double)requant.Output.Scale / Math.Pow(2, requant.Shift) / x.Scale))];
            // The bias the kernel adds: folded into the accumulator in integers (bias correction included, and int16
            // storage may round it by up to 2 units), so ONNX Runtime gets that bias, not the float one, to compute the same.
            var floatBias = node.HasInput(2) ? graph[node.Inputs[2]].Constant?.Floats : null;
            if (floatBias is not null && floatBias.Length != n) throw Error("its int8 bias is not one value per output", node);
            int[] rowSums = dense?.RowSums ?? conv!.RowSums;
            int[] folded = layer.Bias(floatBias);
            var kernelBias = new float[n];
            for (int j = 0; j < n; j++) kernelBias[j] = (float)(((long)folded[j] + (long)x.ZeroPoint * rowSums[j]) * (double)x.Scale * weightScales[j]);
            notes.Add($"{node.Name}: int8 input and weights through DequantizeLinear");
            return new QuantizedLayer(dense?.Q ?? conv!.OnnxLayout(), weightScales, n, k, x, kernelBias);
        }

        /// <summary>Whether the graph's float weights W [n, k] are exactly q·scale (what DequantizeLinear computes).</summary>
        static bool SameWeights(sbyte[] q, float[] scales, float[] w, int k)
        {
            if (q.LongLength != w.LongLength) return false;
            for (long i = 0; i < w.LongLength; i++)
                if (q[i] * scales[i / k] != w[i]) return false;
            return true;
        }

        static sbyte[] Unpack(QuantizedInt4 q)
        {
            var w = Int4Quantization.Dequantize(q);
            var values = new sbyte[w.Length];
            for (long i = 0; i < w.LongLength; i++) values[i] = (sbyte)MathF.Round(w[i] / q.Scales[i / q.K]);
            return values;
        }
    }
}
