using ModelGen.Compiler;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// Opsets before 7 (old exporters: CNTK, Caffe2, early PyTorch) broadcast only when asked, along a
/// given axis. ONNX Runtime no longer runs them, so these are checked against values computed by hand.
/// </summary>
public sealed class LegacyOpsetTests
{
    [Fact]
    public void AddWithBroadcastAlongAnAxisLinesBUpWithThatAxis()
    {
        // A [2,3,2] + B [3] at axis 1: B varies along A's second axis.
        var model = new OnnxBuilder(6).Input("a", 2, 3, 2).Initializer("b", [3], [10f, 20f, 30f])
            .Node("Add", ["a", "b"], ["y"], ("broadcast", 1), ("axis", 1)).Output("y");
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = model.Save(), ClassName = "LegacyAdd", Namespace = "Legacy" });
        var a = Enumerable.Range(0, 12).Select(i => (float)i).ToArray();
        var y = new float[12];
        GeneratedModels.Build(artifact).Run(artifact, [a], [y]);
        Assert.Equal([10, 11, 22, 23, 34, 35, 16, 17, 28, 29, 40, 41], y);
    }

    [Fact]
    public void PReluOpset6HasOneSlopePerChannel()
    {
        var model = new OnnxBuilder(6).Input("x", 1, 2, 2).Initializer("slope", [2], [0.5f, -1f])
            .Node("PRelu", ["x", "slope"], ["y"]).Output("y");
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = model.Save(), ClassName = "LegacyPRelu", Namespace = "Legacy" });
        var y = new float[4];
        GeneratedModels.Build(artifact).Run(artifact, [new[] { -2f, 3f, -4f, 5f }], [y]);
        Assert.Equal([-1f, 3f, 4f, 5f], y);
    }

    [Fact]
    public void WithoutBroadcastShapesMustMatch()
    {
        string path = new OnnxBuilder(6).Input("a", 2, 3).Initializer("b", [3], [1f, 2f, 3f]).Node("Add", ["a", "b"], ["y"]).Output("y").Save();
        Assert.Equal(Onnx.ErrorCodes.ShapeMismatch, Assert.Throws<Onnx.ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = path })).Code);
    }
}
