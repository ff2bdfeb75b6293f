using System.Globalization;
using ModelGen.Artifact;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Plan;

/// <summary>
/// Conv's lowering (ConvOperator.Lower): the float32 kernels (GEMM, depthwise strips or plane, direct), with
/// int8 weights widened per call, or int8 arithmetic (ConvInt8, DepthwiseInt8).
/// </summary>
internal static class ConvLowering
{
    public static void Lower(Node node, ILowering lowering)
    {
        var graph = lowering.Graph;
        var x = graph[node.Inputs[0]].Shape!;
        var w = graph[node.Inputs[1]].Shape!;
        var geo = ConvOperator.Geometry(node, x, w);
        int group = (int)node.Int("group", 1);
        var y = graph[node.Outputs[0]].Shape!;
        if (Compress.Int8Quantization.OfConv(node) is { } int8)
        {
            LowerInt8(node, lowering, int8, geo, group, x, y);
            return;
        }
        if (Compress.SparseConvStorage.Of(node) is { } sparse)
        {
            LowerSparse(node, lowering, sparse, Compress.SparseConvStorage.SharedOf(node), geo, group, x);
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
        bool floatWeights = Compress.WeightQuantization.Of(node) is null;
        // Implicit GEMM (ImplicitGemmEmitter) for float32 weights, a horizontal stride of 1 and a kernel row short enough to
        // unroll, where an output row holds a 128-bit vector: the GEMM's register tile, its vectors loaded straight from
        // the zero-padded input, with no im2col (which writes and reads back kH·kW copies of the input: as much memory
        // traffic as the arithmetic of a layer with few filters). A stem on one channel takes it rather than the
        // depthwise strips (those load each input row once per filter; the tile loads it once for MR filters).
        // A pointwise convolution keeps the plain GEMM over its input; depthwise convolutions keep their strips. So does an
        // input that, padded, is larger than L2 (ConvBands.L2Budget): a tile's loads reach into every input channel's
        // plane at once, too many streams for the prefetchers once the planes come from memory (super-resolution's
        // 64 channels of 224 x 224), where the banded im2col gathers each plane in order.
        bool trueDepthwise = w[1] == 1 && group > 1 && w[0] == group;
        long paddedInputBytes = 4L * w[1] * (geo.InH + geo.PadTop + geo.PadBottom) * (geo.InW + geo.PadLeft + geo.PadRight);
        bool implicitGemm = lowering.Simd != SimdLevel.None && floatWeights && !trueDepthwise && geo.StrideW == 1
            && geo.KernelW <= 16 && geo.OutW >= 4 && y.Length is 3 or 4 && paddedInputBytes <= ConvBands.L2Budget
            && !ConvScratch.IsPointwise(geo.Kernel, geo.Strides, geo.Pads);
        bool depthwise = !implicitGemm && w[1] == 1 && (group > 1 && w[0] == group && geo.KernelH * geo.KernelW <= 64
            || depthwiseRows && geo.KernelH * geo.KernelW <= 9 && floatWeights);
        bool gemm = lowering.Simd != SimdLevel.None && !depthwise && !implicitGemm;
        var outputs = new List<int> { lowering.Tensor(node.Outputs[0]) };
        long padded = implicitGemm ? ConvScratch.ImplicitGemmPaddedFloats(w[1], geo.InH, geo.InW, geo.Pads) : 0;
        if (padded > 0) outputs.Add(lowering.Temporary(node.Name + ".padded", [checked((int)padded)]));
        if (gemm && !ConvScratch.IsPointwise(geo.Kernel, geo.Strides, geo.Pads))
        {
            // The patches of one band of output rows (all of them unless ConvBands splits a large stem).
            int patchRows = w[1] * w.Skip(2).Aggregate(1, (a, b) => a * b);
            int columns = y.Length == 4 ? ConvBands.Rows(patchRows, y[2], y[3]) * y[3] : y.Skip(2).Aggregate(1, (a, b) => a * b);
            outputs.Add(lowering.Temporary(node.Name + ".patches", [patchRows, columns]));
        }
        if (depthwise && !depthwiseRows && lowering.Simd != SimdLevel.None && ArtifactBuilder.DepthwisePlane(geo, x, y) is var (rows, width, wide))
        {
            // A zero-padded copy of one input plane and a wide output plane: every tap is then one
            // run of memory over the whole plane (see DepthwiseConvEmitter).
            outputs.Add(lowering.Temporary(node.Name + ".padded", [rows, width]));
            outputs.Add(lowering.Temporary(node.Name + ".wide", [wide]));
        }
        var q8 = gemm ? Compress.WeightQuantization.Of(node) : null;
        // The float weights are not embedded when the int8 ones are.
        int[] convInputs = q8 is null ? LoweringParts.Inputs(node, lowering) : [lowering.Tensor(node.Inputs[0]), -1, .. node.Inputs.Skip(2).Where(i => i.Length > 0).Select(lowering.Tensor)];
        if (q8 is not null)
        {
            // int8 weights [M, K] and a scale per output channel, widened into scratch [M, K] each call.
            int wq = lowering.Embed(node.Inputs[1], [q8.N, q8.K], TensorElement.Int8, (byte[])(Array)q8.Q.Clone());
            int scales = lowering.Weight(node.Inputs[1] + ".scales", new TensorData([q8.N], q8.Scales));
            convInputs = [convInputs[0], wq, scales, .. convInputs.Skip(2)];
            outputs.Add(lowering.Temporary(node.Name + ".weights", [q8.N, q8.K]));
        }
        var n = lowering.AddNode(KernelKind.Conv, "Conv", node.Name, convInputs, [.. outputs]);
        LoweringParts.Window(n, geo);
        n.SetConv(new ConvAttributes(group, gemm ? ConvMethod.Gemm : implicitGemm ? ConvMethod.ImplicitGemm : depthwise ? ConvMethod.Depthwise : ConvMethod.Direct, int8Weights: q8 is not null));
        LoweringParts.Activation(n, node);
    }

    /// <summary>
    /// A pruned Conv stored sparse (Compress.SparseConvStorage; SparseConvEmitter): the kept values (float32, padding
    /// entries included), the index stream (SparseConvStorage.IndexStream) and, unstructured, each row's entry count
    /// (uint8 or int16), then the bias. Scratch: for a kernel of more than one tap, each column's input offset (made once a call),
    /// and with pads the zero-padded input channels of one group. Shared weights (<paramref name="shared"/>): the values
    /// are the packed codes, and the codebook follows the row counts.
    /// </summary>
    static void LowerSparse(Node node, ILowering lowering, Compress.SparseWeights sparse, Compress.SharedWeights? shared, WindowGeometry geo, int group, int[] x)
    {
        var values = new byte[shared is null ? sparse.Entries * 4 : 0];
        if (shared is null)
            for (int i = 0; i < sparse.Entries; i++) System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(values.AsSpan(i * 4), sparse.Values[i]);
        var inputs = new List<int>
        {
            lowering.Tensor(node.Inputs[0]),
            shared is null ? lowering.Embed(node.Inputs[1], [sparse.Entries], TensorElement.Float32, values) : LoweringParts.SparseCodes(lowering, node.Inputs[1], sparse, shared),
            lowering.Embed(node.Inputs[1] + ".sparse_indices", [checked((int)sparse.IndexBytes)], TensorElement.UInt8, Compress.SparseConvStorage.IndexStream(sparse)),
        };
        if (sparse.Pattern == Compress.SparsePattern.Unstructured) inputs.Add(LoweringParts.SparseCounts(lowering, node.Inputs[1], sparse));
        if (shared is not null) inputs.Add(lowering.Weight(node.Inputs[1] + ".codebook", new TensorData([shared.Codebook.Length], shared.Codebook)));
        if (node.HasInput(2)) inputs.Add(lowering.Tensor(node.Inputs[2]));
        var outputs = new List<int> { lowering.Tensor(node.Outputs[0]) };
        bool nOfM = sparse.Pattern == Compress.SparsePattern.NOfM;
        if (nOfM)
        {
            // N:M: the column offsets and a row's decoded offsets; the input copied onto 64-byte lines (ConvScratch).
            outputs.Add(lowering.Temporary(node.Name + ".offsets", [ConvScratch.SparseNOfMTableInts(sparse.Columns, sparse.RowStarts[1] - sparse.RowStarts[0])]));
            outputs.Add(lowering.Temporary(node.Name + ".padded", [checked((int)ConvScratch.SparseNOfMCopyFloats(x[1] / group, geo.InH, geo.InW, geo.KernelH, geo.KernelW, geo.StrideH, geo.StrideW, geo.PadTop, geo.PadLeft, geo.PadBottom, geo.PadRight))]));
        }
        else
        {
            if (geo.KernelH * geo.KernelW > 1) outputs.Add(lowering.Temporary(node.Name + ".offsets", [sparse.Columns]));
            if (geo.HasPadding)
                outputs.Add(lowering.Temporary(node.Name + ".padded", [x[1] / group * (geo.InH + geo.PadTop + geo.PadBottom) * (geo.InW + geo.PadLeft + geo.PadRight)]));
        }
        var n = lowering.AddNode(KernelKind.Conv, "Conv", node.Name, [.. inputs], [.. outputs]);
        LoweringParts.Window(n, geo);
        var format = sparse.Pattern == Compress.SparsePattern.NOfM ? SparseConvFormat.NOfM(sparse.N, sparse.M) : SparseConvFormat.Unstructured(sparse.IndexBits);
        if (shared is not null) format = format.WithCodes(shared.Bits);
        n.SetConv(new ConvAttributes(group, ConvMethod.Sparse, sparse: format));
        LoweringParts.Activation(n, node);
    }

    /// <summary>
    /// Conv in int8 arithmetic (see ConvInt8Kernel): int8 weights [M, C/group·kH·kW'] (kernel rows padded to
    /// kW' = a multiple of 4), row sums and multipliers per output channel; scratch for the input quantized
    /// into a plane with zero-point borders, and for the uint8 patch matrix of one group.
    /// </summary>
    static void LowerInt8(Node node, ILowering lowering, Compress.Int8Conv int8, WindowGeometry geo, int group, int[] x, int[] y)
    {
        int q8 = lowering.Embed(node.Inputs[1], [int8.M, int8.RowLength], TensorElement.Int8, (byte[])(Array)int8.Q.Clone());
        int bias = LoweringParts.AccumulatorBiasWeight(lowering, node.Name + ".bias_int", int8.Bias(LoweringParts.BiasOf(lowering, node)), out int biasShift);
        int multipliers = LoweringParts.MultiplierWeight(lowering, node.Inputs[1] + ".multipliers", int8.Multipliers, int8.MultiplierRatios);
        if (int8.Depthwise)
        {
            int[] scratch;
            DepthwisePlane? dilatedPlane = null;
            if (ConvScratch.DepthwiseInt8MethodFor(geo.Dilations) == DepthwiseInt8Method.Rows)
            {
                // The weights as float32 (converted once a call), then one channel at a time the float32 depthwise
                // kernel's strips (see DepthwiseInt8Kernel): over a uint8 input as it is, each load widened; over a
                // float32 input, its plane quantized (uint8 values less the zero point, held as float32) after the weights.
                // Over a uint8 input, machines with AVX-VNNI take the padded plane and its quads instead (DepthwiseQuadLayout),
                // in the same scratch.
                bool byteInput = lowering.IsUInt8(lowering.Tensor(node.Inputs[0]));
                long floats = ConvScratch.DepthwiseInt8RowsFloats(int8.M, geo.KernelH * geo.KernelW, x[2], x[3], byteInput);
                if (byteInput && DepthwiseQuadLayout.For(geo.InH, geo.InW, geo.OutH, geo.OutW, geo.KernelH, geo.KernelW, geo.StrideH, geo.StrideW,
                        geo.PadTop, geo.PadLeft, geo.PadBottom, geo.PadRight, geo.DilationH, geo.DilationW) is { } quads)
                    floats = Math.Max(floats, (quads.ScratchBytes + 3) / 4);
                scratch = [lowering.Temporary(node.Name + ".quantized", [checked((int)floats)])];
            }
            else
            {
                // Dilated: one channel at a time, its plane quantized (uint8 values held as float32) with the zero
                // point in the padding, the taps summed over a wide plane. The raw plane (zeros in the padding,
                // which quantize to the zero point) and the quantized one, rounded to whole vectors so the plane
                // quantizes in one flat run; a uint8 input, as the int8 layer before wrote it, goes straight into
                // the quantized plane (no raw one).
                var dw = ArtifactBuilder.DepthwisePlane(geo, x, y) ?? throw new InvalidOperationException($"'{node.Name}': no depthwise plane");
                int planeLength = (dw.Rows * dw.Width + 15) / 16 * 16;
                bool byteInput = lowering.IsUInt8(lowering.Tensor(node.Inputs[0]));
                scratch = [lowering.Temporary(node.Name + ".plane", [byteInput ? 1 : planeLength]),
                    lowering.Temporary(node.Name + ".wide", [dw.Wide]), lowering.Temporary(node.Name + ".quantized", [planeLength])];
                dilatedPlane = new DepthwisePlane(dw.Rows, dw.Width);
            }
            var d = lowering.AddNode(KernelKind.DepthwiseInt8, "Conv", node.Name, [lowering.Tensor(node.Inputs[0]), q8, bias, multipliers], [lowering.Tensor(node.Outputs[0]), .. scratch]);
            if (dilatedPlane is not null) d.SetPlane(dilatedPlane);
            LoweringParts.Window(d, geo);
            LoweringParts.Int8Layer(lowering, d, node, int8.Input, int8.MultiplierRatios, int8.LayerMultiplier, biasShift);
            return;
        }
        // The padded plane, slack for the last 16-byte loads, and with pads a flat copy of the quantized image;
        // none for a pointwise convolution (1x1, stride 1, no pads), whose input quantizes straight into its patches.
        bool pointwise = ConvScratch.IsPointwise(geo.Kernel, geo.Strides, geo.Pads);
        long planeBytes = Math.Max(4, ConvScratch.Int8PlaneBytes(pointwise, x[1], geo.InH, geo.InW, geo.Pads, int8.PaddedKernelW));
        long patchBytes = ConvScratch.Int8PatchBytes(int8.RowLength, geo.OutH, geo.OutW);
        int plane = lowering.Temporary(node.Name + ".quantized", [checked((int)((planeBytes + 3) / 4))]);
        int patches = lowering.Temporary(node.Name + ".patches", [checked((int)((patchBytes + 3) / 4))]);
        var n = lowering.AddNode(KernelKind.ConvInt8, "Conv", node.Name, [lowering.Tensor(node.Inputs[0]), q8, bias, multipliers], [lowering.Tensor(node.Outputs[0]), plane, patches]);
        LoweringParts.Window(n, geo);
        n.SetConv(new ConvAttributes(group));
        LoweringParts.Int8Layer(lowering, n, node, int8.Input, int8.MultiplierRatios, int8.LayerMultiplier, biasShift);
    }
}

/// <summary>MaxPool's lowering over two spatial axes (MaxPoolOperator.Lower): float32, or bytes between int8 layers.</summary>
internal static class MaxPoolLowering
{
    public static void Lower(Node node, ILowering lowering)
    {
        var graph = lowering.Graph;
        var geo = MaxPoolOperator.Geometry(graph, node, graph[node.Inputs[0]].Shape!);
        int input = lowering.Tensor(node.Inputs[0]);
        if (lowering.IsUInt8(input) && Compress.Int8Quantization.IsBytePool(graph, node))
        {
            // Between int8 layers (Int8Quantization.OutputOf): uint8 in, uint8 out, the same quantization.
            int output = lowering.Tensor(node.Outputs[0]);
            lowering.MarkUInt8(output);
            LoweringParts.Window(lowering.AddNode(KernelKind.MaxPoolU8, "MaxPool", node.Name, [input], [output]), geo);
            return;
        }
        LoweringParts.Window(lowering.AddNode(KernelKind.MaxPool, "MaxPool", node.Name, LoweringParts.Inputs(node, lowering), [lowering.Tensor(node.Outputs[0])]), geo);
    }
}

/// <summary>Dense's lowering (DenseOperator.Lower): float32 weights re-packed for one row or several, int8 or int4 weights, or int8 arithmetic.</summary>
internal static class DenseLowering
{
    public static void Lower(Node node, ILowering lowering)
    {
        var graph = lowering.Graph;
        // One row of x (batch 1): W stays [N, K], each output one contiguous dot product. Several
        // rows: W re-packed [K, N], so the GEMM reads a contiguous row of N outputs per k.
        var weight = graph[node.Inputs[1]].Constant ?? throw new InvalidOperationException("Dense without constant weights");
        int outN = weight.Shape[0], inK = weight.Shape[1];
        bool oneRow = TensorData.Size(graph[node.Outputs[0]].Shape!) == outN && node.Int("transA", 0) == 0;
        int packedWeight;
        if (oneRow && Compress.Int8Quantization.Of(node) is { } int8)
        {
            // int8 arithmetic: weights int8 [N, K], row sums and multipliers per output (float32 holds both exactly / as used).
            int q8 = lowering.Embed(node.Inputs[1], [int8.N, int8.K], TensorElement.Int8, (byte[])(Array)int8.Q.Clone());
            int bias8 = LoweringParts.AccumulatorBiasWeight(lowering, node.Name + ".bias_int", int8.Bias(LoweringParts.BiasOf(lowering, node)), out int biasShift);
            int multipliers = LoweringParts.MultiplierWeight(lowering, node.Inputs[1] + ".multipliers", int8.Multipliers, int8.MultiplierRatios);
            // Scratch for the quantized input, unless the layer before wrote it as uint8 already.
            bool byteInput = lowering.IsUInt8(lowering.Tensor(node.Inputs[0]));
            int quantizedInput = lowering.Temporary(node.Name + ".xq", [byteInput ? 1 : (int8.K + 3) / 4]);
            var denseQ = lowering.AddNode(KernelKind.DenseInt8, node.Str("onnx_op", "Gemm"), node.Name, [lowering.Tensor(node.Inputs[0]), q8, bias8, multipliers], [lowering.Tensor(node.Outputs[0]), quantizedInput]);
            LoweringParts.Int8Layer(lowering, denseQ, node, int8.Input, int8.MultiplierRatios, int8.LayerMultiplier, biasShift);
            return;
        }
        // (After the int8 case, which folds the float bias into an integer: a bias tensor made before would be embedded unused.)
        int[] biasInput = [.. node.Inputs.Skip(2).Where(i => i.Length > 0).Select(lowering.Tensor)];
        if (oneRow && node.Form is Compress.SparseDenseForm sparse)
        {
            LowerSparse(node, lowering, sparse, biasInput);
            return;
        }
        if (oneRow && node.Form is Compress.SharedWeightsForm { Weights: var shared })
        {
            // Shared weights: the codes packed Bits each [N, ceil(K·Bits/8)] and the codebook, float32 [2^Bits].
            int codes = lowering.Embed(node.Inputs[1], [shared.Rows, shared.RowBytes], TensorElement.UInt8, shared.PackedCodes());
            int codebook = lowering.Weight(node.Inputs[1] + ".codebook", new TensorData([shared.Codebook.Length], (float[])shared.Codebook.Clone()));
            var denseShared = lowering.AddNode(KernelKind.Dense, node.Str("onnx_op", "Gemm"), node.Name, [lowering.Tensor(node.Inputs[0]), codes, codebook, .. biasInput], [lowering.Tensor(node.Outputs[0])]);
            denseShared.SetDense(new DenseAttributes(false, DenseLayout.Codebook, k: shared.Columns, bits: shared.Bits));
            LoweringParts.Activation(denseShared, node);
            return;
        }
        if (oneRow && Compress.Int4Quantization.Of(node) is { } int4)
        {
            // int4 weights packed two per byte [N, K'/2] and a float32 scale per output.
            int packed4 = lowering.Embed(node.Inputs[1], [int4.N, int4.PaddedK / 2], TensorElement.UInt8, (byte[])int4.Packed.Clone());
            int scales4 = lowering.Weight(node.Inputs[1] + ".scales", new TensorData([int4.N], int4.Scales));
            var dense4 = lowering.AddNode(KernelKind.Dense, node.Str("onnx_op", "Gemm"), node.Name, [lowering.Tensor(node.Inputs[0]), packed4, scales4, .. biasInput], [lowering.Tensor(node.Outputs[0])]);
            dense4.SetDense(new DenseAttributes(false, DenseLayout.Nk4, k: int4.K));
            LoweringParts.Activation(dense4, node);
            return;
        }
        if (oneRow && Compress.WeightQuantization.Of(node) is { } quantized)
        {
            // int8 weights [N, K] and a float32 scale per output: y[j] = scale[j]·Σk q[j, k]·x[k] + b[j].
            int q = lowering.Embed(node.Inputs[1], [quantized.N, quantized.K], TensorElement.Int8, (byte[])(Array)quantized.Q.Clone());
            int scales = lowering.Weight(node.Inputs[1] + ".scales", new TensorData([quantized.N], quantized.Scales));
            var dense8 = lowering.AddNode(KernelKind.Dense, node.Str("onnx_op", "Gemm"), node.Name, [lowering.Tensor(node.Inputs[0]), q, scales, .. biasInput], [lowering.Tensor(node.Outputs[0])]);
            dense8.SetDense(new DenseAttributes(false, DenseLayout.Nk8));
            LoweringParts.Activation(dense8, node);
            return;
        }
        // A low-rank half whose rank the panels would pad (rows to 4, columns to 16) keeps its rows as they are: the
        // padding was 4% of LeNet-300-100's factorized bytes, enough to miss the half of float32 that low rank buys.
        bool rows = oneRow && Compress.LowRank.IsHalf(node) && (outN % 4 != 0 || inK % 16 != 0);
        if (rows) packedWeight = lowering.Tensor(node.Inputs[1]);
        else if (oneRow) packedWeight = lowering.Weight(node.Inputs[1] + ".panels4", new TensorData(ArtifactBuilder.PanelShape(outN, inK), ArtifactBuilder.Panels4(weight.Floats, outN, inK)));
        else
        {
            // N padded with zero columns to a multiple of 16 (with a bias of N, padded too), so the
            // last columns are one more vector tile rather than scalar code.
            var bias = node.Inputs.Count > 2 && node.Inputs[2].Length > 0 ? graph[node.Inputs[2]].Constant : null;
            bool pad = outN % 16 != 0 && (bias is null || bias.Count == outN);
            int padN = pad ? (outN + 15) / 16 * 16 : outN;
            var packed = new float[(long)inK * padN];
            for (int j = 0; j < outN; j++)
                for (int p = 0; p < inK; p++) packed[(long)p * padN + j] = weight.Floats[(long)j * inK + p];
            packedWeight = lowering.Weight(node.Inputs[1] + ".kn", new TensorData([inK, padN], packed));
            if (pad && bias is not null)
            {
                var padded = new float[padN];
                Array.Copy(bias.Floats, padded, outN);
                biasInput = [lowering.Weight(node.Inputs[2] + ".padded", new TensorData([padN], padded))];
            }
        }
        int[] inputs = [lowering.Tensor(node.Inputs[0]), packedWeight, .. biasInput];
        var n = lowering.AddNode(KernelKind.Dense, node.Str("onnx_op", "Gemm"), node.Name, inputs, [lowering.Tensor(node.Outputs[0])]);
        n.SetDense(rows ? new DenseAttributes(false, DenseLayout.Nk32) : oneRow ? new DenseAttributes(false, DenseLayout.Panels4, outN, inK) : new DenseAttributes(node.Int("transA", 0) != 0, DenseLayout.Kn));
        LoweringParts.Activation(n, node);
    }

