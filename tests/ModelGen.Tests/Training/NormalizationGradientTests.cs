using ModelGen.Compiler.Training;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Training;

/// <summary>Softmax, LogSoftmax, the reductions and the normalizations: gradients by finite differences, forward against the evaluator.</summary>
public class NormalizationGradientTests
{
    static float[] R(int n, int seed) => OnnxBuilder.Random(n, seed);

    static void Check(OnnxBuilder model, int atLeast, int batch = 3)
    {
        var graph = GradientCheck.Prepare(model, normalize: false);
        Assert.True(GradientCheck.Run(graph, batch: batch, probes: 30) >= atLeast);
        Assert.True(ReferenceCheck.Forward(graph) > 0);
    }

    [Theory]
    [InlineData("Softmax", 13, 2)]   // a middle axis: outer 3, length 4, inner 5
    [InlineData("Softmax", 13, -1)]
    [InlineData("LogSoftmax", 13, 1)]
    [InlineData("LogSoftmax", 13, -1)]
    [InlineData("Softmax", 11, 1)]   // opset < 13: everything from the axis on, as one row of 60
    [InlineData("Softmax", 11, 2)]
    [InlineData("LogSoftmax", 11, 3)]
    public void SoftmaxOverAnAxis(string op, long opset, long axis)
    {
        var model = new OnnxBuilder(opset).Input("x", 1, 3, 4, 5).Output("y").Node(op, ["x"], ["y"], ("axis", axis));
        Check(model, 30);
    }

    [Fact]
    public void SoftmaxOverTheBatchAxisIsRefused()
    {
        var model = new OnnxBuilder(11).Input("x", 1, 3, 4).Output("y").Node("Softmax", ["x"], ["y"], ("axis", 0L));
        var error = Assert.Throws<ModelGenException>(() => TrainableModel.Build(GradientCheck.Prepare(model, normalize: false)));
        Assert.Equal(ErrorCodes.NotTrainable, error.Code);
    }

    [Theory]
    [InlineData("ReduceMean", 1L)]
    [InlineData("ReduceMean", 0L)]
    [InlineData("ReduceSum", 1L)]
    [InlineData("ReduceMax", 0L)]
    public void ReduceOverInnerAndMiddleAxes(string op, long keepdims)
    {
        var model = new OnnxBuilder(13).Input("x", 1, 3, 4, 5).Output("y");
        if (op == "ReduceSum") model.Initializer("axes", [1L, 3L]).Node(op, ["x", "axes"], ["y"], ("keepdims", keepdims));
        else model.Node(op, ["x"], ["y"], ("axes", new long[] { 1, -1 }), ("keepdims", keepdims));
        Check(model, 30);
    }

    [Fact]
    public void ReduceMeanWithAxesAsAnInput()
    {
        var model = new OnnxBuilder(18).Input("x", 1, 2, 3, 5).Output("y")
            .Initializer("axes", [-2L]).Node("ReduceMean", ["x", "axes"], ["y"], ("keepdims", 0L));
        Check(model, 30);
    }

    [Theory]
    [InlineData(new long[] { 0, 1 })]
    [InlineData(new long[0])]
    public void ReduceMeanOverTheBatchAxisIsRefused(long[] axes)
    {
        var model = new OnnxBuilder(13).Input("x", 1, 3, 4).Output("y");
        if (axes.Length > 0) model.Node("ReduceMean", ["x"], ["y"], ("axes", axes));
        else model.Node("ReduceMean", ["x"], ["y"]);
        var error = Assert.Throws<ModelGenException>(() => TrainableModel.Build(GradientCheck.Prepare(model, normalize: false)));
        Assert.Equal(ErrorCodes.NotTrainable, error.Code);
        Assert.Contains("batch axis", error.Message);
    }

