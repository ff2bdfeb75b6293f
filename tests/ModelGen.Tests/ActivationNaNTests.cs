using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// Fused ReLU and Clip pass a NaN through at every SIMD level, as the scalar code and the evaluator do (max(NaN, 0)
/// is NaN): the vector forms put the bound first so that maxps/minps return the NaN (GemmEmitter.VectorActivation).
/// </summary>
public sealed class ActivationNaNTests
{
    [Fact]
    public void FusedReluAndClipPassNaNThroughAtEverySimdLevel()
    {
        // A convolution with ReLU, a depthwise one with Clip(0, 6), a fully connected layer with ReLU: one NaN pixel
        // reaches every output through the three activations, unless one of them turns it into a number.
        var model = new OnnxBuilder(13, "nanrelu").Input("x", 1, 2, 6, 6)
            .Initializer("w1", [4, 2, 3, 3], OnnxBuilder.Random(72, 1)).Initializer("b1", [4], OnnxBuilder.Random(4, 2))
            .Node("Conv", ["x", "w1", "b1"], ["c"], ("pads", new[] { 1, 1, 1, 1 })).Node("Relu", ["c"], ["a"])
            .Initializer("w2", [4, 1, 3, 3], OnnxBuilder.Random(36, 3)).Initializer("lo", [], [0f]).Initializer("hi", [], [6f])
            .Node("Conv", ["a", "w2"], ["d"], ("group", 4), ("pads", new[] { 1, 1, 1, 1 })).Node("Clip", ["d", "lo", "hi"], ["b"])
            .Node("Flatten", ["b"], ["f"])
            .Initializer("w3", [144, 5], OnnxBuilder.Random(720, 4))
            .Node("Gemm", ["f", "w3"], ["g"]).Node("Relu", ["g"], ["y"])
            .Output("y");
        string path = model.Save("nanrelu.onnx");
        var options = new CompileOptions { ModelPath = path, Namespace = "Float.NaN" };
        var auto = ModelCompiler.Compile(options with { ClassName = "Auto" }, out var graph);
        var vector128 = ModelCompiler.Compile(options with { ClassName = "Vector128Only", Simd = "vector128" });
        var scalar = ModelCompiler.Compile(options with { ClassName = "ScalarOnly", Simd = "none" });
        // The activations are fused into the kernels (no separate Relu or Clip node is left to carry the NaN).
        Assert.DoesNotContain(auto.Nodes, n => n.Kernel.ToString() is "Relu" or "Clip" || n.Name.StartsWith("Relu", StringComparison.Ordinal) || n.Name.StartsWith("Clip", StringComparison.Ordinal));
        var models = GeneratedModels.Build(auto, vector128, scalar);

        var x = OnnxBuilder.Random(72, 5);
        x[2 * 6 + 3] = float.NaN;
        var expected = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { ["x"] = new([1, 2, 6, 6], x) })[graph.Outputs[0]].Floats;
        Assert.All(expected, v => Assert.True(float.IsNaN(v)));
        var clean = OnnxBuilder.Random(72, 6);
        var expectedClean = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { ["x"] = new([1, 2, 6, 6], clean) })[graph.Outputs[0]].Floats;
        foreach (var artifact in new[] { auto, vector128, scalar })
        {
            var y = new float[5];
            models.Run(artifact, [x], [y]);
            Assert.All(y, v => Assert.True(float.IsNaN(v), $"{artifact.ClassName}: {string.Join(", ", y)}"));
            models.Run(artifact, [clean], [y]);
            for (int i = 0; i < y.Length; i++) Assert.True(Math.Abs(y[i] - expectedClean[i]) <= 1e-4 * Math.Max(1, Math.Abs(expectedClean[i])), $"{artifact.ClassName}, output {i}: {y[i]} vs {expectedClean[i]}");
        }
    }
}