    /// <summary>
    /// Sparse weights (Compress.SparseStorage): the kept values (float32, int8 with a scale per output, or codebook
    /// codes packed to their bits with the codebook after the row counts), the packed index stream, and for
    /// unstructured rows each row's entry count (uint8, or uint16 stored as int16).
    /// </summary>
    static void LowerSparse(Node node, ILowering lowering, Compress.SparseDenseForm form, int[] biasInput)
    {
        var s = form.Weights;
        int values = form.Shared is { } shared ? LoweringParts.SparseCodes(lowering, node.Inputs[1], s, shared)
            : form.Int8Scales is null
            ? lowering.Weight(node.Inputs[1] + ".sparse_values", new TensorData([s.Entries], s.Values))
            : lowering.Embed(node.Inputs[1] + ".sparse_values", [s.Entries], TensorElement.Int8, [.. s.Values.Select(v => (byte)(sbyte)v)]);
        int indices = lowering.Embed(node.Inputs[1] + ".sparse_indices", [(int)s.IndexBytes], TensorElement.UInt8, s.PackedIndices());
        var inputs = new List<int> { lowering.Tensor(node.Inputs[0]), values, indices };
        if (s.Pattern == Compress.SparsePattern.Unstructured) inputs.Add(LoweringParts.SparseCounts(lowering, node.Inputs[1], s));
        if (form.Int8Scales is { } scales) inputs.Add(lowering.Weight(node.Inputs[1] + ".scales", new TensorData([s.Rows], scales)));
        if (form.Shared is { } codebook) inputs.Add(lowering.Weight(node.Inputs[1] + ".codebook", new TensorData([codebook.Codebook.Length], codebook.Codebook)));
        var n = lowering.AddNode(KernelKind.Dense, node.Str("onnx_op", "Gemm"), node.Name, [.. inputs, .. biasInput], [lowering.Tensor(node.Outputs[0])]);
        int codeBits = form.Shared?.Bits ?? 0;
        var format = s.Pattern == Compress.SparsePattern.Unstructured ? new SparseFormat(s.IndexBits, 0, 0, form.Int8Scales is not null, codeBits) : new SparseFormat(s.IndexBits, s.N, s.M, form.Int8Scales is not null, codeBits);
        n.SetDense(new DenseAttributes(false, DenseLayout.Sparse, s.Rows, s.Columns, format));
        LoweringParts.Activation(n, node);
    }
}

/// <summary>The element-wise lowerings: Binary (uint8 Add between int8 layers: AddU8), Unary, ClipRuntime.</summary>
internal static class ElementwiseLowering
{
    public static void Binary(Node node, ILowering lowering)
    {
        if (node.OpType == "Add" && Compress.Int8Quantization.ByteAddOf(node) is { } add)
        {
            // Between int8 layers (Int8Quantization.ByteAddOf): uint8 in, uint8 out, integers only.
            int a = lowering.Tensor(node.Inputs[0]), b = lowering.Tensor(node.Inputs[1]), y = lowering.Tensor(node.Outputs[0]);
            if (!lowering.IsUInt8(a) || !lowering.IsUInt8(b))
                throw new InvalidOperationException($"Add '{node.Name}': a uint8 Add's inputs must be uint8 (the layers before requantize for it)");
            lowering.MarkUInt8(y);
            var u8 = lowering.AddNode(KernelKind.AddU8, "Add", node.Name, [a, b], [y]);
            u8.SetAddU8(new AddU8Attributes(add.A.ZeroPoint, add.B.ZeroPoint, add.Output.ZeroPoint, add.Output.Scale, add.MultiplierA, add.MultiplierB, add.Shift, add.Lo, add.Hi));
            return;
        }
        var n = lowering.AddNode(KernelKind.Binary, node.OpType, node.Name, LoweringParts.Inputs(node, lowering), [lowering.Tensor(node.Outputs[0])]);
        n.SetBinary(new BinaryAttributes(node.OpType, node.Annotations.TryGetValue("bshape", out var bshape) ? ArtifactText.ParseInts(bshape) : null));
        LoweringParts.Activation(n, node);
    }

