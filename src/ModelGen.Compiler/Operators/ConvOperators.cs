using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ModelGen.Artifact;

namespace ModelGen.Compiler.Operators;

/// <summary>
/// The resolved 2-D window of a Conv or pooling node: kernel, strides, dilations and explicit pads
/// (auto_pad resolved). 1-D nodes are lifted to 2-D with a height of 1.
/// </summary>
public sealed record WindowGeometry(
    int KernelH, int KernelW, int StrideH, int StrideW, int DilationH, int DilationW,
    int PadTop, int PadLeft, int PadBottom, int PadRight, int InH, int InW, int OutH, int OutW)
{
    public bool HasPadding => PadTop != 0 || PadLeft != 0 || PadBottom != 0 || PadRight != 0;

    /// <summary>The window as the artifact's attributes give it: kernel (h, w), strides, dilations, pads (top, left, bottom, right).</summary>
    public int[] Kernel => [KernelH, KernelW];
    public int[] Strides => [StrideH, StrideW];
    public int[] Dilations => [DilationH, DilationW];
    public int[] Pads => [PadTop, PadLeft, PadBottom, PadRight];

    /// <summary>Per spatial axis (1 to 3 of them): output size, stride, dilation, leading and trailing pad.</summary>
    public sealed record Axes(int[] Kernel, int[] Out, int[] Strides, int[] Dilations, int[] PadBegin, int[] PadEnd, int[] In);

    public static Axes ResolveAxes(Graph graph, Node node, int[] inShape, int[] kernel, bool ceilMode, int maxSpatial)
    {
        int spatial = inShape.Length - 2;
        if (spatial < 1 || spatial > maxSpatial)
            throw new ModelGenException(ErrorCodes.UnsupportedAttribute, graph.ModelPath, $"{node.Describe}, opset {graph.Opset}: input of rank {inShape.Length}; windows of 1 to {maxSpatial} spatial dimensions (rank 3 to {maxSpatial + 2}) are supported");
        if (kernel.Length != spatial)
            throw new ModelGenException(ErrorCodes.ShapeMismatch, graph.ModelPath, $"{node.Describe}: kernel of rank {kernel.Length} for {spatial} spatial dimensions");
        long[] strides = node.Ints("strides") ?? Enumerable.Repeat(1L, spatial).ToArray();
        long[] dilations = node.Ints("dilations") ?? Enumerable.Repeat(1L, spatial).ToArray();
        long[] pads = node.Ints("pads") ?? new long[2 * spatial];
        if (strides.Length != spatial || dilations.Length != spatial || pads.Length != 2 * spatial)
            throw new ModelGenException(ErrorCodes.ShapeMismatch, graph.ModelPath, $"{node.Describe}: strides, dilations and pads must have {spatial}, {spatial} and {2 * spatial} values");
        if (strides.Any(s => s < 1 || s > 1 << 16) || dilations.Any(d => d < 1 || d > 1 << 16) || pads.Any(p => p < 0 || p > 1 << 16) || kernel.Any(k => k < 1))
            throw new ModelGenException(ErrorCodes.UnsupportedAttribute, graph.ModelPath, $"{node.Describe}: strides and dilations must be ≥ 1, pads ≥ 0, kernel ≥ 1");
        string autoPad = node.Str("auto_pad", "NOTSET");
        var outSize = new int[spatial];
        for (int i = 0; i < spatial; i++)
        {
            int input = inShape[2 + i];
            long effective = (kernel[i] - 1) * dilations[i] + 1;
            switch (autoPad)
            {
                case "NOTSET":
                    break;
                case "VALID":
                    pads[i] = pads[i + spatial] = 0;
                    break;
                case "SAME_UPPER":
                case "SAME_LOWER":
                    long outLen = (input + strides[i] - 1) / strides[i];
                    long total = Math.Max(0, (outLen - 1) * strides[i] + effective - input);
                    long small = total / 2;
                    pads[i] = autoPad == "SAME_UPPER" ? small : total - small;
                    pads[i + spatial] = total - pads[i];
                    break;
                default:
                    throw new ModelGenException(ErrorCodes.UnsupportedAttribute, graph.ModelPath, $"{node.Describe}: auto_pad '{autoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
            }
            long span = input + pads[i] + pads[i + spatial] - effective;
            if (span < 0)
                throw new ModelGenException(ErrorCodes.ShapeMismatch, graph.ModelPath, $"{node.Describe}: the window ({effective}) is larger than the padded input ({input + pads[i] + pads[i + spatial]})");
            long o = ceilMode ? (span + strides[i] - 1) / strides[i] + 1 : span / strides[i] + 1;
            // With ceil_mode the last window must start inside the input or its leading pad.
            if (ceilMode && (o - 1) * strides[i] >= input + pads[i]) o--;
            outSize[i] = (int)o;
        }
        return new Axes(kernel, outSize, [.. strides.Select(v => (int)v)], [.. dilations.Select(v => (int)v)],
            [.. pads.Take(spatial).Select(v => (int)v)], [.. pads.Skip(spatial).Select(v => (int)v)], inShape[2..]);
    }

    public static WindowGeometry Resolve(Graph graph, Node node, int[] inShape, int[] kernel, bool ceilMode)
    {
        var a = ResolveAxes(graph, node, inShape, kernel, ceilMode, 2);
        int spatial = inShape.Length - 2;
        int[] outSize = a.Out;
        int[] strides = a.Strides, dilations = a.Dilations;
        int[] pads = [.. a.PadBegin, .. a.PadEnd];
        if (spatial == 1)
            return new WindowGeometry(1, kernel[0], 1, (int)strides[0], 1, (int)dilations[0], 0, (int)pads[0], 0, (int)pads[1], 1, inShape[2], 1, outSize[0]);
        return new WindowGeometry(kernel[0], kernel[1], (int)strides[0], (int)strides[1], (int)dilations[0], (int)dilations[1],
            (int)pads[0], (int)pads[1], (int)pads[2], (int)pads[3], inShape[2], inShape[3], outSize[0], outSize[1]);
    }

    public int[] OutputShape(int batch, int channels, int spatial) =>
        spatial == 1 ? [batch, channels, OutW] : [batch, channels, OutH, OutW];
}

/// <summary>Conv: y = x ⋆ w + b, with groups, pads (or auto_pad), strides and dilations.</summary>
public sealed class ConvOperator() : Operator("Conv")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.ConvRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 2, 3);
        RejectAttributes(graph, node, "auto_pad", "dilations", "group", "kernel_shape", "pads", "strides");
        var (x, w) = (ShapeOf(graph, node, 0), ShapeOf(graph, node, 1));
        if (w.Length != x.Length)
            throw Error(graph, node, $"weight rank {w.Length} differs from input rank {x.Length}");
        long group = node.Int("group", 1);
        if (group < 1 || x[1] % group != 0 || w[0] % group != 0 || w[1] * group != x[1])
            throw Error(graph, node, $"group {group} does not fit {x[1]} input channels and weight [{string.Join(",", w)}]");
        if (node.HasInput(2) && !ShapeOf(graph, node, 2).SequenceEqual([w[0]]))
            throw Error(graph, node, $"bias must have shape [{w[0]}]");
        var kernel = w[2..];
        if (node.Ints("kernel_shape") is { } ks && !ks.Select(k => (int)k).SequenceEqual(kernel))
            throw Error(graph, node, "kernel_shape disagrees with the weight's shape");
        var geo = WindowGeometry.Resolve(graph, node, x, kernel, ceilMode: false);
        SetOutput(graph, node, 0, geo.OutputShape(x[0], w[0], x.Length - 2));
    }

    public override void Lower(Node node, ILowering lowering) => Plan.ConvLowering.Lower(node, lowering);

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!; var w = inputs[1]!; var b = inputs.Length > 2 ? inputs[2] : null;
        var geo = Geometry(node, x.Shape, w.Shape);
        int n = x.Shape[0], c = x.Shape[1], m = w.Shape[0], group = (int)node.Int("group", 1);
        int cPerGroup = c / group, mPerGroup = m / group;
        int cols = geo.OutH * geo.OutW;
        var y = new float[(long)n * m * cols];
        // Each output's sum in double, the bias first, then the taps in (channel, row, column) order; a plane of
        // sums at a time so the innermost loop walks a row of input and a row of output.
        var sums = new double[cols];
        for (int ni = 0; ni < n; ni++)
        for (int mi = 0; mi < m; mi++)
        {
            int g = mi / mPerGroup;
            Array.Fill(sums, b is null ? 0 : b.Floats[mi]);
            for (int ci = 0; ci < cPerGroup; ci++)
            for (int kh = 0; kh < geo.KernelH; kh++)
            for (int kw = 0; kw < geo.KernelW; kw++)
            {
                double weight = w.Floats[(((long)mi * cPerGroup + ci) * geo.KernelH + kh) * geo.KernelW + kw];
                long plane = ((long)ni * c + g * cPerGroup + ci) * geo.InH;
                // The output columns whose input column is inside the row: [owFirst, owEnd).
                int shift = kw * geo.DilationW - geo.PadLeft;
                int owFirst = shift >= 0 ? 0 : (-shift + geo.StrideW - 1) / geo.StrideW;
                int owEnd = Math.Min(geo.OutW, shift >= geo.InW ? 0 : (geo.InW - 1 - shift) / geo.StrideW + 1);
                for (int oh = 0; oh < geo.OutH; oh++)
                {
                    int ih = oh * geo.StrideH - geo.PadTop + kh * geo.DilationH;
                    if (ih < 0 || ih >= geo.InH) continue;
                    long row = (plane + ih) * geo.InW + shift;
                    int ow = owFirst, at = oh * geo.OutW;
                    // Stride 1: 8 columns at a time, each sum still its own product added in double (no FMA), so the same bits.
                    if (geo.StrideW == 1 && Vector256.IsHardwareAccelerated)
                    {
                        var w8 = Vector256.Create(weight);
                        ref float xs = ref MemoryMarshal.GetArrayDataReference(x.Floats);
                        ref double ss = ref MemoryMarshal.GetArrayDataReference(sums);
                        for (; ow + 8 <= owEnd; ow += 8)
                        {
                            var v = Vector256.LoadUnsafe(ref xs, (nuint)(row + ow));
                            ref double s = ref Unsafe.Add(ref ss, at + ow);
                            Vector256.StoreUnsafe(Vector256.LoadUnsafe(ref s) + Vector256.WidenLower(v) * w8, ref s);
                            Vector256.StoreUnsafe(Vector256.LoadUnsafe(ref s, 4) + Vector256.WidenUpper(v) * w8, ref s, 4);
                        }
                    }
                    for (; ow < owEnd; ow++) sums[at + ow] += x.Floats[row + (long)ow * geo.StrideW] * weight;
                }
            }
            for (int i = 0; i < cols; i++) y[((long)ni * m + mi) * cols + i] = (float)sums[i];
        }
        return [new TensorData(geo.OutputShape(n, m, x.Shape.Length - 2), y)];
    }

    /// <summary>Geometry from shapes alone (the node is already validated).</summary>
    internal static WindowGeometry Geometry(Node node, int[] x, int[] w) =>
        WindowGeometry.Resolve(new Graph(), node, x, w[2..], ceilMode: false);
}

