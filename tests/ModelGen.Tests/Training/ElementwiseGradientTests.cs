using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Training;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Training;

/// <summary>The engine's float32 forward pass against the reference evaluator: training must compute what inference computes.</summary>
public static class ReferenceCheck
{
    /// <summary>
    /// Runs the graph on one sample (batch 1) both ways and compares every output within 1e-5 relative (plus 1e-6 of
    /// the output's largest value, for elements that cancel to near zero). Returns the number of elements compared.
    /// </summary>
    public static int Forward(Graph graph, int seed = 7, Func<int, string, double>? input = null)
    {
        var model = TrainableModel.Build(graph);
        var random = new Random(seed);
        var feeds = new Dictionary<string, TensorData>(StringComparer.Ordinal);
        var tensors = new Dictionary<string, Tensor<float>>(StringComparer.Ordinal);
        foreach (var name in graph.Inputs)
        {
            var shape = graph[name].Shape!;
            var values = new float[TensorData.Size(shape)];
            for (int i = 0; i < values.Length; i++) values[i] = (float)(input?.Invoke(i, name) ?? random.NextDouble() * 2 - 1);
            feeds[name] = new TensorData(shape, values);
            tensors[name] = new Tensor<float>(shape, (float[])values.Clone());
        }
        var expected = ReferenceEvaluator.Run(graph, feeds);
        var pass = model.Forward(tensors);
        int compared = 0;
        foreach (var o in graph.Outputs)
        {
            var (e, a) = (expected[o].Floats, pass[o].Data);
            Assert.Equal(e.Length, a.Length);
            float largest = e.Max(MathF.Abs);
            for (int i = 0; i < e.Length; i++, compared++)
                Assert.True(Math.Abs(a[i] - e[i]) <= 1e-5 * Math.Abs(e[i]) + 1e-6 * largest, $"{o}[{i}]: engine {a[i]:R}, evaluator {e[i]:R}");
        }
        return compared;
    }
}

public class ElementwiseGradientTests
{
    static float[] R(int n, int seed) => OnnxBuilder.Random(n, seed);

    /// <summary>Values away from zero (denominators, logarithms): in [0.5, 1.5).</summary>
    static float[] Positive(int n, int seed) => [.. R(n, seed).Select(v => 1f + v / 2)];

    static double PositiveInput(int i, string name) => 1 + 0.45 * Math.Sin(i * 1.7 + name.Length);

    [Theory]
    [InlineData("Relu")]
    [InlineData("LeakyRelu")]
    [InlineData("Clip")]
    [InlineData("Sigmoid")]
    [InlineData("Tanh")]
    [InlineData("HardSigmoid")]
    [InlineData("HardSwish")]
    [InlineData("Exp")]
    [InlineData("Log")]
    [InlineData("Sqrt")]
    [InlineData("Neg")]
    [InlineData("Abs")]
    [InlineData("Softplus")]
    [InlineData("Softsign")]
    [InlineData("Elu")]
    [InlineData("Selu")]
    public void UnaryNode(string op)
    {
        var model = new OnnxBuilder(opset: 14).Input("x", 1, 3, 5).Output("y");
        string[] inputs = ["x"];
        (string, object)[] attributes = op switch
        {
            "LeakyRelu" => [("alpha", 0.15f)],
            "HardSigmoid" => [("alpha", 0.6f), ("beta", 0.45f)],
            "Elu" => [("alpha", 0.8f)],
            _ => [],
        };
        if (op == "Clip")
        {
            model.Initializer("lo", [], [-0.4f]).Initializer("hi", [], [0.9f]);
            inputs = ["x", "lo", "hi"];
        }
        model.Node(op, inputs, ["y"], attributes);
        var graph = GradientCheck.Prepare(model, normalize: false);
        // Wide enough to reach every piece (HardSwish's ±3, HardSigmoid's clamps); positive where the function needs it.
        Func<int, string, double> input = op is "Log" or "Sqrt" ? PositiveInput : (i, _) => 4.3 * Math.Sin(i * 2.3 + 0.1);
        Assert.Equal(3 * 3 * 5, GradientCheck.Run(graph, batch: 3, probes: 100, input: input));
        Assert.Equal(15, ReferenceCheck.Forward(graph, input: input));
    }

