using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Training;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Training;

public class ConvGradientTests
{
    static float[] R(int n, int seed) => OnnxBuilder.Random(n, seed);

    /// <summary>One Conv node y = conv(x, w[, b]) with the given attributes.</summary>
    static OnnxBuilder Conv(int[] x, int[] w, bool bias, params (string, object)[] attributes)
    {
        var model = new OnnxBuilder().Input("x", [.. x.Select(d => (int?)d)]).Output("y")
            .Initializer("w", w, R(w.Aggregate(1, (a, d) => a * d), 11));
        if (bias) model.Initializer("b", [w[0]], R(w[0], 12));
        return model.Node("Conv", bias ? ["x", "w", "b"] : ["x", "w"], ["y"], attributes);
    }

    static void Check(OnnxBuilder model, int batch = 3, int atLeast = 40)
    {
        var graph = GradientCheck.Prepare(model);
        ForwardCheck.MatchesReference(graph);
        Assert.InRange(GradientCheck.Run(graph, batch), atLeast, 10_000);
    }

    [Fact]
    public void Kernel3x5Stride2AsymmetricPadsDilation2()
        => Check(Conv([1, 2, 9, 11], [3, 2, 3, 5], bias: true,
            ("strides", new long[] { 2, 2 }), ("pads", new long[] { 1, 2, 0, 3 }), ("dilations", new long[] { 2, 2 })));

    [Fact]
    public void UnevenStridesWithoutBias()
        => Check(Conv([1, 3, 8, 7], [2, 3, 2, 3], bias: false, ("strides", new long[] { 3, 2 }), ("pads", new long[] { 0, 1, 2, 0 })));

    [Fact]
    public void TwoGroups()
        => Check(Conv([1, 4, 7, 6], [6, 2, 3, 3], bias: true, ("group", 2L), ("pads", new long[] { 1, 1, 1, 1 })));

    [Fact]
    public void ThreeGroupsStrided()
        => Check(Conv([1, 6, 5, 7], [3, 2, 2, 3], bias: true, ("group", 3L), ("strides", new long[] { 1, 2 }), ("pads", new long[] { 0, 1, 1, 0 })));

    [Fact]
    public void ManyFiltersAndTapsInTwoGroups()
        => Check(Conv([1, 16, 6, 5], [34, 8, 3, 3], bias: true, ("group", 2L), ("strides", new long[] { 1, 2 }), ("pads", new long[] { 1, 1, 0, 1 })), atLeast: 60);

    [Fact]
    public void Depthwise()
        => Check(Conv([1, 3, 7, 7], [3, 1, 3, 3], bias: true, ("group", 3L), ("strides", new long[] { 2, 2 }), ("pads", new long[] { 1, 1, 1, 1 })));

    [Fact]
    public void DepthwiseWithMultiplier2()
        => Check(Conv([1, 3, 6, 5], [6, 1, 3, 3], bias: true, ("group", 3L), ("pads", new long[] { 1, 0, 1, 2 })));

    [Fact]
    public void OneByThreeThenThreeByOne()
    {
        var model = new OnnxBuilder().Input("x", 1, 2, 5, 7).Output("y")
            .Initializer("w1", [3, 2, 1, 3], R(18, 1)).Initializer("b1", [3], R(3, 2))
            .Initializer("w2", [2, 3, 3, 1], R(18, 3))
            .Node("Conv", ["x", "w1", "b1"], ["h"], ("pads", new long[] { 0, 1, 0, 1 }))
            .Node("Conv", ["h", "w2"], ["y"], ("strides", new long[] { 2, 1 }));
        Check(model, atLeast: 60);
    }

    [Fact]
    public void OneDimensionalStridedDilated()
        => Check(Conv([1, 3, 11], [4, 3, 3], bias: true, ("strides", new long[] { 2 }), ("pads", new long[] { 1, 2 }), ("dilations", new long[] { 2 })));

    [Fact]
    public void FusedRelu()
    {
        var model = Conv([1, 2, 6, 5], [4, 2, 3, 3], bias: true, ("pads", new long[] { 1, 1, 1, 1 }));
        model.Model.Graph.Node[0].Output[0] = "c";
        model.Node("Relu", ["c"], ["y"]);
        var graph = GradientCheck.Prepare(model);
        Assert.StartsWith("Relu", graph.Nodes.Single().Annotations["activation"]);
        ForwardCheck.MatchesReference(graph);
        Assert.InRange(GradientCheck.Run(graph, batch: 2), 40, 10_000);
    }
}

/// <summary>The engine's forward pass computes the model as inference does.</summary>
public static class ForwardCheck
{
    /// <summary>
    /// The engine's float32 forward pass over a batch against the reference evaluator, sample by sample: within
    /// 1e-5 of the output's largest magnitude (the evaluator sums in double, the engine in float32 FMAs, so an
    /// output that cancels to near zero is compared at the tensor's scale, not its own).
    /// </summary>
    public static void MatchesReference(Graph graph, int batch = 3)
    {
        var model = TrainableModel.Build(graph);
        string input = graph.Inputs.Single();
        int[] sample = graph[input].Shape!;
        int size = sample.Aggregate(1, (a, d) => a * d);
        var x = OnnxBuilder.Random(batch * size, 5);
        var pass = model.Forward(new Dictionary<string, Tensor<float>> { [input] = new([batch, .. sample[1..]], x) });
        foreach (string output in graph.Outputs)
        {
            var engine = pass[output].Data;
            int outSize = engine.Length / batch;
            for (int s = 0; s < batch; s++)
            {
                var reference = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { [input] = new(sample, x[(s * size)..((s + 1) * size)]) })[output].Floats;
                Assert.Equal(outSize, reference.Length);
                float scale = reference.Max(MathF.Abs);
                for (int i = 0; i < outSize; i++)
                    Assert.True(MathF.Abs(engine[s * outSize + i] - reference[i]) <= 1e-5f * scale,
                        $"{output}[{s}, {i}]: engine {engine[s * outSize + i]:R}, reference {reference[i]:R}");
            }
        }
    }
}