/// <summary>MaxPool: the maximum over each window; padding never wins (it counts as −∞).</summary>
public sealed class MaxPoolOperator() : Operator("MaxPool")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.PoolRule(average: false);

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 1, 1);
        RejectAttributes(graph, node, "auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides");
        if (node.Outputs.Count > 1 && node.Outputs[1].Length > 0)
            throw Error(graph, node, "the Indices output is not supported", ErrorCodes.UnsupportedAttribute);
        var x = ShapeOf(graph, node, 0);
        if (x.Length == 5)
        {
            SetOutput(graph, node, 0, Pool3D.OutputShape(graph, node, x));
            return;
        }
        var geo = Geometry(graph, node, x);
        SetOutput(graph, node, 0, geo.OutputShape(x[0], x[1], x.Length - 2));
    }

    public override void Lower(Node node, ILowering lowering)
    {
        if (lowering.Graph[node.Inputs[0]].Shape!.Length == 5) Pool3D.Lower(node, lowering, average: false);
        else Plan.MaxPoolLowering.Lower(node, lowering);
    }

    internal static WindowGeometry Geometry(Graph graph, Node node, int[] x)
    {
        var kernel = node.Ints("kernel_shape") ?? throw Error(graph, node, "kernel_shape is required", ErrorCodes.InvalidGraph);
        return WindowGeometry.Resolve(graph, node, x, [.. kernel.Select(k => (int)Math.Clamp(k, 0, 1 << 16))], node.Int("ceil_mode", 0) != 0);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        return [x.Shape.Length == 5 ? Pool3D.Evaluate(node, x, average: false) : Evaluate2D(node, x, average: false)];
    }

    /// <summary>The reference 2-D pool: the maximum or (AveragePool) the mean of each window's taps inside the input.</summary>
    internal static TensorData Evaluate2D(Node node, TensorData x, bool average)
    {
        var geo = Geometry(new Graph(), node, x.Shape);
        bool includePad = node.Int("count_include_pad", 0) != 0;
        int n = x.Shape[0], c = x.Shape[1];
        var y = new float[(long)n * c * geo.OutH * geo.OutW];
        for (int nc = 0; nc < n * c; nc++)
        for (int oh = 0; oh < geo.OutH; oh++)
        for (int ow = 0; ow < geo.OutW; ow++)
        {
            double acc = average ? 0 : double.NegativeInfinity;
            for (int kh = 0; kh < geo.KernelH; kh++)
            {
                int ih = oh * geo.StrideH - geo.PadTop + kh * geo.DilationH;
                if (ih < 0 || ih >= geo.InH) continue;
                for (int kw = 0; kw < geo.KernelW; kw++)
                {
                    int iw = ow * geo.StrideW - geo.PadLeft + kw * geo.DilationW;
                    if (iw < 0 || iw >= geo.InW) continue;
                    float v = x.Floats[((long)nc * geo.InH + ih) * geo.InW + iw];
                    acc = average ? acc + v : Math.Max(acc, v);
                }
            }
            y[((long)nc * geo.OutH + oh) * geo.OutW + ow] = (float)(average ? acc / AveragePoolOperator.Divisor(geo, includePad, oh, ow) : acc);
        }
        return new TensorData(geo.OutputShape(n, c, x.Shape.Length - 2), y);
    }
}

