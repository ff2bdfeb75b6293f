using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// Whole networks in the shapes exporters write for the models users bring: a MobileNet-v2 style
/// block (depthwise-separable, BatchNorm, ReLU6, residual), a keyword-spotting style 1-D CNN, and a
/// transformer encoder block (multi-head attention, LayerNorm, GELU via Erf). Random weights, checked
/// end to end through the generator against ONNX Runtime.
/// </summary>
public sealed class ArchitectureTests : ConformanceTests
{
    static float[] R(int n, int seed, float scale = 0.5f) => [.. OnnxBuilder.Random(n, seed).Select(v => v * scale)];
    static float[] Positive(int n, int seed) => [.. OnnxBuilder.Random(n, seed).Select(v => 0.5f + Math.Abs(v))];

    static OnnxBuilder Bn(OnnxBuilder b, string input, string output, int c, int seed) => b
        .Initializer($"{output}.s", [c], Positive(c, seed)).Initializer($"{output}.b", [c], R(c, seed + 1))
        .Initializer($"{output}.m", [c], R(c, seed + 2)).Initializer($"{output}.v", [c], Positive(c, seed + 3))
        .Node("BatchNormalization", [input, $"{output}.s", $"{output}.b", $"{output}.m", $"{output}.v"], [output]);

    static ConformanceCase MobileNetBlock()
    {
        var b = new OnnxBuilder(13).Input("image", 1, 3, 16, 16)
            .Initializer("zero", [], [0f]).Initializer("six", [], [6f])
            .Initializer("stem.w", [8, 3, 3, 3], R(216, 1)).Node("Conv", ["image", "stem.w"], ["stem"], ("pads", new[] { 1, 1, 1, 1 }), ("strides", new[] { 2, 2 }));
        Bn(b, "stem", "stem.bn", 8, 10).Node("Clip", ["stem.bn", "zero", "six"], ["stem.act"])
            // inverted residual: expand 1x1, depthwise 3x3, project 1x1, add
            .Initializer("exp.w", [16, 8, 1, 1], R(128, 2)).Node("Conv", ["stem.act", "exp.w"], ["exp"]);
        Bn(b, "exp", "exp.bn", 16, 20).Node("Clip", ["exp.bn", "zero", "six"], ["exp.act"])
            .Initializer("dw.w", [16, 1, 3, 3], R(144, 3)).Node("Conv", ["exp.act", "dw.w"], ["dw"], ("group", 16), ("pads", new[] { 1, 1, 1, 1 }));
        Bn(b, "dw", "dw.bn", 16, 30).Node("Clip", ["dw.bn", "zero", "six"], ["dw.act"])
            .Initializer("proj.w", [8, 16, 1, 1], R(128, 4)).Node("Conv", ["dw.act", "proj.w"], ["proj"]);
        Bn(b, "proj", "proj.bn", 8, 40).Node("Add", ["stem.act", "proj.bn"], ["res"])
            .Node("GlobalAveragePool", ["res"], ["pool"]).Node("Flatten", ["pool"], ["flat"])
            .Initializer("fc.w", [2, 8], R(16, 5)).Initializer("fc.b", [2], R(2, 6))
            .Node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], ("transB", 1)).Node("Softmax", ["logits"], ["probs"]).Output("probs");
        return new ConformanceCase("MobileNetV2Block", b, [("image", [1, 3, 16, 16])]);
    }

    static ConformanceCase KeywordSpotter()
    {
        // [1, 10 coefficients, 40 frames] → two Conv1D+BN+ReLU, MaxPool, ReduceMean over time, Gemm, LogSoftmax.
        var b = new OnnxBuilder(13).Input("mfcc", 1, 10, 40)
            .Initializer("c1.w", [16, 10, 3], R(480, 1)).Initializer("c1.b", [16], R(16, 2))
            .Node("Conv", ["mfcc", "c1.w", "c1.b"], ["c1"], ("pads", new[] { 1, 1 }));
        Bn(b, "c1", "c1.bn", 16, 10).Node("Relu", ["c1.bn"], ["c1.act"])
            .Node("MaxPool", ["c1.act"], ["p1"], ("kernel_shape", new[] { 2 }), ("strides", new[] { 2 }))
            .Initializer("c2.w", [16, 1, 5], R(80, 3)).Node("Conv", ["p1", "c2.w"], ["c2"], ("group", 16), ("dilations", new[] { 2 }), ("pads", new[] { 4, 4 }));
        Bn(b, "c2", "c2.bn", 16, 20).Node("Relu", ["c2.bn"], ["c2.act"])
            .Node("ReduceMean", ["c2.act"], ["avg"], ("axes", new[] { 2 }), ("keepdims", 0))
            .Initializer("fc.w", [16, 12], R(192, 4)).Initializer("fc.b", [12], R(12, 5))
            .Node("MatMul", ["avg", "fc.w"], ["mm"]).Node("Add", ["mm", "fc.b"], ["logits"]).Node("LogSoftmax", ["logits"], ["y"]).Output("y");
        return new ConformanceCase("KeywordSpotter1D", b, [("mfcc", [1, 10, 40])]);
    }

    static ConformanceCase TransformerBlock()
    {
        const int t = 8, d = 16, h = 2, dh = 8;
        var b = new OnnxBuilder(17).Input("x", 1, t, d)
            .Initializer("ln1.s", [d], Positive(d, 1)).Initializer("ln1.b", [d], R(d, 2))
            .Node("LayerNormalization", ["x", "ln1.s", "ln1.b"], ["ln1"])
            .Initializer("wq", [d, d], R(d * d, 3)).Initializer("wk", [d, d], R(d * d, 4)).Initializer("wv", [d, d], R(d * d, 5))
            .Node("MatMul", ["ln1", "wq"], ["q"]).Node("MatMul", ["ln1", "wk"], ["k"]).Node("MatMul", ["ln1", "wv"], ["v"])
            .Initializer("heads", [1, t, h, dh])
            .Node("Reshape", ["q", "heads"], ["q4"]).Node("Transpose", ["q4"], ["qh"], ("perm", new[] { 0, 2, 1, 3 }))
            .Node("Reshape", ["k", "heads"], ["k4"]).Node("Transpose", ["k4"], ["kt"], ("perm", new[] { 0, 2, 3, 1 }))
            .Node("Reshape", ["v", "heads"], ["v4"]).Node("Transpose", ["v4"], ["vh"], ("perm", new[] { 0, 2, 1, 3 }))
            .Node("MatMul", ["qh", "kt"], ["scores"]).Initializer("sqrt_dh", [], [MathF.Sqrt(dh)])
            .Node("Div", ["scores", "sqrt_dh"], ["scaled"]).Node("Softmax", ["scaled"], ["attn"])
            .Node("MatMul", ["attn", "vh"], ["ctx"]).Node("Transpose", ["ctx"], ["ctx_t"], ("perm", new[] { 0, 2, 1, 3 }))
            .Initializer("merge", [1, t, d]).Node("Reshape", ["ctx_t", "merge"], ["ctx_m"])
            .Initializer("wo", [d, d], R(d * d, 6)).Node("MatMul", ["ctx_m", "wo"], ["attn_out"]).Node("Add", ["x", "attn_out"], ["res1"])
            .Initializer("ln2.s", [d], Positive(d, 7)).Node("LayerNormalization", ["res1", "ln2.s"], ["ln2"])
            .Initializer("w1", [d, 32], R(d * 32, 8)).Initializer("b1", [32], R(32, 9)).Node("MatMul", ["ln2", "w1"], ["h1"]).Node("Add", ["h1", "b1"], ["h1b"])
            // GELU, as exporters write it: 0.5·x·(1 + erf(x/√2))
            .Initializer("inv_sqrt2", [], [1f / MathF.Sqrt(2f)]).Initializer("one", [], [1f]).Initializer("half", [], [0.5f])
            .Node("Mul", ["h1b", "inv_sqrt2"], ["g1"]).Node("Erf", ["g1"], ["g2"]).Node("Add", ["g2", "one"], ["g3"])
            .Node("Mul", ["h1b", "g3"], ["g4"]).Node("Mul", ["g4", "half"], ["gelu"])
            .Initializer("w2", [32, d], R(32 * d, 10)).Node("MatMul", ["gelu", "w2"], ["h2"]).Node("Add", ["res1", "h2"], ["y"]).Output("y");
        return new ConformanceCase("TransformerEncoderBlock", b, [("x", [1, t, d])]);
    }

    static readonly ConformanceSuite Cases = new([MobileNetBlock(), KeywordSpotter(), TransformerBlock(),
        new ConformanceCase("DepthwiseSeparableCnn", SyntheticModels.DepthwiseSeparableCnn(), [("image", [1, 1, 28, 28])]),
        new ConformanceCase("KeywordSpottingCnn", SyntheticModels.KeywordSpottingCnn(), [("mels", [1, 1, 76, 32])])]);

    protected override ConformanceSuite Suite => Cases;

    public static TheoryData<string> Names => Cases.Names;
}