    [Fact]
    public void BatchNormalizationWithFrozenStatistics()
    {
        var model = new OnnxBuilder().Input("x", 1, 3, 4, 5).Output("y")
            .Initializer("scale", [3], R(3, 1)).Initializer("bias", [3], R(3, 2))
            .Initializer("mean", [3], R(3, 3)).Initializer("var", [3], [0.5f, 1.3f, 0.2f])
            .Node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], ("epsilon", 1e-3f));
        var graph = GradientCheck.Prepare(model, normalize: false);
        Assert.Equal(["scale", "bias"], TrainableModel.Build(graph).Parameters.Select(p => p.Name));
        Assert.True(GradientCheck.Run(graph, batch: 3, probes: 30) >= 30 + 6);
        Assert.Equal(60, ReferenceCheck.Forward(graph));
    }

    [Fact]
    public void BatchNormalizationLeftByNormalizationWithAFusedRelu()
    {
        // Not after a Conv, so not folded: the Relu becomes its fused chain.
        var model = new OnnxBuilder().Input("x", 1, 2, 3, 3).Output("y")
            .Initializer("scale", [2], R(2, 5)).Initializer("bias", [2], R(2, 6))
            .Initializer("mean", [2], R(2, 7)).Initializer("var", [2], [0.7f, 1.1f])
            .Node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["b"])
            .Node("Relu", ["b"], ["y"]);
        var graph = GradientCheck.Prepare(model);
        Assert.Equal("Relu", Artifact.Activations.ParseChain(graph.Nodes.Single().Annotations["activation"]).Single().Op);
        Assert.True(GradientCheck.Run(graph, batch: 3, probes: 30) >= 30 + 4);
        Assert.Equal(18, ReferenceCheck.Forward(graph));
    }

    [Fact]
    public void DenseThenSoftmax()
    {
        var model = new OnnxBuilder().Input("x", 1, 6).Output("y")
            .Initializer("w", [5, 6], R(30, 1)).Initializer("b", [5], R(5, 2))
            .Node("Gemm", ["x", "w", "b"], ["g"], ("transB", 1L))
            .Node("Softmax", ["g"], ["y"]);
        var graph = GradientCheck.Prepare(model);
        Assert.Equal(["Dense", "Softmax"], graph.Nodes.Select(n => n.OpType));
        Assert.Equal(24 + 5 + 24, GradientCheck.Run(graph, batch: 4));
        Assert.Equal(5, ReferenceCheck.Forward(graph));
    }

    [Fact]
    public void LayerNormalizationOverTheLastTwoAxesWithBroadcastScaleAndBias()
    {
        var model = new OnnxBuilder(17).Input("x", 1, 3, 4, 5).Output("y")
            .Initializer("scale", [4, 5], R(20, 1)).Initializer("bias", [5], R(5, 2))
            .Node("LayerNormalization", ["x", "scale", "bias"], ["y"], ("axis", -2L), ("epsilon", 1e-4f));
        var graph = GradientCheck.Prepare(model, normalize: false);
        Assert.Equal(2, TrainableModel.Build(graph).Parameters.Count);
        Assert.True(GradientCheck.Run(graph, batch: 3, probes: 30) >= 30 + 20 + 5);
        Assert.Equal(60, ReferenceCheck.Forward(graph));
    }

    [Fact]
    public void LayerNormalizationOverTheLastAxisWithoutBias()
    {
        var model = new OnnxBuilder(17).Input("x", 1, 2, 7).Output("y")
            .Initializer("scale", [7], R(7, 4))
            .Node("LayerNormalization", ["x", "scale"], ["y"]);
        Check(model, 30 + 7);
    }

    [Fact]
    public void LayerNormalizationOverTheBatchAxisIsRefused()
    {
        var model = new OnnxBuilder(17).Input("x", 1, 6).Output("y").Initializer("scale", [1, 6], R(6, 4))
            .Node("LayerNormalization", ["x", "scale"], ["y"], ("axis", 0L));
        var error = Assert.Throws<ModelGenException>(() => TrainableModel.Build(GradientCheck.Prepare(model, normalize: false)));
        Assert.Equal(ErrorCodes.NotTrainable, error.Code);
    }

    [Fact]
    public void InstanceNormalization()
    {
        var model = new OnnxBuilder().Input("x", 1, 3, 2, 5).Output("y")
            .Initializer("scale", [3], R(3, 1)).Initializer("bias", [3], R(3, 2))
            .Node("InstanceNormalization", ["x", "scale", "bias"], ["y"]);
        Check(model, 30 + 6);
    }
}