    public static void Unary(Node node, ILowering lowering)
    {
        if (node.OpType == "Clip" && !node.Annotations.ContainsKey("function"))
        {
            var clip = lowering.AddNode(KernelKind.ClipRuntime, "Clip", node.Name, [.. node.Inputs.Where(i => i.Length > 0).Select(lowering.Tensor)], [lowering.Tensor(node.Outputs[0])]);
            clip.SetClipRuntime(new ClipRuntimeAttributes(node.HasInput(1), node.HasInput(2)));
            return;
        }
        var n = lowering.AddNode(KernelKind.Unary, node.OpType, node.Name, [lowering.Tensor(node.Inputs[0])], [lowering.Tensor(node.Outputs[0])]);
        var (op, alpha, beta) = Activations.Parse(node.Annotations["function"]);
        n.SetUnary(new UnaryAttributes(op, alpha, beta));
    }
}

/// <summary>Pieces several lowerings share: window and activation attributes, an int8 layer's integer weights and requantization.</summary>
internal static class LoweringParts
{
    public static int[] Inputs(Node node, ILowering lowering) => [.. node.Inputs.Where(i => i.Length > 0).Select(lowering.Tensor)];

    public static void Window(ArtifactNode n, WindowGeometry g) => n.SetWindow(new KernelWindow(g.Kernel, g.Strides, g.Dilations, g.Pads));