    public static TheoryData<string, int[], int[], bool, bool> BroadcastCases()
    {
        var data = new TheoryData<string, int[], int[], bool, bool>();
        foreach (var op in new[] { "Add", "Sub", "Mul", "Div" })
        {
            // (a shape, b shape, a is constant, b is constant): activations have the leading batch axis of 1.
            data.Add(op, [1, 3, 4, 5], [1, 3, 4, 5], false, false);
            data.Add(op, [1, 3, 4, 5], [4, 1], false, true);      // a middle axis, constant second
            data.Add(op, [3, 1, 1], [1, 3, 4, 5], true, false);   // per channel, constant first
            data.Add(op, [1, 3, 1, 5], [1, 1, 4, 1], false, false); // both activations broadcast
            data.Add(op, [1, 1, 5], [1, 4, 1], false, false);
            data.Add(op, [1, 2, 5], [], false, true);             // a scalar: not a parameter
            data.Add(op, [1, 6], [1, 6], false, true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(BroadcastCases))]
    public void BinaryWithBroadcasting(string op, int[] a, int[] b, bool aConstant, bool bConstant)
    {
        var model = new OnnxBuilder().Output("y");
        void Operand(string name, int[] shape, bool constant, int seed)
        {
            if (!constant) { model.Input(name, [.. shape.Select(d => (int?)d)]); return; }
            int n = (int)TensorData.Size(shape);
            model.Initializer(name, shape, op == "Div" && name == "b" ? Positive(n, seed) : R(n, seed));
        }
        Operand("a", a, aConstant, 11);
        Operand("b", b, bConstant, 12);
        model.Node(op, ["a", "b"], ["y"]);
        var graph = GradientCheck.Prepare(model, normalize: false);
        var trainable = TrainableModel.Build(graph);
        int parameters = (aConstant && TensorData.Size(a) > 1 ? 1 : 0) + (bConstant && TensorData.Size(b) > 1 ? 1 : 0);
        Assert.Equal(parameters, trainable.Parameters.Count);
        Func<int, string, double>? input = op == "Div" ? (i, name) => name == "b" ? PositiveInput(i, name) : Math.Cos(i * 0.7) : null;
        Assert.True(GradientCheck.Run(graph, batch: 3, probes: 30, input: input) >= 20);
        Assert.True(ReferenceCheck.Forward(graph, input: input) > 0);
    }

    [Fact]
    public void Opset6BroadcastAlongAnAxis()
    {
        // B [3] lined up with A's axis 1 (broadcast=1, axis=1): a per-channel bias of the old form.
        var model = new OnnxBuilder(opset: 6).Input("x", 1, 3, 2, 4).Output("y")
            .Initializer("b", [3], R(3, 8))
            .Node("Add", ["x", "b"], ["y"], ("broadcast", 1L), ("axis", 1L));
        var graph = GradientCheck.Prepare(model, normalize: false);
        Assert.Equal("b", TrainableModel.Build(graph).Parameters.Single().Name);
        Assert.True(GradientCheck.Run(graph, batch: 2, probes: 30) >= 30 + 3);
        Assert.Equal(24, ReferenceCheck.Forward(graph));
    }

    [Theory]
    [InlineData("Pow", new[] { 1, 4 })]
    [InlineData("Add", new[] { 2, 1, 4 })] // the activation's batch axis would meet the constant's second axis
    public void UncoveredFormsAreRefused(string op, int[] constant)
    {
        var model = new OnnxBuilder().Input("x", 1, 4).Output("y")
            .Initializer("c", constant, Positive((int)TensorData.Size(constant), 4))
            .Node(op, ["x", "c"], ["y"]);
        var error = Assert.Throws<ModelGenException>(() => TrainableModel.Build(GradientCheck.Prepare(model, normalize: false)));
        Assert.Equal(ErrorCodes.NotTrainable, error.Code);
    }

    [Fact]
    public void ABroadcastParameterSumsOverTheBatchAndItsAxes()
    {
        // y = x + b with b [4, 1] over x [1, 3, 4, 5]: db[j] = Σ over batch, the 3 and the 5 of dy.
        var model = new OnnxBuilder().Input("x", 1, 3, 4, 5).Output("y").Initializer("b", [4, 1], R(4, 3)).Node("Add", ["x", "b"], ["y"]);
        var trainable = TrainableModel.Build(GradientCheck.Prepare(model, normalize: false));
        var x = new Tensor<double>([2, 3, 4, 5]);
        var pass = trainable.Forward(new Dictionary<string, Tensor<double>> { ["x"] = x });
        var dy = new Tensor<double>([2, 3, 4, 5]);
        for (int i = 0; i < dy.Count; i++) dy.Data[i] = i % 5 + 1; // per j: 2·3·(1+2+3+4+5) = 90
        var grads = pass.Backward(new Dictionary<string, Tensor<double>> { ["y"] = dy });
        Assert.Equal([90.0, 90, 90, 90], grads["b"].Data);
    }

    [Theory]
    [InlineData("Max")]
    [InlineData("Min")]
    [InlineData("Sum")]
    [InlineData("Mean")]
    public void VariadicOverThreeBroadcastInputs(string op)
    {
        var model = new OnnxBuilder().Input("a", 1, 3, 4).Input("b", 1, 1, 4).Output("y")
            .Initializer("c", [3, 1], R(3, 5))
            .Node(op, ["a", "b", "c"], ["y"]);
        var graph = GradientCheck.Prepare(model, normalize: false);
        Assert.Equal(op is "Sum" or "Mean" ? 1 : 0, TrainableModel.Build(graph).Parameters.Count);
        Assert.True(GradientCheck.Run(graph, batch: 3, probes: 40) >= 40);
        Assert.Equal(12, ReferenceCheck.Forward(graph));
    }

    [Fact]
    public void MaxGivesATieToTheFirstInput()
    {
        var model = new OnnxBuilder().Input("a", 1, 4).Input("b", 1, 4).Output("y").Node("Max", ["a", "b"], ["y"]);
        var trainable = TrainableModel.Build(GradientCheck.Prepare(model, normalize: false));
        var a = new Tensor<double>([1, 4], [1, 2, 3, 4]);
        var b = new Tensor<double>([1, 4], [0, 2, 5, 4]);
        var pass = trainable.Forward(new Dictionary<string, Tensor<double>> { ["a"] = a, ["b"] = b }, inputGradients: true);
        var grads = pass.Backward(new Dictionary<string, Tensor<double>> { ["y"] = new Tensor<double>([1, 4], [1, 1, 1, 1]) });
        Assert.Equal([1.0, 1, 0, 1], grads["a"].Data);
        Assert.Equal([0.0, 0, 1, 0], grads["b"].Data);
    }

    [Theory]
    [InlineData(new[] { 3, 1, 1 })]
    [InlineData(new int[0])]
    public void PReluSlopeIsAParameter(int[] slope)
    {
        var model = new OnnxBuilder().Input("x", 1, 3, 2, 5).Output("y")
            .Initializer("s", slope, R((int)TensorData.Size(slope), 9))
            .Node("PRelu", ["x", "s"], ["y"]);
        var graph = GradientCheck.Prepare(model, normalize: false);
        Assert.Equal("s", TrainableModel.Build(graph).Parameters.Single().Name);
        Assert.True(GradientCheck.Run(graph, batch: 2, probes: 30) >= 30);
        Assert.Equal(30, ReferenceCheck.Forward(graph));
    }

    [Fact]
    public void GemmWithFusedSigmoid()
    {
        var model = new OnnxBuilder().Input("x", 1, 7).Output("y")
            .Initializer("w", [5, 7], R(35, 1)).Initializer("b", [5], R(5, 2))
            .Node("Gemm", ["x", "w", "b"], ["g"], ("transB", 1L))
            .Node("Sigmoid", ["g"], ["y"]);
        var graph = GradientCheck.Prepare(model);
        Assert.StartsWith("Sigmoid", graph.Nodes.Single().Annotations["activation"]);
        Assert.True(GradientCheck.Run(graph, batch: 4) >= 40);
        Assert.Equal(5, ReferenceCheck.Forward(graph));
    }

    [Fact]
    public void ChainsFusedIntoDenseAndAdd()
    {
        // Dense → HardSwish → ·0.7 → Tanh, then Add → Elu: every step a fused chain, none a node of its own.
        var model = new OnnxBuilder(opset: 14).Input("x", 1, 6).Input("z", 1, 4).Output("y")
            .Initializer("w", [4, 6], R(24, 3)).Initializer("k", [], [0.7f])
            .Node("Gemm", ["x", "w"], ["g"], ("transB", 1L))
            .Node("HardSwish", ["g"], ["h"])
            .Node("Mul", ["h", "k"], ["m"])
            .Node("Tanh", ["m"], ["t"])
            .Node("Add", ["t", "z"], ["s"])
            .Node("Elu", ["s"], ["y"]);
        var graph = GradientCheck.Prepare(model);
        Assert.Equal(["Dense", "Add"], graph.Nodes.Select(n => n.OpType));
        Assert.Equal(["HardSwish", "Scale", "Tanh"], Activations.ParseChain(graph.Nodes[0].Annotations["activation"]).Select(s => s.Op));
        Assert.True(GradientCheck.Run(graph, batch: 3, input: (i, name) => 3.1 * Math.Sin(i * 1.3 + name.Length)) >= 40);
        Assert.Equal(4, ReferenceCheck.Forward(graph, input: (i, name) => 3.1 * Math.Sin(i * 1.3 + name.Length)));
    }

    [Fact]
    public void ClipWithRunTimeBoundsIsRefused()
    {
        var model = new OnnxBuilder().Input("x", 1, 4).Input("lo", 1).Output("y").Node("Clip", ["x", "lo"], ["y"]);
        var error = Assert.Throws<ModelGenException>(() => TrainableModel.Build(GradientCheck.Prepare(model, normalize: false)));
        Assert.Equal(ErrorCodes.NotTrainable, error.Code);
        Assert.Contains("run time", error.Message);
    }
}
