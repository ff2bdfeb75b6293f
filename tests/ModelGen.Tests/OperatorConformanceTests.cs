using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// Every operator of issue 2 over a grid of attributes, shapes and broadcasting cases: each ONNX model
/// is compiled through the source generator and its outputs compared with ONNX Runtime's (1e-4
/// relative). The reference evaluator is held to the same bar.
/// </summary>
public sealed class OperatorConformanceTests : ConformanceTests
{

    static float[] R(int n, int seed) => OnnxBuilder.Random(n, seed);
    static int Size(int[] s) => s.Aggregate(1, (a, b) => a * b);

    static ConformanceCase Conv(string name, int[] x, int[] w, bool bias, params (string, object)[] attrs)
    {
        var b = new OnnxBuilder().Input("x", [.. x.Select(d => (int?)d)]).Initializer("w", w, R(Size(w), 2));
        if (bias) b.Initializer("b", [w[0]], R(w[0], 3));
        b.Node("Conv", bias ? ["x", "w", "b"] : ["x", "w"], ["y"], attrs).Output("y");
        return new ConformanceCase(name, b, [("x", x)]);
    }

    static ConformanceCase Unary(string name, string op, int[] x, long opset = 13, params (string, object)[] attrs) =>
        new(name, new OnnxBuilder(opset).Input("x", [.. x.Select(d => (int?)d)]).Node(op, ["x"], ["y"], attrs).Output("y"), [("x", x)]);

    static ConformanceCase Gemm(string name, int[] a, int[] bShape, int[]? c, params (string, object)[] attrs)
    {
        var b = new OnnxBuilder().Input("a", [.. a.Select(d => (int?)d)]).Initializer("B", bShape, R(Size(bShape), 5));
        if (c is not null) b.Initializer("C", c, R(Math.Max(1, Size(c)), 6));
        b.Node("Gemm", c is null ? ["a", "B"] : ["a", "B", "C"], ["y"], attrs).Output("y");
        return new ConformanceCase(name, b, [("a", a)]);
    }

    static ConformanceCase Binary(string name, string op, int[] a, int[] b, bool bConst = false)
    {
        var m = new OnnxBuilder().Input("a", [.. a.Select(d => (int?)d)]);
        if (bConst) m.Initializer("b", b, R(Math.Max(1, Size(b)), 7));
        else m.Input("b", [.. b.Select(d => (int?)d)]);
        m.Node(op, ["a", "b"], ["y"]).Output("y");
        return new ConformanceCase(name, m, bConst ? [("a", a)] : [("a", a), ("b", b)]);
    }