/// <summary>
/// AveragePool: the mean over each window. With count_include_pad the divisor counts padding up to
/// the padded input's edge (what ONNX Runtime does under ceil_mode too); without, only real pixels.
/// </summary>
public sealed class AveragePoolOperator() : Operator("AveragePool")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.PoolRule(average: true);

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 1, 1);
        RejectAttributes(graph, node, "auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides", "dilations");
        var x = ShapeOf(graph, node, 0);
        if (x.Length == 5)
        {
            SetOutput(graph, node, 0, Pool3D.OutputShape(graph, node, x));
            return;
        }
        var geo = MaxPoolOperator.Geometry(graph, node, x);
        SetOutput(graph, node, 0, geo.OutputShape(x[0], x[1], x.Length - 2));
    }

    /// <summary>
    /// The divisor of output (oh, ow): the window's taps inside the input, or (count_include_pad) inside
    /// the padded input up to its far edge. Shared by the evaluator and (as the same loop) the kernel.
    /// </summary>
    public static int Divisor(WindowGeometry g, bool includePad, int oh, int ow) =>
        Pool3D.Taps(oh * g.StrideH - g.PadTop, g.KernelH, g.DilationH, g.InH, g.PadBottom, includePad)
             * Pool3D.Taps(ow * g.StrideW - g.PadLeft, g.KernelW, g.DilationW, g.InW, g.PadRight, includePad);

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        return [x.Shape.Length == 5 ? Pool3D.Evaluate(node, x, average: true) : MaxPoolOperator.Evaluate2D(node, x, average: true)];
    }

    public override void Lower(Node node, ILowering lowering)
    {
        if (lowering.Graph[node.Inputs[0]].Shape!.Length == 5)
        {
            Pool3D.Lower(node, lowering, average: true);
            return;
        }
        var geo = MaxPoolOperator.Geometry(lowering.Graph, node, lowering.Graph[node.Inputs[0]].Shape!);
        int x = lowering.Tensor(node.Inputs[0]), y = lowering.Tensor(node.Outputs[0]);
        var n = lowering.AddNode(KernelKind.AveragePool, "AveragePool", node.Name, [x], [y]);
        int? zero = null;
        if (lowering.IsUInt8(x) && node.Form is Compress.ByteAverageForm { Params: var bytes })
        {
            // uint8 in (the layer before requantized for the layer after), uint8 out with the same parameters.
            lowering.MarkUInt8(y);
            zero = bytes.ZeroPoint;
        }
        Plan.LoweringParts.Window(n, geo);
        n.SetAveragePool(new AveragePoolAttributes(node.Int("count_include_pad", 0) != 0, zero));
    }
}

