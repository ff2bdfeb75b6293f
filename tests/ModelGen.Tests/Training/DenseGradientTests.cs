using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Training;

public class DenseGradientTests
{
    static float[] R(int n, int seed) => OnnxBuilder.Random(n, seed);

    [Fact]
    public void GemmWithBiasAndFusedRelu()
    {
        var model = new OnnxBuilder().Input("x", 1, 7).Output("y")
            .Initializer("w", [5, 7], R(35, 1)).Initializer("b", [5], R(5, 2))
            .Node("Gemm", ["x", "w", "b"], ["g"], ("transB", 1L))
            .Node("Relu", ["g"], ["y"]);
        var graph = GradientCheck.Prepare(model);
        Assert.Equal("Dense", graph.Nodes.Single().OpType);
        Assert.True(GradientCheck.Run(graph, batch: 4) >= 40);
    }

    [Fact]
    public void MatMulOverRowsOfARank3Input()
    {
        var model = new OnnxBuilder().Input("x", 1, 3, 6).Output("y")
            .Initializer("w", [6, 4], R(24, 3)).Initializer("b", [4], R(4, 4))
            .Node("MatMul", ["x", "w"], ["m"])
            .Node("Add", ["m", "b"], ["y"]);
        var graph = GradientCheck.Prepare(model);
        Assert.Equal("Dense", graph.Nodes.Single().OpType);
        Assert.True(GradientCheck.Run(graph, batch: 2) >= 30);
    }

    [Fact]
    public void TwoLayersWithLeakyReluAndClip()
    {
        var model = new OnnxBuilder().Input("x", 1, 8).Output("y")
            .Initializer("w1", [6, 8], R(48, 5)).Initializer("b1", [6], R(6, 6))
            .Initializer("w2", [3, 6], R(18, 7))
            .Node("Gemm", ["x", "w1", "b1"], ["h"], ("transB", 1L))
            .Node("LeakyRelu", ["h"], ["a"], ("alpha", 0.1f))
            .Node("Clip", ["a", "lo", "hi"], ["c"])
            .Initializer("lo", [], [-0.5f]).Initializer("hi", [], [0.7f])
            .Node("Gemm", ["c", "w2"], ["y"], ("transB", 1L));
        var graph = GradientCheck.Prepare(model);
        Assert.InRange(GradientCheck.Run(graph, batch: 5), 60, 1000);
    }
}
