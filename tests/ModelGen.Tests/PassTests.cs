using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Normalize;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>Each normalization pass on its own: the graph's shape after it, and unchanged outputs.</summary>
public sealed class PassTests
{
    static float[] R(int n, int seed) => OnnxBuilder.Random(n, seed);

    /// <summary>Runs <paramref name="pass"/> and checks the evaluator gives the same outputs before and after.</summary>
    static Graph Check(OnnxBuilder model, Action<Graph> pass, params (string Name, int[] Shape)[] inputs)
    {
        var graph = ModelCompiler.Import(model.Save());
        var feed = inputs.Select((x, k) => (x.Name, Data: new TensorData(x.Shape, R(x.Shape.Aggregate(1, (a, b) => a * b), 50 + k))))
            .ToDictionary(x => x.Name, x => x.Data);
        var before = ReferenceEvaluator.Run(graph, feed);
        pass(graph);
        var after = ReferenceEvaluator.Run(graph, feed);
        foreach (var (name, expected) in before)
            Tolerance.AssertClose(expected.Floats, after[name].Floats, name, 1e-5, 1e-6);
        return graph;
    }

    [Fact]
    public void ConstantFoldingLeavesOnlyRunTimeNodesOfTheShapeChain()
    {
        var model = new OnnxBuilder().Input("x", 2, 3, 4)
            .Node("Shape", ["x"], ["s"]).ScalarInitializer("zero", 0).Node("Gather", ["s", "zero"], ["n"])
            .Initializer("axes", [0]).Node("Unsqueeze", ["n", "axes"], ["n1"]).Initializer("minus1", [-1])
            .Node("Concat", ["n1", "minus1"], ["shape"], ("axis", 0)).Node("Reshape", ["x", "shape"], ["r"])
            .Node("Constant", [], ["c"], ("value_float", 2f)).Node("Mul", ["r", "c"], ["y"]).Output("y");
        var graph = ModelCompiler.Import(model.Save());
        Assert.Equal(["Reshape", "Mul"], graph.Nodes.Select(n => n.OpType));
        Assert.Equal([2L, -1L], graph["shape"].Constant!.Ints);
        Assert.Equal([2, 12], graph["y"].Shape!);
    }

