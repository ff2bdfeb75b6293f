using ModelGen.Compiler;
using ModelGen.Compiler.Training;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Training;

public class PoolGradientTests
{
    static OnnxBuilder Pool(string op, int[] x, params (string, object)[] attributes) =>
        new OnnxBuilder().Input("x", [.. x.Select(d => (int?)d)]).Output("y").Node(op, ["x"], ["y"], attributes);

    /// <summary>
    /// Distinct input values (a shuffled ramp, spaced far wider than the finite-difference step), so that no window
    /// has a tie for its maximum and the max pools are differentiable where they are checked.
    /// </summary>
    static double DistinctValue(int i, string _) => (i * 7919 % 1009) / 1009.0 * 2 - 1;

    static void Check(OnnxBuilder model, int atLeast = 20)
    {
        var graph = GradientCheck.Prepare(model);
        ForwardCheck.MatchesReference(graph);
        Assert.InRange(GradientCheck.Run(graph, batch: 3, input: DistinctValue), atLeast, 10_000);
    }

    [Fact]
    public void MaxPoolCeilModeAsymmetricPads()
        => Check(Pool("MaxPool", [1, 2, 7, 8], ("kernel_shape", new long[] { 3, 2 }), ("strides", new long[] { 2, 3 }),
            ("pads", new long[] { 1, 0, 0, 1 }), ("ceil_mode", 1L)));

    [Fact]
    public void MaxPoolDilatedOverlapping()
        => Check(Pool("MaxPool", [1, 3, 9, 7], ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 1, 2 }),
            ("dilations", new long[] { 2, 1 }), ("pads", new long[] { 1, 1, 1, 1 })));

    [Fact]
    public void MaxPoolOneDimensional()
        => Check(Pool("MaxPool", [1, 2, 11], ("kernel_shape", new long[] { 3 }), ("strides", new long[] { 2 }), ("pads", new long[] { 1, 0 }), ("ceil_mode", 1L)));

    [Fact]
    public void MaxPoolGradientGoesToTheFirstMaximum()
    {
        // Two equal maxima in the one window: PyTorch gives the whole gradient to the first in scan order.
        var graph = GradientCheck.Prepare(Pool("MaxPool", [1, 1, 2, 2], ("kernel_shape", new long[] { 2, 2 })));
        var model = TrainableModel.Build(graph);
        var x = new Tensor<float>([1, 1, 2, 2], [0f, 3f, 1f, 3f]);
        var pass = model.Forward(new Dictionary<string, Tensor<float>> { ["x"] = x }, inputGradients: true);
        var dx = pass.Backward(new Dictionary<string, Tensor<float>> { ["y"] = new([1, 1, 1, 1], [1f]) })["x"];
        Assert.Equal(new float[] { 0f, 1f, 0f, 0f }, dx.Data);
    }

    [Fact]
    public void ThreeDimensionalPoolIsRefused()
    {
        var graph = GradientCheck.Prepare(Pool("MaxPool", [1, 1, 3, 3, 3], ("kernel_shape", new long[] { 2, 2, 2 })));
        var e = Assert.Throws<ModelGenException>(() => TrainableModel.Build(graph));
        Assert.Equal(ErrorCodes.NotTrainable, e.Code);
    }

    [Fact]
    public void AveragePoolCeilModePadsExcluded()
        => Check(Pool("AveragePool", [1, 2, 7, 8], ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }),
            ("pads", new long[] { 1, 0, 1, 2 }), ("ceil_mode", 1L)));

    [Fact]
    public void AveragePoolCeilModePadsIncluded()
        => Check(Pool("AveragePool", [1, 2, 7, 8], ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }),
            ("pads", new long[] { 1, 0, 1, 2 }), ("ceil_mode", 1L), ("count_include_pad", 1L)));

    [Fact]
    public void AveragePoolOneDimensionalIncludingPads()
        => Check(Pool("AveragePool", [1, 3, 10], ("kernel_shape", new long[] { 4 }), ("strides", new long[] { 3 }),
            ("pads", new long[] { 2, 1 }), ("count_include_pad", 1L)));

    [Fact]
    public void GlobalAveragePool() => Check(Pool("GlobalAveragePool", [1, 3, 5, 7]), atLeast: 24);

    [Fact]
    public void GlobalMaxPool() => Check(Pool("GlobalMaxPool", [1, 3, 5, 7]), atLeast: 24);

    [Fact]
    public void ConstantReflectAndEdgePadThenFlatten()
    {
        var model = new OnnxBuilder().Input("x", 1, 2, 4, 5).Output("y")
            .Initializer("p1", [0, 0, 1, 2, 0, 0, 2, 0]).Initializer("p2", [0, 0, 2, 1, 0, 0, 1, 3]).Initializer("p3", [0, 0, 0, 1, 0, 0, 1, 0])
            .Initializer("fill", [], [0.25f])
            .Node("Pad", ["x", "p1", "fill"], ["a"])
            .Node("Pad", ["a", "p2"], ["b"], ("mode", "reflect"))
            .Node("Pad", ["b", "p3"], ["c"], ("mode", "edge"))
            .Node("Flatten", ["c"], ["y"]);
        Check(model, atLeast: 24);
    }

    [Fact]
    public void ReshapeIdentityAndDropoutPassGradientsThrough()
    {
        var model = new OnnxBuilder().Input("x", 1, 2, 3, 4).Output("y")
            .Initializer("shape", [1, 6, 4])
            .Node("Reshape", ["x", "shape"], ["r"])
            .Node("Identity", ["r"], ["i"])
            .Node("Dropout", ["i"], ["y"]);
        var graph = GradientCheck.Prepare(model);
        Assert.Equal(new[] { 1, 6, 4 }, graph["y"].Shape);
        Assert.InRange(GradientCheck.Run(graph, batch: 2), 24, 10_000);
    }

    [Fact]
    public void ReshapeThatMixesTheBatchIsRefused()
    {
        var model = new OnnxBuilder().Input("x", 1, 2, 3).Output("y")
            .Initializer("shape", [2, 3]).Node("Reshape", ["x", "shape"], ["y"]);
        var e = Assert.Throws<ModelGenException>(() => TrainableModel.Build(GradientCheck.Prepare(model)));
        Assert.Equal(ErrorCodes.NotTrainable, e.Code);
    }
}