    public static readonly ConformanceCase[] All =
    [
        Conv("ConvBasic", [1, 3, 8, 8], [4, 3, 3, 3], true),
        Conv("ConvNoBias", [1, 3, 8, 8], [4, 3, 3, 3], false),
        Conv("ConvPadStride", [1, 2, 9, 9], [3, 2, 3, 3], true, ("pads", new[] { 1, 1, 1, 1 }), ("strides", new[] { 2, 2 })),
        Conv("ConvAsymmetricPads", [1, 2, 6, 7], [2, 2, 3, 2], true, ("pads", new[] { 0, 1, 2, 1 })),
        Conv("ConvDilation", [1, 2, 10, 10], [2, 2, 3, 3], true, ("dilations", new[] { 2, 2 })),
        Conv("ConvDepthwise", [1, 3, 8, 8], [3, 1, 3, 3], true, ("group", 3), ("pads", new[] { 1, 1, 1, 1 })),
        // The depthwise kernels: strips of rows (a last strip overlapping the one before, stride 2 as the even
        // lanes of two loads, no pads, two images, a depth multiplier of 2); 5x5 with dilation and stride 3
        // (the kernels with a padded copy and with edge columns one by one).
        Conv("ConvDepthwiseWide", [1, 4, 5, 31], [4, 1, 3, 3], true, ("group", 4), ("pads", new[] { 1, 1, 1, 1 })),
        Conv("ConvDepthwiseStride2", [2, 3, 9, 70], [3, 1, 3, 3], true, ("group", 3), ("pads", new[] { 1, 1, 1, 1 }), ("strides", new[] { 2, 2 })),
        Conv("ConvDepthwiseStride2NoPad", [1, 2, 8, 41], [2, 1, 3, 3], false, ("group", 2), ("strides", new[] { 2, 2 })),
        Conv("ConvDepthwise5x5Dilated", [1, 2, 12, 30], [2, 1, 5, 5], true, ("group", 2), ("pads", new[] { 4, 4, 4, 4 }), ("dilations", new[] { 2, 2 })),
        Conv("ConvDepthwiseStride3", [1, 2, 10, 40], [2, 1, 3, 3], true, ("group", 2), ("strides", new[] { 3, 3 })),
        Conv("ConvDepthMultiplier2", [1, 3, 8, 20], [6, 1, 3, 3], true, ("group", 3), ("pads", new[] { 1, 1, 1, 1 })),
        new ConformanceCase("ConvDepthwiseSigmoid", new OnnxBuilder().Input("x", 1, 3, 6, 40).Initializer("w", [3, 1, 3, 3], R(27, 2)).Initializer("b", [3], R(3, 3))
            .Node("Conv", ["x", "w", "b"], ["c"], ("group", 3), ("pads", new[] { 1, 1, 1, 1 })).Node("Sigmoid", ["c"], ["y"]).Output("y"), [("x", [1, 3, 6, 40])]),
        // The strips' edges: loads that would leave a plane of 18 (moved in and shuffled back), 5x5 (five rows in
        // flight), asymmetric pads, vertical-only and horizontal-only stride 2, rows of 7 (Vector256) and 3
        // (Vector128), pads wider than the kernel reach (whole rows and columns of padding), one input channel
        // feeding 8 filters (a first layer), a multiplier with stride 2 and two images.
        Conv("ConvDepthwiseTinyPlane", [1, 2, 2, 9], [2, 1, 3, 3], true, ("group", 2), ("pads", new[] { 1, 1, 1, 1 })),
        Conv("ConvDepthwise5x5", [1, 3, 11, 23], [3, 1, 5, 5], true, ("group", 3), ("pads", new[] { 2, 2, 2, 2 })),
        Conv("ConvDepthwiseAsymmetricPads", [1, 2, 7, 19], [2, 1, 3, 3], true, ("group", 2), ("pads", new[] { 0, 2, 2, 1 })),
        Conv("ConvDepthwiseRowStride2", [1, 2, 9, 17], [2, 1, 3, 3], true, ("group", 2), ("pads", new[] { 1, 1, 1, 1 }), ("strides", new[] { 2, 1 })),
        Conv("ConvDepthwiseColumnStride2", [1, 2, 6, 33], [2, 1, 3, 3], true, ("group", 2), ("pads", new[] { 1, 1, 1, 1 }), ("strides", new[] { 1, 2 })),
        Conv("ConvDepthwiseRowsOf7", [1, 4, 14, 14], [4, 1, 3, 3], true, ("group", 4), ("pads", new[] { 1, 1, 1, 1 }), ("strides", new[] { 2, 2 })),
        Conv("ConvDepthwiseRowsOf3", [1, 2, 4, 3], [2, 1, 3, 3], false, ("group", 2), ("pads", new[] { 1, 1, 1, 1 })),
        Conv("ConvDepthwiseWidePads", [1, 2, 5, 6], [2, 1, 3, 3], true, ("group", 2), ("pads", new[] { 3, 3, 3, 3 })),
        Conv("ConvOneChannelEightFilters", [1, 1, 12, 28], [8, 1, 3, 3], true, ("pads", new[] { 1, 1, 1, 1 })),
        Conv("ConvDepthMultiplierStride2", [2, 2, 9, 20], [6, 1, 3, 3], true, ("group", 2), ("pads", new[] { 1, 1, 1, 1 }), ("strides", new[] { 2, 2 })),
        // TensorFlow's "same" padding before a stride-2 depthwise convolution, as a Pad node folded into the Conv's pads.
        new ConformanceCase("ZeroPadThenDepthwiseStride2", new OnnxBuilder().Input("x", 1, 3, 16, 17).Initializer("pads", [0L, 0, 0, 0, 0, 0, 1, 1])
            .Initializer("w", [3, 1, 3, 3], R(27, 2)).Initializer("b", [3], R(3, 3))
            .Node("Pad", ["x", "pads"], ["p"]).Node("Conv", ["p", "w", "b"], ["y"], ("group", 3), ("strides", new[] { 2, 2 })).Output("y"), [("x", [1, 3, 16, 17])]),
        Conv("ConvGroup2", [1, 4, 6, 6], [6, 2, 3, 3], true, ("group", 2)),
        // Kernels too wide to unroll (the patch gather loops over their columns) and depthwise kernels of too
        // many taps for the depthwise kernels (they take the GEMM): padded, strided, dilated.
        Conv("ConvKernel1x20Padded", [1, 2, 3, 40], [3, 2, 1, 20], true, ("pads", new[] { 0, 5, 0, 7 })),
        Conv("ConvKernel3x17Stride2Dilated", [1, 1, 9, 60], [2, 1, 3, 17], true, ("pads", new[] { 1, 9, 1, 2 }), ("strides", new[] { 2, 3 }), ("dilations", new[] { 1, 2 })),
        Conv("ConvKernel1x24WiderThanInput", [1, 1, 2, 10], [2, 1, 1, 24], false, ("pads", new[] { 0, 8, 0, 8 })),
        Conv("ConvDepthwise9x9", [1, 3, 12, 14], [3, 1, 9, 9], true, ("group", 3), ("pads", new[] { 4, 4, 4, 4 })),
        Conv("ConvSameUpper", [1, 2, 7, 7], [3, 2, 5, 5], true, ("auto_pad", "SAME_UPPER"), ("strides", new[] { 2, 2 })),
        Conv("ConvSameLower", [1, 2, 6, 6], [3, 2, 4, 4], true, ("auto_pad", "SAME_LOWER")),
        Conv("ConvValid", [1, 2, 7, 7], [3, 2, 3, 3], true, ("auto_pad", "VALID"), ("strides", new[] { 2, 2 })),
        Conv("ConvKernelShape", [2, 1, 5, 5], [2, 1, 2, 2], true, ("kernel_shape", new[] { 2, 2 })),
        Conv("Conv1D", [1, 2, 10], [3, 2, 3], true, ("pads", new[] { 1, 1 }), ("strides", new[] { 2 })),
        // K = 16·5·5 = 400 in chunks, 13 output channels (2 row blocks and 1), 8x8 = 64 columns; two images.
        Conv("ConvDeepChunked", [2, 16, 12, 12], [13, 16, 5, 5], true),
        // 1x1, stride 1, no pads: the input is the patch matrix (no im2col); 7x7 = 49 columns (3 vectors and a scalar).
        Conv("ConvPointwise", [1, 24, 7, 7], [10, 24, 1, 1], true),
        Conv("ConvStride2Pad", [1, 3, 11, 11], [8, 3, 3, 3], true, ("pads", new[] { 1, 1, 1, 1 }), ("strides", new[] { 2, 2 })),
        // Implicit GEMM (horizontal stride 1): a one-channel stem with rows of 44 (a tile of strips, then the strips left,
        // the last overlapping); 1x3 and 3x1 kernels over many channels with tf2onnx's LeakyRelu then Max fused; rows of 8
        // (a tile spans rows, 10 rows: a remainder); 9 output channels (blocks of 3) over 64 input channels summed in
        // chunks; a 1-D convolution; rows of 5 (only 128-bit vectors fit); no pads (the input read in place).
        Conv("ConvImplicitStem", [1, 1, 20, 44], [24, 1, 3, 3], true, ("pads", new[] { 1, 1, 1, 1 })),
        new ConformanceCase("ConvImplicitRow1x3Leaky", new OnnxBuilder().Input("x", 1, 24, 9, 32).Initializer("w", [24, 24, 1, 3], R(24 * 24 * 3, 2))
            .Initializer("b", [24], R(24, 3)).Initializer("floor", [], [-0.4f])
            .Node("Conv", ["x", "w", "b"], ["c"], ("pads", new[] { 0, 1, 0, 1 })).Node("LeakyRelu", ["c"], ["l"], ("alpha", 0.2f))
            .Node("Max", ["l", "floor"], ["y"]).Output("y"), [("x", [1, 24, 9, 32])]),
        Conv("ConvImplicitColumn3x1", [1, 48, 10, 8], [48, 48, 3, 1], true, ("pads", new[] { 1, 0, 1, 0 })),
        Conv("ConvImplicitChunked", [1, 64, 6, 24], [9, 64, 3, 3], true, ("pads", new[] { 1, 1, 1, 1 })),
        Conv("ConvImplicit1D", [1, 3, 50], [7, 3, 5], true, ("pads", new[] { 2, 2 })),
        Conv("ConvImplicitNarrowRows", [2, 4, 9, 5], [6, 4, 3, 3], false, ("pads", new[] { 1, 1, 1, 1 })),
        Conv("ConvImplicitNoPads", [1, 5, 10, 30], [10, 5, 3, 3], true, ("dilations", new[] { 2, 1 })),

        // Stride-2 patches gathered a vector at a time: rows of 20 and 37 outputs (whole vectors, an overlapping last
        // one, a scalar end), asymmetric "same" pads as TensorFlow exports them, and a 5-wide kernel.
        Conv("ConvStride2WideRows", [1, 3, 40, 40], [4, 3, 3, 3], true, ("pads", new[] { 0, 0, 1, 1 }), ("strides", new[] { 2, 2 })),
        Conv("ConvStride2Rows37", [1, 2, 6, 75], [3, 2, 5, 5], false, ("pads", new[] { 2, 2, 2, 2 }), ("strides", new[] { 2, 2 })),
        // Patches far larger than L1 with few rows (a stem): the GEMM runs in bands of output rows (ConvBands), here
        // 3 rows of 65 (33 rows, two images) and, per group, 10 rows of 40.
        Conv("ConvStemBands", [2, 3, 66, 130], [8, 3, 3, 3], true, ("pads", new[] { 1, 1, 1, 1 }), ("strides", new[] { 2, 2 })),
        Conv("ConvGroupBands", [1, 4, 40, 40], [4, 2, 3, 3], true, ("group", 2), ("pads", new[] { 1, 1, 1, 1 })),
        // Too narrow for any vector: every column is an edge column (ONNX's test_basic_conv_with_padding, weights given at run time).
        new ConformanceCase("ConvNarrowRuntimeWeights", new OnnxBuilder().Input("x", 1, 1, 5, 5).Input("w", 1, 1, 3, 3).Node("Conv", ["x", "w"], ["y"], ("pads", new[] { 1, 1, 1, 1 })).Output("y"),
            [("x", [1, 1, 5, 5]), ("w", [1, 1, 3, 3])]),
        new ConformanceCase("ConvRelu", new OnnxBuilder().Input("x", 1, 2, 6, 6).Initializer("w", [3, 2, 3, 3], R(54, 2)).Initializer("b", [3], R(3, 3))
            .Node("Conv", ["x", "w", "b"], ["c"]).Node("Relu", ["c"], ["y"]).Output("y"), [("x", [1, 2, 6, 6])]),

        Unary("MaxPool2x2", "MaxPool", [1, 3, 8, 8], 13, ("kernel_shape", new[] { 2, 2 }), ("strides", new[] { 2, 2 })),
        // 23 output columns: a Vector512 step (16), a Vector128 step (4), 3 scalars; odd input width 47 (the last column unused).
        Unary("MaxPool2x2Wide", "MaxPool", [1, 2, 6, 47], 13, ("kernel_shape", new[] { 2, 2 }), ("strides", new[] { 2, 2 })),
        Unary("MaxPool2x2Mid", "MaxPool", [2, 3, 4, 26], 13, ("kernel_shape", new[] { 2, 2 }), ("strides", new[] { 2, 2 })),
        Unary("MaxPool3x3Stride1", "MaxPool", [1, 2, 9, 9], 13, ("kernel_shape", new[] { 3, 3 })),
        Unary("MaxPool3x3Pad", "MaxPool", [1, 2, 7, 7], 13, ("kernel_shape", new[] { 3, 3 }), ("pads", new[] { 1, 1, 1, 1 })),
        Unary("MaxPoolCeil", "MaxPool", [1, 2, 7, 7], 13, ("kernel_shape", new[] { 2, 2 }), ("strides", new[] { 2, 2 }), ("ceil_mode", 1)),
        Unary("MaxPoolDilation", "MaxPool", [1, 1, 8, 8], 13, ("kernel_shape", new[] { 2, 2 }), ("dilations", new[] { 2, 2 })),
        Unary("MaxPoolSameUpper", "MaxPool", [1, 2, 5, 5], 13, ("kernel_shape", new[] { 3, 3 }), ("strides", new[] { 2, 2 }), ("auto_pad", "SAME_UPPER")),
        Unary("MaxPool1D", "MaxPool", [1, 2, 9], 13, ("kernel_shape", new[] { 3 }), ("strides", new[] { 2 })),
        Unary("MaxPoolOpset8", "MaxPool", [1, 2, 6, 6], 8, ("kernel_shape", new[] { 2, 2 }), ("strides", new[] { 2, 2 })),

        Gemm("GemmBias", [3, 4], [4, 5], [5]),
        Gemm("GemmTransB", [3, 4], [5, 4], [5], ("transB", 1)),
        // One row: W in 4-row panels of 16 columns (a partial panel, a partial last chunk, K below 16).
        Gemm("GemmOneRowPanels", [1, 100], [10, 100], [10], ("transB", 1)),
        Gemm("GemmOneRowNotTransposed", [1, 37], [37, 7], [7]),
        Gemm("GemmOneRowNarrow", [1, 5], [6, 5], null, ("transB", 1)),
        // 1.07 MB of weights (past GemvEmitter.ZigzagBytes): the panels alternate direction between calls; 259 outputs
        // leave a panel of 3 rows, 1030 inputs a tail of 6.
        Gemm("GemmOneRowZigzag", [1, 1030], [259, 1030], [259], ("transB", 1)),
        Gemm("GemmAlphaBetaMatrixC", [3, 4], [4, 5], [3, 5], ("alpha", 0.5f), ("beta", 2f)),
        Gemm("GemmRowC", [3, 4], [4, 5], [1, 5]),
        Gemm("GemmScalarC", [3, 4], [4, 5], []),
        Gemm("GemmColumnC", [3, 4], [4, 5], [3, 1]),
        Gemm("GemmTransA", [4, 3], [4, 5], [5], ("transA", 1)),
        Gemm("GemmNoC", [2, 6], [6, 3], null),
        // Register-blocked GEMM shapes: row blocks of 6 and a remainder, K in chunks (300 > 128), 37 columns
        // (two full vectors of 16, then the padded last vector) and 70 (a 4-vector tile, then a padded one).
        Gemm("GemmBlockedChunkedPadded", [20, 300], [300, 37], [37]),
        Gemm("GemmBlockedWide", [13, 40], [40, 70], [70], ("transB", 0)),
        new ConformanceCase("GemmBlockedRelu", new OnnxBuilder().Input("a", 9, 200).Initializer("B", [200, 48], R(9600, 5)).Initializer("C", [48], R(48, 6))
            .Node("Gemm", ["a", "B", "C"], ["g"]).Node("Relu", ["g"], ["y"]).Output("y"), [("a", [9, 200])]),
        new ConformanceCase("GemmRuntimeB", new OnnxBuilder().Input("a", 3, 4).Input("b", 5, 4).Initializer("C", [1, 5], R(5, 6))
            .Node("Gemm", ["a", "b", "C"], ["y"], ("transB", 1), ("alpha", 0.5f), ("beta", 2f)).Output("y"), [("a", [3, 4]), ("b", [5, 4])]),
        new ConformanceCase("GemmRuntimeCTransA", new OnnxBuilder().Input("a", 4, 3).Input("c", 3, 1).Initializer("B", [4, 2], R(8, 6))
            .Node("Gemm", ["a", "B", "c"], ["g"], ("transA", 1)).Node("Tanh", ["g"], ["y"]).Output("y"), [("a", [4, 3]), ("c", [3, 1])]),
        new ConformanceCase("GemmRuntimeNoC", new OnnxBuilder(11).Input("a", 2, 3).Input("b", 3, 4)
            .Node("Gemm", ["a", "b"], ["y"]).Output("y"), [("a", [2, 3]), ("b", [3, 4])]),
        new ConformanceCase("GemmRelu", new OnnxBuilder().Input("a", 2, 8).Initializer("B", [8, 4], R(32, 5)).Initializer("C", [4], R(4, 6))
            .Node("Gemm", ["a", "B", "C"], ["g"]).Node("Relu", ["g"], ["y"]).Output("y"), [("a", [2, 8])]),

        new ConformanceCase("MatMulConstAdd", new OnnxBuilder().Input("x", 2, 3, 4).Initializer("W", [4, 5], R(20, 8)).Initializer("bias", [5], R(5, 9))
            .Node("MatMul", ["x", "W"], ["m"]).Node("Add", ["m", "bias"], ["y"]).Output("y"), [("x", [2, 3, 4])]),
        new ConformanceCase("MatMulConstAddReluSymbolicBatch", new OnnxBuilder(9).Input("x", null, 4).Initializer("W", [4, 3], R(12, 8)).Initializer("bias", [3], R(3, 9))
            .Node("MatMul", ["x", "W"], ["m"]).Node("Add", ["bias", "m"], ["s"]).Node("Relu", ["s"], ["y"]).Output("y"), [("x", [3, 4])], BatchSize: 3),
        Binary("MatMul2D", "MatMul", [3, 4], [4, 2]),
        Binary("MatMulBatchedBroadcast", "MatMul", [2, 1, 3, 4], [3, 4, 2]),
        Binary("MatMulVectorLeft", "MatMul", [4], [4, 3], bConst: true),
        Binary("MatMulVectorRight", "MatMul", [2, 4], [4]),
        Binary("MatMulConst3D", "MatMul", [2, 3, 4], [2, 4, 5], bConst: true),

        Binary("AddSameShape", "Add", [2, 3, 4], [2, 3, 4]),
        Binary("AddBroadcastLast", "Add", [2, 3, 4], [4]),
        Binary("AddBroadcastBoth", "Add", [2, 1, 4], [3, 1]),
        Binary("AddScalarConst", "Add", [2, 3], [], bConst: true),
        Binary("AddConstChannels", "Add", [1, 3, 2, 2], [3, 1, 1], bConst: true),
        new ConformanceCase("AddRelu", new OnnxBuilder().Input("a", 2, 5).Input("b", 2, 5).Node("Add", ["a", "b"], ["s"]).Node("Relu", ["s"], ["y"]).Output("y"), [("a", [2, 5]), ("b", [2, 5])]),
        Unary("Relu", "Relu", [2, 3, 5]),
        Unary("LeakyReluDefault", "LeakyRelu", [2, 7]),
        Unary("LeakyReluAlpha", "LeakyRelu", [2, 7], 13, ("alpha", 0.3f)),
        Unary("EluAlpha", "Elu", [2, 7], 13, ("alpha", 0.7f)),
        Unary("Selu", "Selu", [2, 7]),
        Unary("SeluAttributes", "Selu", [2, 7], 13, ("alpha", 1.5f), ("gamma", 2f)),
        Unary("Sigmoid", "Sigmoid", [3, 9]),
        Unary("HardSigmoid", "HardSigmoid", [3, 9], 13, ("alpha", 0.4f), ("beta", 0.3f)),
        Unary("HardSwish", "HardSwish", [3, 9], 14),
        Unary("Tanh", "Tanh", [3, 9]),
        Unary("Softplus", "Softplus", [3, 9]),
        Unary("Softsign", "Softsign", [3, 9]),
        Unary("Erf", "Erf", [4, 25]),
        Unary("Exp", "Exp", [3, 9]),
        Unary("Log", "Log", [3, 9]),
        Unary("Sqrt", "Sqrt", [3, 9]),
        Unary("Neg", "Neg", [3, 9]),
        Unary("Abs", "Abs", [3, 9]),
        Unary("ClipOpset10", "Clip", [3, 9], 10, ("min", -0.25f), ("max", 0.5f)),
        new ConformanceCase("ClipInputs", new OnnxBuilder().Input("x", 3, 9).Initializer("lo", [], [-0.3f]).Initializer("hi", [], [0.2f])
            .Node("Clip", ["x", "lo", "hi"], ["y"]).Output("y"), [("x", [3, 9])]),
        new ConformanceCase("ClipMaxOnly", new OnnxBuilder().Input("x", 3, 9).Initializer("hi", [], [0.2f])
            .Node("Clip", ["x", "", "hi"], ["y"]).Output("y"), [("x", [3, 9])]),
        new ConformanceCase("ConvRelu6", new OnnxBuilder().Input("x", 1, 2, 6, 6).Initializer("w", [3, 2, 3, 3], R(54, 2)).Initializer("lo", [], [0f]).Initializer("hi", [], [0.5f])
            .Node("Conv", ["x", "w"], ["c"]).Node("Clip", ["c", "lo", "hi"], ["y"]).Output("y"), [("x", [1, 2, 6, 6])]),
        new ConformanceCase("GemmSigmoid", new OnnxBuilder().Input("a", 2, 8).Initializer("B", [8, 4], R(32, 5))
            .Node("Gemm", ["a", "B"], ["g"]).Node("Sigmoid", ["g"], ["y"]).Output("y"), [("a", [2, 8])]),
        new ConformanceCase("MulTanh", new OnnxBuilder().Input("a", 2, 5).Input("b", 5).Node("Mul", ["a", "b"], ["m"]).Node("Tanh", ["m"], ["y"]).Output("y"), [("a", [2, 5]), ("b", [5])]),
        // Runs long enough for every vector width and a scalar tail: b one value a run, a repeated across an outer axis.
        Binary("AddLongRunsOneValueEach", "Add", [2, 5, 37], [5, 1]),
        Binary("MulOuterRepeated", "Mul", [3, 1, 33], [4, 33]),
        Binary("DivBothContiguous", "Div", [3, 70], [3, 70]),
        new ConformanceCase("SubLeakyMax", new OnnxBuilder().Input("a", 4, 45).Input("b", 45).Initializer("floor", [], [-0.05f])
            .Node("Sub", ["a", "b"], ["s"]).Node("LeakyRelu", ["s"], ["l"], ("alpha", 0.1f)).Node("Max", ["l", "floor"], ["y"]).Output("y"), [("a", [4, 45]), ("b", [45])]),
        // A log-mel front end's last step: power + a floor, then Log, fused into the Add and vectorized (VectorMath).
        new ConformanceCase("SquareFloorLog", new OnnxBuilder().Input("a", 3, 41).Initializer("floor", [], [1e-6f])
            .Node("Mul", ["a", "a"], ["p"]).Node("Add", ["p", "floor"], ["s"]).Node("Log", ["s"], ["y"]).Output("y"), [("a", [3, 41])]),
        Binary("Sub", "Sub", [2, 3, 4], [3, 1]),
        Binary("Mul", "Mul", [2, 3, 4], [4]),
        Binary("Div", "Div", [2, 3, 4], [2, 1, 4]),
        Binary("DivConst", "Div", [2, 3], [3], bConst: true),
        Binary("Pow", "Pow", [2, 3], [2, 3]),
        Binary("PowConstSquare", "Pow", [2, 3], [], bConst: true),
        new ConformanceCase("PowIntegerExponent", new OnnxBuilder().Input("a", 2, 3).Initializer("e", [3]).Node("Pow", ["a", "e"], ["y"]).Output("y"), [("a", [2, 3])]),
        Binary("PRelu", "PRelu", [1, 3, 2, 2], [3, 1, 1], bConst: true),
        Binary("Max2", "Max", [2, 3], [3]),
        Binary("Min2", "Min", [2, 1], [1, 3]),
        new ConformanceCase("Sum3", new OnnxBuilder().Input("a", 2, 3).Input("b", 3).Input("c", 2, 1).Node("Sum", ["a", "b", "c"], ["y"]).Output("y"), [("a", [2, 3]), ("b", [3]), ("c", [2, 1])]),
        new ConformanceCase("Mean3", new OnnxBuilder().Input("a", 2, 3).Input("b", 3).Input("c", 2, 1).Node("Mean", ["a", "b", "c"], ["y"]).Output("y"), [("a", [2, 3]), ("b", [3]), ("c", [2, 1])]),
        new ConformanceCase("Max3", new OnnxBuilder().Input("a", 2, 3).Input("b", 3).Input("c", 2, 1).Node("Max", ["a", "b", "c"], ["y"]).Output("y"), [("a", [2, 3]), ("b", [3]), ("c", [2, 1])]),
        new ConformanceCase("Min3", new OnnxBuilder().Input("a", 2, 3).Input("b", 3).Input("c", 2, 1).Node("Min", ["a", "b", "c"], ["y"]).Output("y"), [("a", [2, 3]), ("b", [3]), ("c", [2, 1])]),
        new ConformanceCase("SumOne", new OnnxBuilder().Input("a", 2, 3).Node("Relu", ["a"], ["r"]).Node("Sum", ["r"], ["y"]).Output("y"), [("a", [2, 3])]),

        Unary("FlattenAxis1", "Flatten", [2, 3, 4]),
        Unary("FlattenAxis0", "Flatten", [2, 3, 4], 13, ("axis", 0)),
        Unary("FlattenAxis2", "Flatten", [2, 3, 4], 13, ("axis", 2)),
        Unary("FlattenAxisNegative", "Flatten", [2, 3, 4], 13, ("axis", -1)),
        new ConformanceCase("ReshapeZeroAndMinusOne", new OnnxBuilder().Input("x", 2, 3, 4).Initializer("shape", [0, -1]).Node("Reshape", ["x", "shape"], ["r"])
            .Node("Relu", ["r"], ["y"]).Output("y"), [("x", [2, 3, 4])]),
        new ConformanceCase("ReshapeInputToOutput", new OnnxBuilder().Input("x", 2, 6).Initializer("shape", [3, 4]).Node("Reshape", ["x", "shape"], ["y"]).Output("y"), [("x", [2, 6])]),
        new ConformanceCase("ReshapeChainToOutput", new OnnxBuilder().Input("x", 2, 6).Initializer("s1", [12]).Initializer("s2", [4, 3])
            .Node("Relu", ["x"], ["r"]).Node("Reshape", ["r", "s1"], ["f"]).Node("Reshape", ["f", "s2"], ["y"]).Output("y"), [("x", [2, 6])]),
        new ConformanceCase("ConstantNodes", new OnnxBuilder().Input("x", 2, 3)
            .Node("Constant", [], ["c"], ("value", OnnxBuilder.Tensor("c", [3], [0.5f, -1f, 2f])))
            .Node("Constant", [], ["s"], ("value_ints", new long[] { 3, 2 }))
            .Node("Add", ["x", "c"], ["a"]).Node("Reshape", ["a", "s"], ["y"]).Output("y"), [("x", [2, 3])]),
        new ConformanceCase("ConstantFloatsFolded", new OnnxBuilder().Input("x", 4)
            .Node("Constant", [], ["c"], ("value_floats", new[] { 1f, 2f, 3f, 4f }))
            .Node("Identity", ["c"], ["c2"]).Node("Add", ["x", "c2"], ["y"]).Output("y"), [("x", [4])]),
        new ConformanceCase("IdentityInputToOutput", new OnnxBuilder().Input("x", 3, 2).Node("Identity", ["x"], ["y"]).Output("y"), [("x", [3, 2])]),
        new ConformanceCase("IdentityInTheMiddle", new OnnxBuilder().Input("x", 3, 2).Node("Relu", ["x"], ["r"]).Node("Identity", ["r"], ["i"]).Node("Relu", ["i"], ["y"]).Output("y"), [("x", [3, 2])]),
        new ConformanceCase("TwoOutputsOneValue", new OnnxBuilder().Input("x", 2, 2).Node("Relu", ["x"], ["y"]).Node("Identity", ["y"], ["z"]).Output("y").Output("z"), [("x", [2, 2])]),
    ];

    static readonly ConformanceSuite Cases = new(All);

    protected override ConformanceSuite Suite => Cases;

    public static TheoryData<string> Names => Cases.Names;
}
