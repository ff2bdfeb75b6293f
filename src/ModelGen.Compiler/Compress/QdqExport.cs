using Google.Protobuf;
using ModelGen.Compiler.Operators;
using ModelGen.Onnx.Proto;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// The compressed model as ONNX that ONNX Runtime runs (QDQ form): each quantized fully connected
/// layer's or convolution's weight initializer becomes a uint8 initializer (the int8 values + 128, zero point 128) and a
/// per-axis DequantizeLinear (int4 values are stored the same way, 121…135). The rest of the original model is unchanged. A layer is exported quantized
/// only where its weights are exactly one initializer as the Gemm or MatMul reads it (no alpha, no
/// folded BatchNormalization); any other stays float32, and the export says which.
/// </summary>
public static class QdqExport
{
    public static IReadOnlyList<string> Write(CompileOptions options, string outputPath)
    {
        var model = OnnxModelLoader.Load(options.ModelPath);
        long opset = model.OpsetImport.Where(o => o.Domain.Length == 0 || o.Domain == "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();
        if (opset < 13)
            throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, $"--emit-onnx writes per-axis DequantizeLinear, which needs opset 13; the model imports opset {opset}");
        if (options.FineTune)
            throw new ModelGenException(ErrorCodes.BadOption, options.ModelPath, "--emit-onnx writes the original model's float weights beside the quantized ones, so it cannot carry fine-tuned weights yet: leave out --fine-tune or --emit-onnx");
        var original = ModelCompiler.Prepare(options.Original);
        var compressed = ModelCompiler.Prepare(options);
        var g = model.Graph;
        var initializers = g.Initializer.ToDictionary(i => i.Name, StringComparer.Ordinal);
        var notes = new List<string>();
        var newNodes = new List<NodeProto>();
        int index = 0;
        var names = g.Node.Select(n => (Node: n, Name: n.Name.Length > 0 ? n.Name : $"{n.OpType}_{index++}")).ToList();
        foreach (var dense in compressed.Nodes.Where(n => n.OpType is DenseOperator.Name or "Conv"))
        {
            var int8 = WeightQuantization.Of(dense);
            var int4 = Int4Quantization.Of(dense);
            // int8 arithmetic (a fully connected layer or a convolution): int8 weights, and the input quantized with these parameters.
            var denseArithmetic = Int8Quantization.Of(dense);
            var convArithmetic = Int8Quantization.OfConv(dense);
            QuantParams? arithmetic = denseArithmetic?.Input ?? convArithmetic?.Input;
            if (int8 is null && int4 is null && arithmetic is null) continue;
            var (n, k) = int8 is not null ? (int8.N, int8.K) : int4 is not null ? (int4.N, int4.K)
                : denseArithmetic is not null ? (denseArithmetic.N, denseArithmetic.K) : (convArithmetic!.M, convArithmetic.ChannelsPerGroup * convArithmetic.KernelH * convArithmetic.KernelW);
            sbyte[] q = int8?.Q ?? (int4 is not null ? Unpack(int4) : denseArithmetic?.Q ?? convArithmetic!.OnnxLayout());
            float[] scales = int8?.Scales ?? int4?.Scales ?? [.. (denseArithmetic?.Multipliers ?? convArithmetic!.Multipliers).Select(m => m / arithmetic!.Value.Scale)];
            // A kernel that requantizes its output to uint8 multiplies by an integer over 2^shift, which may keep as few as
            // 10 bits of sx·sw / sy: the weight scales are then the ones whose sx·sw / sy is that multiplier, so that
            // ONNX Runtime rounds to the same uint8 outputs.
            if (arithmetic is not null && Int8Quantization.OutputOf(dense) is { } requant)
                scales = [.. scales.Select(s => (float)(requant.Multiplier(s * arithmetic.Value.Scale) * (double)requant.Output.Scale / Math.Pow(2, requant.Shift) / arithmetic.Value.Scale))];
            var source = names.FirstOrDefault(p => p.Name == dense.Name).Node;
            var before = original.Nodes.FirstOrDefault(o => o.Name == dense.Name) is { } o ? original[o.Inputs[1]].Constant : null;
            string? weight = source is { OpType: "Gemm" or "MatMul" or "Conv", Input.Count: >= 2 } ? source.Input[1] : null;
            // Conv weights [M, …] and Gemm's transposed B [N, K] hold a channel per row (axis 0); MatMul's and Gemm's B [K, N] per column.
            bool transposed = source?.OpType == "Conv" || source?.OpType == "Gemm" && source.Attribute.Any(a => a.Name == "transB" && a.I != 0);
            if (weight is null || before is null || !initializers.TryGetValue(weight, out var init) || g.Node.Count(x => x.Input.Contains(weight)) != 1
                || !SameWeights(OnnxImporterTensor(init, options.ModelPath), before.Floats, n, k, transposed))
            {
                notes.Add($"{dense.Name}: kept float32 in the ONNX export (its weights are not one initializer as written)");
                continue;
            }
            // The int8 values stored as uint8 (q + 128, zero point 128) in the initializer's own layout: [N, K] (Gemm transB)
            // per axis 0, else [K, N] per axis 1. uint8 weights make ONNX Runtime take its u8u8 kernels, which widen to 16 bits
            // and are exact; its u8s8 kernels on AVX2 without VNNI (vpmaddubsw) saturate pair sums and differ from ours.
            var data = new byte[(long)n * k];
            for (int j = 0; j < n; j++)
                for (int i = 0; i < k; i++)
                    data[transposed ? (long)j * k + i : (long)i * n + j] = (byte)(q[(long)j * k + i] + 128);
            var quantized = new TensorProto { Name = weight + "_quantized", DataType = (int)TensorProto.Types.DataType.Uint8, RawData = ByteString.CopyFrom(data) };
            quantized.Dims.AddRange(init.Dims);
            var scale = new TensorProto { Name = weight + "_scale", DataType = (int)TensorProto.Types.DataType.Float };
            scale.Dims.Add(n);
            scale.FloatData.AddRange(scales);
            var weightZero = new TensorProto { Name = weight + "_zero_point", DataType = (int)TensorProto.Types.DataType.Uint8, RawData = ByteString.CopyFrom(Enumerable.Repeat((byte)128, n).ToArray()) };
            weightZero.Dims.Add(n);
            g.Initializer.Remove(init);
            g.Initializer.Add(quantized);
            g.Initializer.Add(scale);
            g.Initializer.Add(weightZero);
            var dq = new NodeProto { Name = weight + "_dequantize", OpType = "DequantizeLinear", Output = { weight }, Input = { quantized.Name, scale.Name, weightZero.Name } };
            dq.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = transposed ? 0 : 1 });
            newNodes.Add(dq);
            if (arithmetic is not null)
            {
                // int8 arithmetic: the layer's input through QuantizeLinear/DequantizeLinear (uint8, its calibrated scale and zero point).
                string input = source!.Input[0], quantizedInput = input + "_" + dense.Name + "_quantized", dequantizedInput = input + "_" + dense.Name + "_dequantized";
                var inputScale = new TensorProto { Name = quantizedInput + "_scale", DataType = (int)TensorProto.Types.DataType.Float };
                inputScale.FloatData.Add(arithmetic.Value.Scale);
                var zero = new TensorProto { Name = quantizedInput + "_zero_point", DataType = (int)TensorProto.Types.DataType.Uint8, RawData = ByteString.CopyFrom((byte)arithmetic.Value.ZeroPoint) };
                g.Initializer.Add(inputScale);
                g.Initializer.Add(zero);
                int at = g.Node.IndexOf(source);
                g.Node.Insert(at, new NodeProto { Name = quantizedInput + "_dq", OpType = "DequantizeLinear", Input = { quantizedInput, inputScale.Name, zero.Name }, Output = { dequantizedInput } });
                g.Node.Insert(at, new NodeProto { Name = quantizedInput + "_q", OpType = "QuantizeLinear", Input = { input, inputScale.Name, zero.Name }, Output = { quantizedInput } });
                source.Input[0] = dequantizedInput;
                // The bias the kernel adds: folded into the accumulator in integers (bias correction included, and int16
                // storage may round it by up to 2 units), so ONNX Runtime gets that bias, not the float one, to compute the same.
                var floatBias = dense.HasInput(2) ? compressed[dense.Inputs[2]].Constant : null;
                bool takesBias = source.OpType == "Conv" || source.OpType == "Gemm" && !source.Attribute.Any(a => a.Name == "beta" && a.F != 1f);
                // A source bias the layer does not carry (computed elsewhere in the graph) stays as it is.
                bool sourceBias = source.Input.Count > 2 && source.Input[2].Length > 0;
                if (takesBias && (floatBias is not null || !dense.HasInput(2) && !sourceBias))
                {
                    int[] rowSums = denseArithmetic?.RowSums ?? convArithmetic!.RowSums;
                    int[] folded = denseArithmetic?.Bias(floatBias?.Floats) ?? convArithmetic!.Bias(floatBias?.Floats);
                    var kernelBias = new TensorProto { Name = dense.Name + "_kernel_bias", DataType = (int)TensorProto.Types.DataType.Float };
                    kernelBias.Dims.Add(n);
                    for (int j = 0; j < n; j++) kernelBias.FloatData.Add((float)(((long)folded[j] + (long)arithmetic.Value.ZeroPoint * rowSums[j]) * (double)arithmetic.Value.Scale * scales[j]));
                    g.Initializer.Add(kernelBias);
                    if (source.Input.Count > 2) source.Input[2] = kernelBias.Name; else source.Input.Add(kernelBias.Name);
                }
                else if (dense.HasInput(2) && dense.Inputs[2].EndsWith(".corrected", StringComparison.Ordinal))
                    notes.Add($"{dense.Name}: its corrected bias is not in the ONNX export (not a Conv, nor a Gemm with beta 1)");
            }
            notes.Add($"{dense.Name}: {(arithmetic is not null ? "int8 input and weights" : int8 is not null ? "int8 weights" : "int4 (as int8 values) weights")} through DequantizeLinear");
        }
        // DequantizeLinear nodes first: they read only initializers, and ONNX wants nodes in topological order.
        for (int i = newNodes.Count - 1; i >= 0; i--) g.Node.Insert(0, newNodes[i]);
        OutputFile.WriteIfChanged(outputPath, model.ToByteArray(), options.ModelPath);
        return notes;
    }

    static float[] OnnxImporterTensor(TensorProto t, string path) => Import.OnnxImporter.ReadTensor(t, path).Floats;

    /// <summary>Whether the initializer (as written) is exactly the layer's float weights W [n, k].</summary>
    static bool SameWeights(float[] initializer, float[] w, int n, int k, bool transposed)
    {
        if (initializer.Length != w.Length) return false;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < k; i++)
                if (initializer[transposed ? (long)j * k + i : (long)i * n + j] != w[(long)j * k + i]) return false;
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
