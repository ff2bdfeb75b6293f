using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>Pooling, reductions, Softmax/LogSoftmax and the normalizations (BatchNormalization folded or not, Instance, Layer, LRN).</summary>
public sealed class NormalizationConformanceTests : ConformanceTests
{
    static float[] R(int n, int seed) => OnnxBuilder.Random(n, seed);
    static float[] Positive(int n, int seed) => [.. R(n, seed).Select(v => 0.5f + Math.Abs(v))];

    static ConformanceCase Unary(string name, string op, int[] x, long opset = 13, params (string, object)[] attrs) =>
        new(name, new OnnxBuilder(opset).Input("x", [.. x.Select(d => (int?)d)]).Node(op, ["x"], ["y"], attrs).Output("y"), [("x", x)]);

    static OnnxBuilder BnParams(OnnxBuilder b, int c, string p = "") => b
        .Initializer(p + "scale", [c], R(c, 11)).Initializer(p + "B", [c], R(c, 12)).Initializer(p + "mean", [c], R(c, 13)).Initializer(p + "var", [c], Positive(c, 14));

    static string[] Bn(string x, string p = "") => [x, p + "scale", p + "B", p + "mean", p + "var"];

    public static readonly ConformanceCase[] All =
    [
        Unary("AveragePool2x2", "AveragePool", [1, 2, 6, 6], 13, ("kernel_shape", new[] { 2, 2 }), ("strides", new[] { 2, 2 })),
        Unary("AveragePoolPadsExcluded", "AveragePool", [1, 2, 5, 5], 13, ("kernel_shape", new[] { 3, 3 }), ("pads", new[] { 1, 1, 1, 1 })),
        Unary("AveragePoolPadsCounted", "AveragePool", [1, 2, 5, 5], 13, ("kernel_shape", new[] { 3, 3 }), ("pads", new[] { 1, 1, 1, 1 }), ("count_include_pad", 1)),
        Unary("AveragePoolCeil", "AveragePool", [1, 1, 7, 7], 13, ("kernel_shape", new[] { 3, 3 }), ("strides", new[] { 2, 2 }), ("ceil_mode", 1)),
        Unary("AveragePoolCeilCounted", "AveragePool", [1, 1, 6, 6], 13, ("kernel_shape", new[] { 3, 3 }), ("strides", new[] { 2, 2 }), ("ceil_mode", 1), ("pads", new[] { 1, 1, 1, 1 }), ("count_include_pad", 1)),
        Unary("AveragePoolSameUpper", "AveragePool", [1, 2, 5, 5], 13, ("kernel_shape", new[] { 2, 2 }), ("auto_pad", "SAME_UPPER")),
        Unary("AveragePool1D", "AveragePool", [1, 2, 9], 13, ("kernel_shape", new[] { 3 }), ("strides", new[] { 2 })),
        Unary("MaxPool3D", "MaxPool", [1, 2, 4, 5, 5], 13, ("kernel_shape", new[] { 2, 3, 2 }), ("strides", new[] { 1, 2, 2 }), ("pads", new[] { 0, 1, 1, 1, 0, 1 })),
        Unary("MaxPool3DCeilDilations", "MaxPool", [1, 1, 5, 6, 6], 13, ("kernel_shape", new[] { 2, 2, 2 }), ("strides", new[] { 2, 2, 2 }), ("dilations", new[] { 1, 2, 1 }), ("ceil_mode", 1)),
        Unary("AveragePool3D", "AveragePool", [1, 2, 4, 4, 4], 13, ("kernel_shape", new[] { 2, 2, 2 }), ("strides", new[] { 2, 2, 2 })),
        Unary("AveragePool3DPadsCounted", "AveragePool", [1, 1, 4, 5, 5], 13, ("kernel_shape", new[] { 3, 3, 3 }), ("pads", new[] { 1, 1, 1, 1, 1, 1 }), ("count_include_pad", 1)),
        Unary("AveragePool3DPadsExcluded", "AveragePool", [1, 1, 4, 5, 5], 13, ("kernel_shape", new[] { 3, 2, 3 }), ("pads", new[] { 1, 0, 1, 1, 1, 1 })),
        Unary("GlobalAveragePool", "GlobalAveragePool", [2, 3, 4, 5]),
        Unary("GlobalMaxPool", "GlobalMaxPool", [2, 3, 4, 5]),
        Unary("GlobalAveragePool1D", "GlobalAveragePool", [1, 3, 7]),
        Unary("ReduceMeanAxesKeep", "ReduceMean", [2, 3, 4], 13, ("axes", new[] { 1 })),
        Unary("ReduceMeanAxesDrop", "ReduceMean", [2, 3, 4], 13, ("axes", new[] { 0, 2 }), ("keepdims", 0)),
        Unary("ReduceMeanAll", "ReduceMean", [2, 3, 4]),
        Unary("ReduceMaxNegativeAxis", "ReduceMax", [2, 3, 4], 13, ("axes", new[] { -1 }), ("keepdims", 0)),
        Unary("ReduceSumOpset11Attribute", "ReduceSum", [2, 3, 4], 11, ("axes", new[] { 1, 2 })),
        new("ReduceSumOpset13Input", new OnnxBuilder().Input("x", 2, 3, 4).Initializer("axes", [0, -1]).Node("ReduceSum", ["x", "axes"], ["y"], ("keepdims", 0)).Output("y"), [("x", [2, 3, 4])]),
        Unary("ReduceSumNoAxesAll", "ReduceSum", [2, 3]),
        Unary("ReduceSumNoopEmptyAxes", "ReduceSum", [2, 3], 13, ("noop_with_empty_axes", 1)),
        Unary("SoftmaxOpset13Default", "Softmax", [2, 3, 5]),
        Unary("SoftmaxOpset13Axis1", "Softmax", [2, 3, 5], 13, ("axis", 1)),
        Unary("SoftmaxOpset11Coerced", "Softmax", [2, 3, 5], 11),
        Unary("SoftmaxOpset11Axis2", "Softmax", [2, 3, 5], 11, ("axis", 2)),
        Unary("LogSoftmaxOpset13", "LogSoftmax", [3, 7]),
        Unary("LogSoftmaxOpset11Axis0", "LogSoftmax", [2, 3, 4], 11, ("axis", 0)),
        new("BatchNormStandalone4D", BnParams(new OnnxBuilder().Input("x", 2, 3, 4, 4), 3).Node("BatchNormalization", Bn("x"), ["y"], ("epsilon", 1e-3f)).Output("y"), [("x", [2, 3, 4, 4])]),
        new("BatchNormStandalone2D", BnParams(new OnnxBuilder(9).Input("x", 4, 5), 5).Node("BatchNormalization", Bn("x"), ["y"]).Output("y"), [("x", [4, 5])]),
        new("BatchNormOpset7Spatial", BnParams(new OnnxBuilder(7).Input("x", 1, 3, 2, 2), 3).Node("BatchNormalization", Bn("x"), ["y"], ("spatial", 1)).Output("y"), [("x", [1, 3, 2, 2])]),
        new("ConvBatchNormReluFolded", BnParams(new OnnxBuilder().Input("x", 1, 2, 6, 6).Initializer("w", [3, 2, 3, 3], R(54, 2)).Initializer("b", [3], R(3, 3)), 3)
            .Node("Conv", ["x", "w", "b"], ["c"]).Node("BatchNormalization", Bn("c"), ["n"]).Node("Relu", ["n"], ["y"]).Output("y"), [("x", [1, 2, 6, 6])]),
        new("ConvNoBiasBatchNormFolded", BnParams(new OnnxBuilder().Input("x", 1, 2, 5, 5).Initializer("w", [4, 2, 3, 3], R(72, 2)), 4)
            .Node("Conv", ["x", "w"], ["c"]).Node("BatchNormalization", Bn("c"), ["y"]).Output("y"), [("x", [1, 2, 5, 5])]),
        new("MatMulBatchNormFolded", BnParams(new OnnxBuilder(9).Input("x", 3, 6).Initializer("W", [6, 4], R(24, 2)), 4)
            .Node("MatMul", ["x", "W"], ["m"]).Node("BatchNormalization", Bn("m"), ["y"]).Output("y"), [("x", [3, 6])]),
        new("GemmBatchNormSharedNotFolded", BnParams(new OnnxBuilder().Input("x", 3, 6).Initializer("W", [6, 4], R(24, 2)), 4)
            .Node("Gemm", ["x", "W"], ["m"]).Node("BatchNormalization", Bn("m"), ["n"]).Node("Add", ["n", "m"], ["y"]).Output("y"), [("x", [3, 6])]),
        new("InstanceNormalization", new OnnxBuilder().Input("x", 2, 3, 4, 5).Initializer("s", [3], R(3, 5)).Initializer("b", [3], R(3, 6))
            .Node("InstanceNormalization", ["x", "s", "b"], ["y"], ("epsilon", 1e-3f)).Output("y"), [("x", [2, 3, 4, 5])]),
        new("LayerNormalizationLastAxis", new OnnxBuilder(17).Input("x", 2, 3, 8).Initializer("s", [8], R(8, 5)).Initializer("b", [8], R(8, 6))
            .Node("LayerNormalization", ["x", "s", "b"], ["y"]).Output("y"), [("x", [2, 3, 8])]),
        new("LayerNormalizationAxis1NoBias", new OnnxBuilder(17).Input("x", 2, 3, 4).Initializer("s", [3, 4], R(12, 5))
            .Node("LayerNormalization", ["x", "s"], ["y"], ("axis", 1), ("epsilon", 1e-3f)).Output("y"), [("x", [2, 3, 4])]),
        new("LayerNormalizationBroadcastScale", new OnnxBuilder(17).Input("x", 2, 3, 4).Initializer("s", [1, 4], R(4, 5)).Initializer("b", [4], R(4, 6))
            .Node("LayerNormalization", ["x", "s", "b"], ["y"], ("axis", -2)).Output("y"), [("x", [2, 3, 4])]),
        Unary("LrnSize3", "LRN", [1, 5, 3, 3], 13, ("size", 3)),
        Unary("AveragePoolDilations", "AveragePool", [1, 2, 7, 7], 19, ("kernel_shape", new[] { 2, 2 }), ("dilations", new[] { 2, 2 }), ("pads", new[] { 1, 1, 1, 1 })),
        Unary("AveragePoolDilationsCounted", "AveragePool", [1, 1, 8, 8], 19, ("kernel_shape", new[] { 3, 3 }), ("dilations", new[] { 2, 1 }), ("pads", new[] { 1, 1, 2, 2 }), ("count_include_pad", 1), ("strides", new[] { 2, 2 })),
        new("BatchNormRuntimeStatistics", new OnnxBuilder().Input("x", 2, 3, 2, 2).Input("scale", 3).Input("B", 3).Input("mean", 3).Input("v", 3)
            .Node("Abs", ["v"], ["va"]).Initializer("half", [], [0.5f]).Node("Add", ["va", "half"], ["var"])
            .Node("BatchNormalization", ["x", "scale", "B", "mean", "var"], ["y"]).Output("y"),
            [("x", [2, 3, 2, 2]), ("scale", [3]), ("B", [3]), ("mean", [3]), ("v", [3])]),
        new("InstanceNormalizationRuntimeScale", new OnnxBuilder().Input("x", 1, 2, 3, 3).Input("s", 2).Input("b", 2)
            .Node("InstanceNormalization", ["x", "s", "b"], ["y"]).Output("y"), [("x", [1, 2, 3, 3]), ("s", [2]), ("b", [2])]),
        new("LayerNormalizationStatistics", new OnnxBuilder(17).Input("x", 2, 3, 4).Input("s", 3, 4)
            .Node("LayerNormalization", ["x", "s"], ["y", "mean", "inv"], ("axis", 1)).Output("y").Output("mean").Output("inv"),
            [("x", [2, 3, 4]), ("s", [3, 4])]),
        new("ConstantOnlyModel", new OnnxBuilder().Node("Constant", [], ["c"], ("value", OnnxBuilder.Tensor("c", [2, 2], [1f, -2f, 3f, -4f]))).Node("Relu", ["c"], ["y"]).Output("y"), []),
        Unary("LrnSize5Attributes", "LRN", [2, 6, 2, 2], 13, ("size", 5), ("alpha", 0.01f), ("beta", 0.5f), ("bias", 2f)),
    ];

    static readonly ConformanceSuite Cases = new(All);

    protected override ConformanceSuite Suite => Cases;

    public static TheoryData<string> Names => Cases.Names;
}
