using System.Runtime.Intrinsics;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// A 2-D convolution (any group, depthwise included) in int8 arithmetic: its input quantized to uint8
/// with the calibrated <see cref="Input"/> parameters, its weights int8 symmetric per output channel,
/// int32 sums, then one float32 multiply-add per output:
/// y[m, p] = (Σ xq·q[m, ·] + bias[m])·Multipliers[m], Multipliers[m] = sx·sw[m], bias the
/// <see cref="AccumulatorBias"/> (the float bias in accumulator units, less zx·Σq). Padding reads the zero
/// point, which that bias takes out again, so it counts as 0 exactly.
/// The weights are laid out as the kernel reads them: row m holds (c, i, j) with each kernel row j
/// padded with zero weights to <see cref="PaddedKernelW"/>, a multiple of 4, so that four taps are four
/// neighbouring input bytes (one 32-bit load, one VNNI lane). <see cref="Apply"/> is the emitted
/// kernel's arithmetic, operation for operation.
/// </summary>
public sealed record Int8Conv(QuantParams Input, sbyte[] Q, int[] RowSums, float[] Multipliers, int M, int ChannelsPerGroup, int KernelH, int KernelW) : IInt8Layer
{
    /// <summary>
    /// A depthwise convolution with its own kernel (DepthwiseInt8: one channel at a time, taps summed
    /// exactly in float32), whose weights are the plain [M, kH·kW], no row padded.
    /// </summary>
    public bool Depthwise { get; init; }

    /// <summary>The multipliers as float16 ratios of <see cref="LayerMultiplier"/> (see <see cref="ChannelScales"/>); null: float32.</summary>
    public Half[]? MultiplierRatios { get; init; }

    /// <summary>Multipliers[m] = (float)MultiplierRatios[m]·LayerMultiplier, in float32.</summary>
    public float LayerMultiplier { get; init; }

    /// <summary>A kernel row padded with zero weights to a whole number of 4-byte groups (as is, depthwise).</summary>
    public int PaddedKernelW => Depthwise ? KernelW : (KernelW + 3) / 4 * 4;

    /// <summary>
    /// Whether a Conv takes the depthwise int8 kernel: one input channel per output channel, 2-D, equal
    /// strides of 1 or 2 (the shapes ArtifactBuilder.DepthwisePlane lays out), and few enough taps that
    /// every sum of products stays below 2^24 (exact in float32).
    /// </summary>
    public static bool HasDepthwiseKernel(Graph graph, Node node)
    {
        var x = graph[node.Inputs[0]].Shape;
        var w = graph[node.Inputs[1]].Constant?.Shape;
        var y = graph[node.Outputs[0]].Shape;
        if (x is null || w is null || y is null || x.Length != 4 || w.Length != 4) return false;
        long group = node.Int("group", 1);
        if (w[1] != 1 || w[0] != group || w[0] != x[1]) return false;
        if ((long)w[2] * w[3] * 255 * 127 >= 1 << 24) return false;
        return Plan.ArtifactBuilder.DepthwisePlane(ConvOperator.Geometry(node, x, w), x, y) is not null;
    }

    /// <summary>
    /// 1x1 kernels group four input channels instead (padding each one-tap row to four would make the
    /// weights as large as float32's): row m holds channel c at c, padded to a multiple of 4.
    /// </summary>
    public bool ChannelPacked => !Depthwise && KernelH == 1 && KernelW == 1;

    /// <summary>Weights per output channel in the kernel's layout (a multiple of 4).</summary>
    public int RowLength => ChannelPacked ? (ChannelsPerGroup + 3) / 4 * 4 : ChannelsPerGroup * KernelH * PaddedKernelW;

    /// <summary>Where tap (channel, i, j) of an output channel's row is in the kernel's layout.</summary>
    public int Index(int channel, int i, int j) => ChannelPacked ? channel : (channel * KernelH + i) * PaddedKernelW + j;