    [Fact]
    public void WholeWindowAveragePoolsBecomeGlobal()
    {
        // TensorFlow's last pooling in MobileNetV2: one window over the whole input (here with strides and ceil_mode,
        // still one window). A padded one and a smaller one stay AveragePool.
        var model = new OnnxBuilder(13).Input("x", 1, 3, 4, 5)
            .Node("AveragePool", ["x"], ["a"], ("kernel_shape", new[] { 4, 5 }), ("strides", new[] { 2, 2 }), ("ceil_mode", 1))
            .Node("AveragePool", ["x"], ["b"], ("kernel_shape", new[] { 4, 5 }), ("pads", new[] { 1, 0, 0, 0 }))
            .Node("AveragePool", ["x"], ["c"], ("kernel_shape", new[] { 2, 5 }))
            .Output("a").Output("b").Output("c");
        var graph = Check(model, Passes.WholeWindowAveragePools, ("x", [1, 3, 4, 5]));
        Assert.Equal(["GlobalAveragePool", "AveragePool", "AveragePool"], graph.Nodes.Select(n => n.OpType));
        Assert.Empty(graph.Nodes[0].Attributes);
        // The means ONNX Runtime computes for the original node.
        var x = R(60, 9);
        using var ort = new OnnxRuntimeOracle(model.Save());
        var expected = ort.Run(("x", x, [1, 3, 4, 5]))[0];
        var actual = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { ["x"] = new([1, 3, 4, 5], x) })["a"];
        Assert.Equal([1, 3, 1, 1], actual.Shape);
        Tolerance.AssertClose(expected, actual.Floats, "a", 1e-5, 1e-6);
    }

    [Fact]
    public void BatchNormalizationFoldsIntoTheConvBeforeIt()
    {
        var model = new OnnxBuilder().Input("x", 1, 2, 5, 5).Initializer("w", [3, 2, 3, 3], R(54, 1))
            .Initializer("scale", [3], R(3, 2)).Initializer("B", [3], R(3, 3)).Initializer("mean", [3], R(3, 4))
            .Initializer("var", [3], [.. R(3, 5).Select(v => 1 + Math.Abs(v))])
            .Node("Conv", ["x", "w"], ["c"]).Node("BatchNormalization", ["c", "scale", "B", "mean", "var"], ["y"]).Output("y");
        var graph = Check(model, Passes.FoldBatchNormalization, ("x", [1, 2, 5, 5]));
        var conv = Assert.Single(graph.Nodes);
        Assert.Equal("Conv", conv.OpType);
        Assert.Equal("y", conv.Outputs[0]);
        Assert.Equal(3, conv.Inputs.Count);
    }

    [Fact]
    public void ChannelConstantsFoldIntoTheConvBeforeThem()
    {
        // CNTK's Convolution then Plus (mnist-8), a scale first or second, y - c: folded. A constant that varies along
        // the width, and c - y, are not one affine map per channel: they stay.
        var model = new OnnxBuilder().Input("x", 1, 2, 5, 5);
        foreach (string c in new[] { "a", "b", "c", "d", "e" }) model.Initializer($"w{c}", [3, 2, 3, 3], R(54, c[0]));
        model.Initializer("bb", [3], R(3, 7)).Initializer("plus", [3, 1, 1], R(3, 8)).Initializer("scale", [1], [0.75f])
            .Initializer("minus", [1, 3, 1, 1], R(3, 9)).Initializer("byWidth", [1, 1, 3], R(3, 10)).Initializer("from", [3, 1, 1], R(3, 11))
            .Node("Conv", ["x", "wa"], ["ca"]).Node("Add", ["ca", "plus"], ["ya0"]).Node("Relu", ["ya0"], ["ya"])
            .Node("Conv", ["x", "wb", "bb"], ["cb"]).Node("Mul", ["scale", "cb"], ["yb"])
            .Node("Conv", ["x", "wc", "bb"], ["cc"]).Node("Sub", ["cc", "minus"], ["yc"])
            .Node("Conv", ["x", "wd"], ["cd"]).Node("Add", ["cd", "byWidth"], ["yd"])
            .Node("Conv", ["x", "we"], ["ce"]).Node("Sub", ["from", "ce"], ["ye"])
            .Output("ya").Output("yb").Output("yc").Output("yd").Output("ye");
        var graph = Check(model, Passes.FoldChannelConstants, ("x", [1, 2, 5, 5]));
        Assert.Equal(["Conv", "Relu", "Conv", "Conv", "Conv", "Add", "Conv", "Sub"], graph.Nodes.Select(n => n.OpType));
        Assert.Equal(["ya0", "yb", "yc"], graph.Nodes.Where(n => n.OpType == "Conv").Take(3).Select(n => n.Outputs[0]));
        // The folded graph against ONNX Runtime on the original.
        var x = R(50, 12);
        using var ort = new OnnxRuntimeOracle(model.Save());
        var expected = ort.Run(("x", x, [1, 2, 5, 5]));
        var folded = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { ["x"] = new([1, 2, 5, 5], x) });
        foreach (var (name, i) in new[] { ("ya", 0), ("yb", 1), ("yc", 2), ("yd", 3), ("ye", 4) })
            Tolerance.AssertClose(expected[i], folded[name].Floats, name, 1e-5, 1e-6);
    }

    [Fact]
    public void ZeroPadFoldsIntoTheConvsThatReadIt()
    {
        // TensorFlow's "same" padding for a stride-2 convolution: one more row and column at the end, as a Pad
        // node; two Convs read it (one already padded). Both take the Pad's amounts, and the Pad goes.
        var model = new OnnxBuilder(13).Input("x", 1, 2, 8, 9).Initializer("pads", [0L, 0, 0, 0, 0, 0, 1, 1])
            .Node("Pad", ["x", "pads"], ["p"])
            .Initializer("w", [3, 2, 3, 3], R(54, 1)).Node("Conv", ["p", "w"], ["a"], ("strides", new[] { 2, 2 }))
            .Initializer("v", [2, 1, 3, 3], R(18, 2)).Node("Conv", ["p", "v"], ["b"], ("group", 2), ("pads", new[] { 1, 0, 1, 2 }))
            .Output("a").Output("b");
        var graph = Check(model, Passes.FoldPadIntoConv, ("x", [1, 2, 8, 9]));
        Assert.Equal(["Conv", "Conv"], graph.Nodes.Select(n => n.OpType));
        Assert.All(graph.Nodes, n => Assert.Equal("x", n.Inputs[0]));
        Assert.Equal([0L, 0, 1, 1], graph.Nodes[0].Ints("pads")!);
        Assert.Equal([1L, 0, 2, 3], graph.Nodes[1].Ints("pads")!);
    }

    [Fact]
    public void PadsThatAreNotZerosOnTheSpatialAxesStay()
    {
        // A non-zero value, padded channels, edge mode, and a Pad that something else reads too: all kept.
        var model = new OnnxBuilder(13).Input("x", 1, 2, 6, 6).Initializer("w", [3, 2, 3, 3], R(54, 1)).Initializer("w3", [3, 3, 3, 3], R(81, 2))
            .Initializer("hw", [0L, 0, 1, 1, 0, 0, 1, 1]).Initializer("ch", [0L, 0, 0, 0, 0, 1, 0, 0]).Initializer("one", [1], [1f])
            .Node("Pad", ["x", "hw", "one"], ["p1"]).Node("Conv", ["p1", "w"], ["a"])
            .Node("Pad", ["x", "ch"], ["p2"]).Node("Conv", ["p2", "w3"], ["b"])
            .Node("Pad", ["x", "hw"], ["p3"], ("mode", "edge")).Node("Conv", ["p3", "w"], ["c"])
            .Node("Pad", ["x", "hw"], ["p4"]).Node("Conv", ["p4", "w"], ["d"]).Node("Relu", ["p4"], ["e"])
            .Output("a").Output("b").Output("c").Output("d").Output("e");
        var graph = Check(model, Passes.FoldPadIntoConv, ("x", [1, 2, 6, 6]));
        Assert.Equal(4, graph.Nodes.Count(n => n.OpType == "Pad"));
    }

    [Fact]
    public void ActivationsFuseIntoTheirProducerOnlyWhenNothingElseReadsIt()
    {
        var model = new OnnxBuilder().Input("x", 1, 2, 5, 5).Initializer("w", [3, 2, 3, 3], R(54, 1))
            .Node("Conv", ["x", "w"], ["c"]).Node("Relu", ["c"], ["r"])
            .Node("Add", ["r", "r"], ["s"]).Node("Sigmoid", ["s"], ["t"]).Node("Tanh", ["s"], ["u"]).Node("Add", ["t", "u"], ["y"]).Output("y");
        var graph = Check(model, Passes.FuseActivations, ("x", [1, 2, 5, 5]));
        Assert.Equal(["Conv", "Add", "Sigmoid", "Tanh", "Add"], graph.Nodes.Select(n => n.OpType));
        Assert.StartsWith("Relu", graph.Nodes[0].Annotations["activation"]);
        Assert.False(graph.Nodes[1].Annotations.ContainsKey("activation")); // s has two readers
    }

    [Fact]
    public void ActivationChainsFuseWithMaxMinAndMulByOneValue()
    {
        // TensorFlow's clipped leaky ReLU as tf2onnx writes it (LeakyRelu, then Max with a constant), a Mul by one
        // value and a Min: one chain in the Conv. A Max with a per-channel constant is not a step: it stays.
        var model = new OnnxBuilder().Input("x", 1, 2, 5, 5).Initializer("w", [3, 2, 3, 3], R(54, 1))
            .Initializer("floor", [], [-0.1f]).Initializer("half", [1], [0.5f]).Initializer("cap", [1, 1, 1, 1], [0.3f])
            .Initializer("perChannel", [3, 1, 1], [0.1f, -0.2f, 0.3f])
            .Node("Conv", ["x", "w"], ["c"]).Node("LeakyRelu", ["c"], ["l"], ("alpha", 0.2f)).Node("Max", ["floor", "l"], ["m"])
            .Node("Mul", ["m", "half"], ["s"]).Node("Min", ["s", "cap"], ["y"])
            .Node("Conv", ["x", "w"], ["c2"]).Node("Relu", ["c2"], ["r2"]).Node("Max", ["r2", "perChannel"], ["y2"])
            .Output("y").Output("y2");
        var graph = Check(model, Passes.FuseActivations, ("x", [1, 2, 5, 5]));
        Assert.Equal(["Conv", "Conv", "Max"], graph.Nodes.Select(n => n.OpType));
        var steps = ModelGen.Artifact.Activations.ParseChain(graph.Nodes[0].Annotations["activation"]);
        Assert.Equal([("LeakyRelu", 0.2f), ("Clip", -0.1f), ("Scale", 0.5f), ("Clip", float.NegativeInfinity)], steps.Select(s => (s.Op, s.Alpha)));
        Assert.Equal(0.3f, steps[3].Beta);
        Assert.Equal("Relu", ModelGen.Artifact.Activations.ParseChain(graph.Nodes[1].Annotations["activation"]).Single().Op);
        // The fused graph against ONNX Runtime on the original.
        var x = R(50, 12);
        using var ort = new OnnxRuntimeOracle(model.Save());
        var expected = ort.Run(("x", x, [1, 2, 5, 5]));
        var fused = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { ["x"] = new([1, 2, 5, 5], x) });
        Tolerance.AssertClose(expected[0], fused["y"].Floats, "y", 1e-5, 1e-6);
        Tolerance.AssertClose(expected[1], fused["y2"].Floats, "y2", 1e-5, 1e-6);
    }

    [Theory]
    [InlineData("Relu", 0f, float.PositiveInfinity)]
    [InlineData("Relu|Clip:-Infinity:6", 0f, 6f)]
    [InlineData("Clip:-1:1|Clip:0.5:Infinity", 0.5f, 1f)]
    [InlineData("Clip:-1:1|Clip:2:3", 2f, 2f)] // disjoint: every value becomes 2
    public void ChainsOfClampsAreOneClamp(string chain, float lo, float hi)
    {
        Assert.Equal((lo, hi), ModelGen.Artifact.Activations.AsClamp(chain));
        // Against applying the steps one by one.
        foreach (float v in new[] { -5f, -0.7f, 0f, 0.6f, 1.5f, 2.5f, 9f })
            Assert.Equal(ModelGen.Compiler.Evaluate.ActivationMath.Apply(chain, v), Math.Clamp(v, lo, hi));
    }

    [Fact]
    public void ChainsWithOtherStepsAreNoClamp() =>
        Assert.Null(ModelGen.Artifact.Activations.AsClamp("Relu|Scale:2:0"));

    [Fact]
    public void MatMulAndBiasAddBecomeOneDenseNode()
    {
        var model = new OnnxBuilder().Input("x", 3, 4).Initializer("W", [4, 5], R(20, 1)).Initializer("b", [5], R(5, 2))
            .Node("MatMul", ["x", "W"], ["m"]).Node("Add", ["m", "b"], ["y"]).Output("y");
        var graph = Check(model, Passes.MatMulAddToDense, ("x", [3, 4]));
        var dense = Assert.Single(graph.Nodes);
        Assert.Equal("Dense", dense.OpType);
        Assert.Equal([5, 4], graph[dense.Inputs[1]].Shape!);
        Assert.Equal(3, dense.Inputs.Count);
    }

    [Fact]
    public void GemmWithConstantWeightsBecomesDenseWithAlphaAndBetaFolded()
    {
        var model = new OnnxBuilder().Input("x", 3, 4).Initializer("B", [5, 4], R(20, 1)).Initializer("C", [5], R(5, 2))
            .Node("Gemm", ["x", "B", "C"], ["y"], ("transB", 1), ("alpha", 0.5f), ("beta", -2f)).Output("y");
        var graph = Check(model, Passes.GemmToDense, ("x", [3, 4]));
        Assert.Equal("Dense", Assert.Single(graph.Nodes).OpType);
    }

    [Fact]
    public void VariadicNodesSplitIntoBinaryChains()
    {
        var model = new OnnxBuilder().Input("a", 2, 3).Input("b", 3).Input("c", 2, 1).Input("d", 1)
            .Node("Mean", ["a", "b", "c", "d"], ["y"]).Output("y");
        var graph = Check(model, Passes.SplitVariadic, ("a", [2, 3]), ("b", [3]), ("c", [2, 1]), ("d", [1]));
        Assert.Equal(["Add", "Add", "Add", "Mul"], graph.Nodes.Select(n => n.OpType));
    }

    [Fact]
    public void IdentityDropoutReshapeAndFlattenCostNothing()
    {
        var model = new OnnxBuilder().Input("x", 2, 6).Initializer("shape", [3, 4])
            .Node("Relu", ["x"], ["r"]).Node("Identity", ["r"], ["i"]).Node("Dropout", ["i"], ["d"])
            .Node("Reshape", ["d", "shape"], ["s"]).Node("Flatten", ["s"], ["f"]).Node("Sigmoid", ["f"], ["y"]).Output("y");
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = model.Save() });
        Assert.Equal(["Unary", "Unary"], artifact.Nodes.Select(n => n.Kernel.ToString()));
        // The Relu writes the one arena buffer that Identity, Dropout, Reshape and Flatten all name.
        var relu = artifact.Tensors[artifact.Nodes[0].Outputs[0]];
        var sigmoidInput = artifact.Tensors[artifact.Nodes[1].Inputs[0]];
        Assert.Equal(relu.Offset, sigmoidInput.Offset);
        Assert.Equal(64, artifact.ScratchBytes); // one buffer of 12 floats, rounded up to the 64-byte alignment
    }
}
