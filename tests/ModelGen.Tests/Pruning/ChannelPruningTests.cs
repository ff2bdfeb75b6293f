using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Pruning;

/// <summary>
/// Structured pruning on small graphs whose weights make it exact: the channels chosen to go have all-zero filters (the
/// smallest norm, so pruning at a half removes exactly them) and every layer reading them reads them with zero weights.
/// The pruned graph must then compute what the original does: its evaluator outputs and its compiled code against
/// ONNX Runtime on the original model, with shapes and sizes worked out by hand.
/// </summary>
public class ChannelPruningTests(ITestOutputHelper output)
{
    /// <summary>Seeded values in [-1, 1) for a tensor of <paramref name="shape"/>, with channels zeroed along axis 0 and axis 1.</summary>
    static float[] Weights(int[] shape, int seed, int[]? zeroRows = null, int[]? zeroColumns = null, int columnInner = 1)
    {
        var values = OnnxBuilder.Random(shape.Aggregate(1, (a, b) => a * b), seed);
        int rows = shape[0], per = values.Length / rows;
        int taps = per / (shape.Length > 1 ? shape[1] : 1);
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < per; i++)
            {
                int column = i / taps;
                if (zeroRows?.Contains(r) == true || zeroColumns?.Contains(column / columnInner) == true) values[r * per + i] = 0f;
            }
        return values;
    }

    static OnnxBuilder Conv(OnnxBuilder b, string name, string input, string output, int[] weightShape, int seed, int[]? zeroRows = null, int[]? zeroColumns = null, int group = 1, int pad = 0)
    {
        b.Initializer(name + ".w", weightShape, Weights(weightShape, seed, zeroRows, zeroColumns))
            .Initializer(name + ".b", [weightShape[0]], OnnxBuilder.Random(weightShape[0], seed + 1000));
        return b.Node("Conv", [input, name + ".w", name + ".b"], [output], ("group", group), ("pads", new long[] { pad, pad, pad, pad })).NamedLast(name);
    }

    /// <summary>
    /// Prunes half of every prunable group's channels and checks the pruned graph against the original: evaluator
    /// against evaluator, ONNX Runtime on the original file, and the compiled pruned model against ONNX Runtime.
    /// </summary>
    Graph PruneHalfExactly(OnnxBuilder model, int[] inputShape)
    {
        string path = model.Save();
        var options = new CompileOptions { ModelPath = path, Pruning = 0.5, PruningKind = "channels", ClassName = "Pruned", Namespace = "ChannelPruning" };
        var original = ModelCompiler.Prepare(options.Original);
        var artifact = ModelCompiler.Compile(options, out var pruned);
        output.WriteLine(pruned.CompressionStages[0].Name);
        var input = OnnxBuilder.Random(inputShape.Aggregate(1, (a, b) => a * b), 7);
        var feed = new Dictionary<string, TensorData> { [original.Inputs[0]] = new(inputShape, input) };
        var expected = ReferenceEvaluator.Run(original, feed)[original.Outputs[0]].Floats;
        Tolerance.AssertClose(expected, ReferenceEvaluator.Run(pruned, feed)[pruned.Outputs[0]].Floats, "pruned graph against the original, evaluator");
        using var ort = new OnnxRuntimeOracle(path);
        var onnxRuntime = ort.Run((original.Inputs[0], input, inputShape))[0];
        Tolerance.AssertClose(onnxRuntime, expected, "original graph, evaluator against ONNX Runtime");
        var generated = artifact.Outputs.Select(o => new float[artifact.Tensors[o.Tensor].ElementCount]).ToArray();
        GeneratedModels.Build(artifact).Run(artifact, [input], generated);
        Tolerance.AssertClose(onnxRuntime, generated[0], "compiled pruned model against ONNX Runtime on the original");
        return pruned;
    }

    static int[] WeightShape(Graph graph, string node) => graph[graph.Nodes.Single(n => n.Name == node).Inputs[1]].Constant!.Shape;

    static long Parameters(Graph graph) => graph.Nodes.SelectMany(n => n.Inputs.Skip(1)).Where(i => i.Length > 0 && graph[i].Constant is { Type: ElementType.Float32 })
        .Distinct().Sum(i => graph[i].Constant!.Count);

    [Fact]
    public void ConvBatchNormReluConvLosesTheZeroFilters()
    {
        var b = new OnnxBuilder().Input("x", 1, 3, 6, 6).Output("y");
        Conv(b, "conv1", "x", "c1", [4, 3, 3, 3], 1, zeroRows: [0, 3]);
        b.Initializer("bn.scale", [4], [1.5f, 0.5f, 2f, 1f]).Initializer("bn.b", [4], [0.1f, -0.2f, 0.3f, 0.4f])
            .Initializer("bn.mean", [4], [0.05f, 0.1f, -0.1f, 0f]).Initializer("bn.var", [4], [1f, 0.5f, 2f, 1.5f])
            .Node("BatchNormalization", ["c1", "bn.scale", "bn.b", "bn.mean", "bn.var"], ["n1"])
            .Node("Relu", ["n1"], ["r1"]);
        Conv(b, "conv2", "r1", "y", [2, 4, 3, 3], 2, zeroColumns: [0, 3]);
        var pruned = PruneHalfExactly(b, [1, 3, 6, 6]);
        Assert.Equal([2, 3, 3, 3], WeightShape(pruned, "conv1"));
        Assert.Equal([2, 2, 3, 3], WeightShape(pruned, "conv2"));
        Assert.Equal([1, 2, 4, 4], pruned["r1"].Shape!);
        Assert.Equal(2 * 27 + 2 + 2 * 18 + 2, Parameters(pruned)); // BatchNormalization folded into conv1
    }

    /// <summary>BatchNormalization after the Relu is not folded: its four parameters lose the channels too.</summary>
    [Fact]
    public void UnfusedBatchNormalizationParametersLoseTheChannels()
    {
        var b = new OnnxBuilder().Input("x", 1, 3, 5, 5).Output("y");
        Conv(b, "conv1", "x", "c1", [4, 3, 1, 1], 3, zeroRows: [1, 2]);
        b.Node("Relu", ["c1"], ["r1"])
            .Initializer("bn.scale", [4], [1.5f, 0.5f, 2f, 1f]).Initializer("bn.b", [4], [0.1f, -0.2f, 0.3f, 0.4f])
            .Initializer("bn.mean", [4], [0.05f, 0.1f, -0.1f, 0f]).Initializer("bn.var", [4], [1f, 0.5f, 2f, 1.5f])
            .Node("BatchNormalization", ["r1", "bn.scale", "bn.b", "bn.mean", "bn.var"], ["n1"]);
        Conv(b, "conv2", "n1", "y", [3, 4, 1, 1], 4, zeroColumns: [1, 2]);
        var pruned = PruneHalfExactly(b, [1, 3, 5, 5]);
        var bn = pruned.Nodes.Single(n => n.OpType == "BatchNormalization");
        Assert.All(bn.Inputs.Skip(1), p => Assert.Equal([2], pruned[p].Constant!.Shape));
        Assert.Equal([1.5f, 1f], pruned[bn.Inputs[1]].Constant!.Floats);
    }

    /// <summary>LeNet's pattern: the Dense layer after Flatten loses H·W columns per channel; its own neurons go too, not the last layer's.</summary>
    [Fact]
    public void ConvMaxPoolFlattenDenseLosesChannelsAndNeurons()
    {
        var b = new OnnxBuilder().Input("x", 1, 1, 8, 8).Output("y");
        Conv(b, "conv", "x", "c", [4, 1, 3, 3], 5, zeroRows: [1, 2]);
        b.Node("Relu", ["c"], ["r"]).Node("MaxPool", ["r"], ["p"], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 }))
            .Node("Flatten", ["p"], ["f"])
            .Initializer("f1.w", [6, 36], Weights([6, 36], 6, zeroRows: [0, 5], zeroColumns: [1, 2], columnInner: 9)).Initializer("f1.b", [6], OnnxBuilder.Random(6, 7))
            .Node("Gemm", ["f", "f1.w", "f1.b"], ["h"], ("transB", 1L)).NamedLast("f1")
            .Node("Relu", ["h"], ["hr"])
            .Initializer("f2.w", [3, 6], Weights([3, 6], 8, zeroColumns: [0, 5])).Initializer("f2.b", [3], OnnxBuilder.Random(3, 9))
            .Node("Gemm", ["hr", "f2.w", "f2.b"], ["y"], ("transB", 1L)).NamedLast("f2");
        var original = ModelCompiler.Prepare(new CompileOptions { ModelPath = b.Save() });
        var pruned = PruneHalfExactly(b, [1, 1, 8, 8]);
        Assert.Equal([2, 1, 3, 3], WeightShape(pruned, "conv"));
        Assert.Equal([3, 18], WeightShape(pruned, "f1"));
        Assert.Equal([3, 3], WeightShape(pruned, "f2"));
        Assert.Equal(4 * 9 + 4 + 6 * 36 + 6 + 3 * 6 + 3, Parameters(original));
        Assert.Equal(2 * 9 + 2 + 3 * 18 + 3 + 3 * 3 + 3, Parameters(pruned));
        // conv: outputs × taps; Dense: outputs × inputs.
        Assert.Equal(4 * 36 * 9 + 6 * 36 + 3 * 6, MultiplyAdds.Total(original));
        Assert.Equal(2 * 36 * 9 + 3 * 18 + 3 * 3, MultiplyAdds.Total(pruned));
    }

    /// <summary>
    /// The Taylor estimate of a channel that nothing downstream reads (its filter zero, its readers' weights zero) is
    /// exactly zero: no weight times gradient survives. Every channel read with nonzero weights counts.
    /// </summary>
    [Fact]
    public void TaylorImportanceIsZeroForChannelsTheLossDoesNotSee()
    {
        var b = new OnnxBuilder().Input("x", 1, 1, 8, 8).Output("y");
        Conv(b, "conv", "x", "c", [4, 1, 3, 3], 5, zeroRows: [1, 2]);
        b.Node("Relu", ["c"], ["r"]).Node("Flatten", ["r"], ["f"])
            .Initializer("f1.w", [3, 144], Weights([3, 144], 6, zeroColumns: [1, 2], columnInner: 36)).Initializer("f1.b", [3], OnnxBuilder.Random(3, 7))
            .Node("Gemm", ["f", "f1.w", "f1.b"], ["y"], ("transB", 1L)).NamedLast("f1");
        var graph = ModelCompiler.Prepare(new CompileOptions { ModelPath = b.Save() });
        var groups = ChannelDependencies.Analyze(graph).Groups.Where(g => g.Prunable).ToList();
        var samples = OnnxBuilder.Random(16 * 64, 9);
        var data = new Compiler.Training.TrainingSet(new Compiler.Data.DataSet([new Compiler.Data.DataInput("x", [1, 1, 8, 8])], [samples], 16), [.. Enumerable.Range(0, 16).Select(i => (long)(i % 3))]);
        var importance = ChannelPruning.TaylorImportance(graph, groups, data)[Assert.Single(groups).Id];
        Assert.Equal(0, importance[1]);
        Assert.Equal(0, importance[2]);
        Assert.True(importance[0] > 0 && importance[3] > 0, string.Join(", ", importance));
    }

    /// <summary>Depthwise convolutions go with their input's channels: their filters, biases and group shrink, and the next pointwise layer's inputs.</summary>
    [Fact]
    public void DepthwiseChainsFollowTheirInputChannels()
    {
        var b = new OnnxBuilder().Input("x", 1, 3, 8, 8).Output("y");
        Conv(b, "pw1", "x", "a", [6, 3, 1, 1], 11, zeroRows: [1, 4, 5]);
        b.Node("Relu", ["a"], ["ar"]);
        Conv(b, "dw1", "ar", "d", [6, 1, 3, 3], 12, group: 6, pad: 1);
        b.Initializer("zero", [], [0f]).Initializer("six", [], [6f]).Node("Clip", ["d", "zero", "six"], ["dr"]);
        Conv(b, "pw2", "dr", "e", [4, 6, 1, 1], 13, zeroRows: [0, 3], zeroColumns: [1, 4, 5]);
        b.Node("Relu", ["e"], ["er"]);
        Conv(b, "dw2", "er", "g", [4, 1, 3, 3], 14, group: 4);
        b.Node("GlobalAveragePool", ["g"], ["gp"]).Node("Flatten", ["gp"], ["gf"])
            .Initializer("fc.w", [3, 4], Weights([3, 4], 15, zeroColumns: [0, 3])).Initializer("fc.b", [3], OnnxBuilder.Random(3, 16))
            .Node("Gemm", ["gf", "fc.w", "fc.b"], ["y"], ("transB", 1L)).NamedLast("fc");
        var pruned = PruneHalfExactly(b, [1, 3, 8, 8]);
        Assert.Equal([3, 3, 1, 1], WeightShape(pruned, "pw1"));
        Assert.Equal([3, 1, 3, 3], WeightShape(pruned, "dw1"));
        Assert.Equal(3, pruned.Nodes.Single(n => n.Name == "dw1").Int("group", 0));
        Assert.Equal([2, 3, 1, 1], WeightShape(pruned, "pw2"));
        Assert.Equal([2, 1, 3, 3], WeightShape(pruned, "dw2"));
        Assert.Equal([3, 2], WeightShape(pruned, "fc"));
    }

    /// <summary>A residual Add ties both producers' channels into one group, pruned the same in both.</summary>
    [Fact]
    public void ResidualAddPrunesBothProducersConsistently()
    {
        var b = new OnnxBuilder().Input("x", 1, 3, 6, 6).Output("y");
        Conv(b, "convA", "x", "a", [4, 3, 1, 1], 21, zeroRows: [0, 2]);
        b.Node("Relu", ["a"], ["ar"]);
        Conv(b, "convB", "ar", "bo", [4, 4, 3, 3], 22, zeroRows: [0, 2], zeroColumns: [0, 2], pad: 1);
        b.Node("Add", ["ar", "bo"], ["s"]).Node("Relu", ["s"], ["sr"]);
        Conv(b, "convC", "sr", "y", [2, 4, 1, 1], 23, zeroColumns: [0, 2]);
        var pruned = PruneHalfExactly(b, [1, 3, 6, 6]);
        var groups = ChannelDependencies.Analyze(ModelCompiler.Prepare(new CompileOptions { ModelPath = b.Save() })).Groups;
        var tied = Assert.Single(groups, g => g.Producers.Count == 2);
        Assert.True(tied.Prunable);
        Assert.Equal(["convA", "convB"], tied.Producers.Select(p => p.Name));
        Assert.Equal([2, 3, 1, 1], WeightShape(pruned, "convA"));
        Assert.Equal([2, 2, 3, 3], WeightShape(pruned, "convB"));
        Assert.Equal([2, 2, 1, 1], WeightShape(pruned, "convC"));
    }

    /// <summary>Concat lays its inputs' channels side by side: the layer after it loses each input's removed channels at that input's offset.</summary>
    [Fact]
    public void ConcatOffsetsEachInputsChannels()
    {
        var b = new OnnxBuilder().Input("x", 1, 3, 6, 6).Output("y");
        Conv(b, "convA", "x", "a", [4, 3, 3, 3], 31, zeroRows: [1, 3]);
        b.Node("Relu", ["a"], ["ar"]);
        Conv(b, "convB", "x", "bo", [4, 3, 3, 3], 32, zeroRows: [0, 2]);
        b.Node("Concat", ["ar", "bo"], ["c"], ("axis", 1L));
        Conv(b, "convC", "c", "y", [2, 8, 1, 1], 33, zeroColumns: [1, 3, 4, 6]);
        var pruned = PruneHalfExactly(b, [1, 3, 6, 6]);
        Assert.Equal([2, 4, 1, 1], WeightShape(pruned, "convC"));
        Assert.Equal([1, 4, 4, 4], pruned["c"].Shape!);
    }

    /// <summary>A Reshape that mixes channels with positions, and a graph output, keep their producers' channels whole.</summary>
    [Fact]
    public void WhatTheAnalysisDoesNotFollowIsNotPruned()
    {
        var b = new OnnxBuilder().Input("x", 1, 3, 4, 4).Output("y").Output("z");
        Conv(b, "conv1", "x", "a", [4, 3, 1, 1], 41, zeroRows: [0, 1]);
        b.Initializer("shape", [1, 2, 8, 4]).Node("Reshape", ["a", "shape"], ["m"]);
        Conv(b, "conv2", "m", "y", [2, 2, 1, 1], 42);
        Conv(b, "conv3", "x", "z", [3, 3, 1, 1], 43, zeroRows: [0]);
        var graph = ModelCompiler.Prepare(new CompileOptions { ModelPath = b.Save() });
        var groups = ChannelDependencies.Analyze(graph).Groups;
        Assert.All(groups, g => Assert.False(g.Prunable));
        Assert.Contains("Reshape", groups.Single(g => g.Producers[0].Name == "conv1").NotPrunable);
        Assert.Contains("graph output", groups.Single(g => g.Producers[0].Name == "conv3").NotPrunable);
        var pruned = PruneHalfExactly(b, [1, 3, 4, 4]);
        Assert.Equal([4, 3, 1, 1], WeightShape(pruned, "conv1"));
        Assert.Equal([3, 3, 1, 1], WeightShape(pruned, "conv3"));
    }

    [Fact]
    public void KeepRemovesTheLeastImportantAndAlwaysKeepsOne()
    {
        Assert.Equal([true, false, true, false], ChannelPruning.Keep([3, 1, 2, 0.5], 0.5));
        Assert.Equal([false, true, true], ChannelPruning.Keep([1, 1, 1], 0.5)); // a tie: the earlier goes
        Assert.Equal([true], ChannelPruning.Keep([0], 0.9));
    }

    [Fact]
    public void AnUnknownPruningKindIsBadOption()
    {
        var e = Assert.Throws<ModelGenException>(() => CompressionPlan.Parse(new CompileOptions { ModelPath = "m.onnx", Pruning = 0.5, PruningKind = "filters" }));
        Assert.Equal(ErrorCodes.BadOption, e.Code);
        Assert.Contains("--pruning-kind", e.Message);
    }
}