    public static void Activation(ArtifactNode n, Node node)
    {
        if (node.Annotations.TryGetValue("activation", out var act)) n.SetActivation(ActivationChain.Parse(act));
    }

    public static string Int(long v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// An unstructured sparse layer's entries per row (SparseWeights.CountBytes): uint8 when every row holds fewer than
    /// 256, else uint16 stored as int16 (the kernels read the element type).
    /// </summary>
    public static int SparseCounts(ILowering lowering, string weight, Compress.SparseWeights sparse)
    {
        bool bytes = sparse.ByteCounts;
        var counts = new byte[sparse.Rows * (bytes ? 1 : 2)];
        for (int r = 0; r < sparse.Rows; r++)
        {
            int count = sparse.RowStarts[r + 1] - sparse.RowStarts[r];
            if (bytes) counts[r] = (byte)count;
            else System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(counts.AsSpan(r * 2), checked((ushort)count));
        }
        return lowering.Embed(weight + ".sparse_counts", [sparse.Rows], bytes ? TensorElement.UInt8 : TensorElement.Int16, counts);
    }

    /// <summary>A sparse layer's values as codebook codes (SparseWeights.PackedValues): bytes, <paramref name="shared"/>'s bits a code.</summary>
    public static int SparseCodes(ILowering lowering, string weight, Compress.SparseWeights sparse, Compress.SharedWeights shared)
    {
        var codes = sparse.PackedValues(shared.Bits);
        return lowering.Embed(weight + ".sparse_codes", [codes.Length], TensorElement.UInt8, codes);
    }

    /// <summary>
    /// An int8 layer's per-channel multipliers: float16 ratios of the layer-wide multiplier (attribute
    /// "multiplier"; the kernel forms (float)ratio·multiplier, the evaluator's float) or, without ratios, float32.
    /// </summary>
    public static int MultiplierWeight(ILowering lowering, string name, float[] multipliers, Half[]? ratios)
    {
        if (ratios is null) return lowering.Weight(name, new TensorData([multipliers.Length], multipliers));
        while (lowering.NameTaken(name)) name += "_";
        var data = new byte[ratios.Length * 2];
        for (int i = 0; i < ratios.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(i * 2), ratios[i]);
        return lowering.Embed(name, [ratios.Length], TensorElement.Float16, data);
    }

    /// <summary>
    /// What every int8-arithmetic layer (DenseInt8, ConvInt8, DepthwiseInt8) states: its input's quantization, the
    /// layer-wide multiplier and bias shift, then the requantization (Compress.Requantization) when the layer writes
    /// uint8 for the next int8 layer (its clamp is the fused activation), or else the fused activation.
    /// </summary>
    public static void Int8Layer(ILowering lowering, ArtifactNode n, Node node, Compress.QuantParams input, Half[]? ratios, float layer, int biasShift)
    {
        RequantAttributes? requant = null;
        if (Compress.Int8Quantization.OutputOf(node) is { } r)
        {
            lowering.MarkUInt8(n.Outputs[0]);
            requant = new RequantAttributes(r.Shift, r.Scale, r.Lo, r.Hi, r.Narrow, r.Output.ZeroPoint, r.Output.Scale);
        }
        n.SetInt8Layer(new Int8LayerAttributes(input.Scale, input.ZeroPoint, ratios is null ? null : layer, biasShift, requant));
        if (requant is null) Activation(n, node);
    }

    /// <summary>The float bias of an int8 layer (a constant, or none), which it folds into an integer.</summary>
    public static float[]? BiasOf(ILowering lowering, Node node) => node.HasInput(2) ? lowering.Graph[node.Inputs[2]].Constant!.Floats : null;

    /// <summary>
    /// The biases of an int8 layer in accumulator units, little-endian: int16 when they fit with a small shift
    /// (each folded bias a multiple of 2^shift, AccumulatorBias.Fold), stored shifted right, with the node's
    /// "bias_shift" attribute saying by how much the kernel shifts it back; int32 otherwise, as they are.
    /// </summary>
    public static int AccumulatorBiasWeight(ILowering lowering, string name, int[] values, out int shift)
    {
        bool narrow = Compress.AccumulatorBias.Narrow(values);
        shift = narrow ? Compress.AccumulatorBias.Shift(values) : 0;
        while (lowering.NameTaken(name)) name += "_";
        var data = new byte[values.Length * (narrow ? 2 : 4)];
        for (int i = 0; i < values.Length; i++)
            if (narrow) System.Buffers.Binary.BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(i * 2), checked((short)(values[i] >> shift)));
            else System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(i * 4), values[i]);
        return lowering.Embed(name, [values.Length], narrow ? TensorElement.Int16 : TensorElement.Int32, data);
    }
}