/// <summary>
/// MaxPool and AveragePool over three spatial axes (N, C, D, H, W): the same windows, pads, dilations,
/// ceil_mode and divisor rules as the 2-D ones, one axis more.
/// </summary>
internal static class Pool3D
{
    static WindowGeometry.Axes Axes(Graph graph, Node node, int[] x)
    {
        var kernel = node.Ints("kernel_shape") ?? throw new ModelGenException(ErrorCodes.InvalidGraph, graph.ModelPath, $"{node.Describe}: kernel_shape is required");
        return WindowGeometry.ResolveAxes(graph, node, x, [.. kernel.Select(k => (int)Math.Clamp(k, 0, 1 << 16))], node.Int("ceil_mode", 0) != 0, 3);
    }

    public static int[] OutputShape(Graph graph, Node node, int[] x)
    {
        if (node.OpType == "MaxPool" && node.Outputs.Count > 1 && node.Outputs[1].Length > 0)
            throw new ModelGenException(ErrorCodes.UnsupportedAttribute, graph.ModelPath, $"{node.Describe}: the Indices output is not supported");
        return [x[0], x[1], .. Axes(graph, node, x).Out];
    }

    /// <summary>Taps of one axis inside the input, or (count_include_pad) inside the padded input up to its far edge (2-D and 3-D pools).</summary>
    internal static int Taps(int start, int kernel, int dilation, int size, int padEnd, bool includePad)
    {
        int count = 0;
        for (int k = 0; k < kernel; k++)
        {
            int i = start + k * dilation;
            if (includePad ? i < size + padEnd : i >= 0 && i < size) count++;
        }
        return count;
    }