    /// <summary>Quantizes W [M, C/group, kH, kW] per output channel (symmetric, ±127) for input parameters <paramref name="input"/>.</summary>
    public static Int8Conv Quantize(QuantParams input, TensorData w, bool depthwise = false)
    {
        int m = w.Shape[0], cpg = w.Shape[1], kh = w.Shape[2], kw = w.Shape[3];
        int taps = cpg * kh * kw;
        var layout = new Int8Conv(input, [], [], [], m, cpg, kh, kw) { Depthwise = depthwise };
        int row = layout.RowLength;
        var q = new sbyte[(long)m * row];
        var rowSums = new int[m];
        var values = new sbyte[taps];
        var scales = ChannelScales.For(input.Scale, [.. Enumerable.Range(0, m).Select(o => SymmetricInt8.Scale(w.Floats.AsSpan((int)((long)o * taps), taps)))]);
        for (int o = 0; o < m; o++)
        {
            SymmetricInt8.Quantize(w.Floats.AsSpan((int)((long)o * taps), taps), values, scales.WeightScales[o]);
            for (int ch = 0; ch < cpg; ch++)
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++)
                    {
                        sbyte v = values[(ch * kh + i) * kw + j];
                        q[(long)o * row + layout.Index(ch, i, j)] = v;
                        rowSums[o] += v;
                    }
        }
        return layout with { Q = q, RowSums = rowSums, Multipliers = scales.Multipliers, MultiplierRatios = scales.Ratios, LayerMultiplier = scales.Layer };
    }

    /// <summary>The float32 weights the int8 ones stand for (q·sw, sw = multiplier / sx), in ONNX's [M, C/group, kH, kW].</summary>
    public float[] Dequantized()
    {
        var w = new float[(long)M * ChannelsPerGroup * KernelH * KernelW];
        for (int o = 0; o < M; o++)
        {
            float scale = Multipliers[o] / Input.Scale;
            for (int ci = 0; ci < ChannelsPerGroup * KernelH; ci++)
                for (int j = 0; j < KernelW; j++)
                    w[((long)o * ChannelsPerGroup * KernelH + ci) * KernelW + j] = Q[(long)o * RowLength + Index(ci / KernelH, ci % KernelH, j)] * scale;
        }
        return w;
    }

    /// <summary>The int8 values in ONNX's [M, C/group, kH, kW] (the kernel's padding dropped).</summary>
    public sbyte[] OnnxLayout()
    {
        var q = new sbyte[(long)M * ChannelsPerGroup * KernelH * KernelW];
        for (int o = 0; o < M; o++)
            for (int ci = 0; ci < ChannelsPerGroup * KernelH; ci++)
                for (int j = 0; j < KernelW; j++)
                    q[((long)o * ChannelsPerGroup * KernelH + ci) * KernelW + j] = Q[(long)o * RowLength + Index(ci / KernelH, ci % KernelH, j)];
        return q;
    }

    /// <summary>The per-channel integer the kernel adds (the float bias, if any, folded in).</summary>
    public int[] Bias(float[]? bias) => AccumulatorBias.Fold(bias, Input.ZeroPoint, RowSums, Multipliers);

    /// <summary>x [N, C, H, W] → y [N, M, OH, OW]; with <paramref name="output"/>, the uint8 outputs (as their real values).</summary>
    public float[] Apply(float[] x, int[] xShape, WindowGeometry geo, int group, float[]? bias, Requantization? output = null)
    {
        var integer = output is null ? null : Multipliers.Select(output.Multiplier).ToArray();
        int n = xShape[0], c = xShape[1], h = xShape[2], wd = xShape[3];
        int mpg = M / group, cols = geo.OutH * geo.OutW;
        // The input quantized into planes with zero-point borders, as the kernel does: padding reads the zero point.
        int ph = h + geo.PadTop + geo.PadBottom, pw = wd + geo.PadLeft + geo.PadRight;
        var plane = new byte[(long)c * ph * pw];
        var y = new float[(long)n * M * cols];
        var acc = new int[cols];
        var folded = Bias(bias);
        for (int image = 0; image < n; image++)
        {
            Array.Fill(plane, (byte)Input.ZeroPoint);
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < wd; j++)
                        plane[((long)ch * ph + i + geo.PadTop) * pw + j + geo.PadLeft] = Input.Quantize(x[(((long)image * c + ch) * h + i) * wd + j]);
            for (int o = 0; o < M; o++)
            {
                int g = o / mpg;
                Array.Clear(acc);
                for (int ci = 0; ci < ChannelsPerGroup; ci++)
                    for (int i = 0; i < KernelH; i++)
                        for (int j = 0; j < KernelW; j++)
                        {
                            int q = Q[(long)o * RowLength + Index(ci, i, j)];
                            long channel = (long)(g * ChannelsPerGroup + ci) * ph;
                            var q8 = Vector256.Create(q);
                            for (int oy = 0; oy < geo.OutH; oy++)
                            {
                                long row = (channel + oy * geo.StrideH + i * geo.DilationH) * pw + j * geo.DilationW;
                                int ox = 0, at = oy * geo.OutW;
                                // Stride 1: 16 columns at a time (integer sums: any order gives the same).
                                if (geo.StrideW == 1 && Vector256.IsHardwareAccelerated)
                                    for (; ox + 16 <= geo.OutW; ox += 16)
                                    {
                                        var (lo, hi) = Vector128.Widen(Vector128.LoadUnsafe(ref plane[row + ox]));
                                        var words = Vector256.Create(lo, hi);
                                        ref int s = ref acc[at + ox];
                                        Vector256.StoreUnsafe(Vector256.LoadUnsafe(ref s) + Vector256.AsInt32(Vector256.WidenLower(words)) * q8, ref s);
                                        Vector256.StoreUnsafe(Vector256.LoadUnsafe(ref s, 8) + Vector256.AsInt32(Vector256.WidenUpper(words)) * q8, ref s, 8);
                                    }
                                for (; ox < geo.OutW; ox++) acc[at + ox] += plane[row + ox * geo.StrideW] * q;
                            }
                        }
                for (int p = 0; p < cols; p++)
                    y[((long)image * M + o) * cols + p] = output is null ? (acc[p] + folded[o]) * Multipliers[o] : output.Output.Dequantize(output.Apply(acc[p] + folded[o], integer![o]));
            }
        }
        return y;
    }
}