    public static TensorData Evaluate(Node node, TensorData x, bool average)
    {
        var a = Axes(new Graph(), node, x.Shape);
        bool includePad = node.Int("count_include_pad", 0) != 0;
        int planes = x.Shape[0] * x.Shape[1];
        int[] o = a.Out, i = a.In;
        var y = new float[(long)planes * o[0] * o[1] * o[2]];
        long at = 0;
        for (int p = 0; p < planes; p++)
        for (int od = 0; od < o[0]; od++)
        for (int oh = 0; oh < o[1]; oh++)
        for (int ow = 0; ow < o[2]; ow++)
        {
            int[] start = [od * a.Strides[0] - a.PadBegin[0], oh * a.Strides[1] - a.PadBegin[1], ow * a.Strides[2] - a.PadBegin[2]];
            double sum = 0;
            float max = float.NegativeInfinity;
            for (int kd = 0; kd < a.Kernel[0]; kd++)
            for (int kh = 0; kh < a.Kernel[1]; kh++)
            for (int kw = 0; kw < a.Kernel[2]; kw++)
            {
                int d = start[0] + kd * a.Dilations[0], h = start[1] + kh * a.Dilations[1], w = start[2] + kw * a.Dilations[2];
                if (d < 0 || d >= i[0] || h < 0 || h >= i[1] || w < 0 || w >= i[2]) continue;
                float v = x.Floats[(((long)p * i[0] + d) * i[1] + h) * i[2] + w];
                sum += v;
                if (v > max || float.IsNaN(v)) max = v;
            }
            int divisor = Taps(start[0], a.Kernel[0], a.Dilations[0], i[0], a.PadEnd[0], includePad)
                        * Taps(start[1], a.Kernel[1], a.Dilations[1], i[1], a.PadEnd[1], includePad)
                        * Taps(start[2], a.Kernel[2], a.Dilations[2], i[2], a.PadEnd[2], includePad);
            y[at++] = average ? (float)(sum / divisor) : max;
        }
        return new TensorData([x.Shape[0], x.Shape[1], .. o], y);
    }

    public static void Lower(Node node, ILowering lowering, bool average)
    {
        var x = lowering.Graph[node.Inputs[0]].Shape!;
        if (x.Length != 5) throw new InvalidOperationException("2-D pools lower in ArtifactBuilder");
        var a = Axes(lowering.Graph, node, x);
        var k = lowering.AddNode(KernelKind.Pool3D, node.OpType, node.Name, [lowering.Tensor(node.Inputs[0])], [lowering.Tensor(node.Outputs[0])]);
        k.SetPool3D(new Pool3DAttributes(a.Kernel, a.Strides, a.Dilations, a.PadBegin, a.PadEnd, average, countPad: node.Int("count_include_pad", 0) != 0));
    }
}
