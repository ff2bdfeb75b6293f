using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Training;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Training;

/// <summary>
/// The data-movement and matrix rules (Transpose, Concat, Split, Slice, Squeeze, Unsqueeze, Gather, MatMul,
/// Gemm): each node alone (not normalized), its gradients against finite differences in double and its
/// float32 forward at batch 1 against the operator's reference Evaluate.
/// </summary>
public class DataMovementGradientTests
{
    static float[] R(int n, int seed) => OnnxBuilder.Random(n, seed);

    /// <summary>Token ids of an int64 input: repeats and negative ids (counted from the end) included.</summary>
    static readonly long[] Ids = [3, -1, 0, 3, 6, -7, 2, 5, 3];

    /// <summary>Checks the gradients (returns the elements checked) and the float32 forward at batch 1.</summary>
    static int Check(OnnxBuilder model, int batch = 3, int probes = 24)
    {
        var graph = GradientCheck.Prepare(model, normalize: false);
        ForwardMatchesReference(graph);
        var random = new Random(7);
        return GradientCheck.Run(graph, batch, probes: probes,
            input: (i, name) => graph[name].Type == ElementType.Int64 ? Ids[i % Ids.Length] : random.NextDouble() * 2 - 1);
    }

    static void ForwardMatchesReference(Graph graph)
    {
        var engineInputs = new Dictionary<string, Tensor<float>>(StringComparer.Ordinal);
        var referenceInputs = new Dictionary<string, TensorData>(StringComparer.Ordinal);
        int seed = 11;
        foreach (var name in graph.Inputs)
        {
            var shape = graph[name].Shape!;
            int count = (int)TensorData.Size(shape);
            if (graph[name].Type == ElementType.Int64)
            {
                long[] ids = [.. Enumerable.Range(0, count).Select(i => Ids[i % Ids.Length])];
                referenceInputs[name] = new TensorData(shape, ids);
                engineInputs[name] = new Tensor<float>(shape, [.. ids.Select(v => (float)v)]);
            }
            else
            {
                var values = R(count, seed++);
                referenceInputs[name] = new TensorData(shape, values);
                engineInputs[name] = new Tensor<float>(shape, values);
            }
        }
        var pass = TrainableModel.Build(graph).Forward(engineInputs);
        var expected = ReferenceEvaluator.Run(graph, referenceInputs);
        foreach (var output in graph.Outputs)
        {
            var (engine, reference) = (pass[output].Data, expected[output].Floats);
            Assert.Equal(reference.Length, engine.Length);
            Assert.True(reference.Length > 0);
            for (int i = 0; i < reference.Length; i++)
                Assert.True(Math.Abs(engine[i] - reference[i]) <= 1e-6 * Math.Max(1, Math.Abs(reference[i])),
                    $"{output}[{i}]: engine {engine[i]:R}, reference {reference[i]:R}");
        }
    }

    static ModelGenException Refused(OnnxBuilder model) =>
        Assert.Throws<ModelGenException>(() => TrainableModel.Build(GradientCheck.Prepare(model, normalize: false)));

    [Fact]
    public void TransposeKeepingTheBatchFirst()
    {
        var model = new OnnxBuilder().Input("x", 1, 2, 3, 5).Output("y")
            .Node("Transpose", ["x"], ["y"], ("perm", new long[] { 0, 3, 1, 2 }));
        Assert.True(Check(model) >= 24);
    }

    [Fact]
    public void TransposeThatMovesTheBatchIsRefusedNamingTheNode()
    {
        var model = new OnnxBuilder().Input("x", 1, 3, 5).Output("y")
            .Node("Transpose", ["x"], ["y"], ("perm", new long[] { 1, 0, 2 })).NamedLast("swap_batch");
        var e = Refused(model);
        Assert.Equal(ErrorCodes.NotTrainable, e.Code);
        Assert.Contains("'swap_batch' (Transpose)", e.Message);
        Assert.Contains("axis 0", e.Message);
        // Without perm, Transpose reverses the axes: the batch moves too.
        var reversed = Refused(new OnnxBuilder().Input("x", 1, 3).Output("y").Node("Transpose", ["x"], ["y"]));
        Assert.Equal(ErrorCodes.NotTrainable, reversed.Code);
    }

    [Fact]
    public void InputWithoutABatchAxisIsRefusedNamingTheNode()
    {
        var model = new OnnxBuilder().Input("x", 4, 3).Output("y")
            .Node("Transpose", ["x"], ["y"], ("perm", new long[] { 0, 1 })).NamedLast("no_batch");
        var e = Refused(model);
        Assert.Equal(ErrorCodes.NoBatchAxis, e.Code);
        Assert.Contains("'no_batch'", e.Message);
        Assert.Contains("[4,3]", e.Message);
    }

    [Fact]
    public void ConcatOfUnevenPartsAlongANegativeAxisWithAConstant()
    {
        var model = new OnnxBuilder().Input("a", 1, 3, 2).Input("b", 1, 3, 5).Output("y")
            .Initializer("c", [1, 3, 1], R(3, 1))
            .Node("Concat", ["a", "c", "b"], ["y"], ("axis", -1L));
        Assert.True(Check(model) >= 42);
    }

    [Fact]
    public void ConcatAlongTheBatchIsRefused()
    {
        var model = new OnnxBuilder().Input("a", 1, 3).Input("b", 1, 3).Output("y").Node("Concat", ["a", "b"], ["y"], ("axis", 0L));
        Assert.Equal(ErrorCodes.NotTrainable, Refused(model).Code);
    }

    [Fact]
    public void SplitWithSizesAsAConstantInputOnANegativeAxis()
    {
        var model = new OnnxBuilder(13).Input("x", 1, 3, 7).Output("p").Output("q").Output("r")
            .Initializer("split", [1L, 4L, 2L])
            .Node("Split", ["x", "split"], ["p", "q", "r"], ("axis", -1L));
        Assert.True(Check(model) >= 24);
    }

    [Fact]
    public void SplitWithSizesAsAnAttributeBeforeOpset13()
    {
        var model = new OnnxBuilder(11).Input("x", 1, 5, 2).Output("p").Output("q")
            .Node("Split", ["x"], ["p", "q"], ("axis", 1L), ("split", new long[] { 3, 2 }));
        Assert.True(Check(model) >= 20);
    }

    [Fact]
    public void SplitIntoEqualPartsWithoutSizes()
    {
        var model = new OnnxBuilder(13).Input("x", 1, 2, 6).Output("p").Output("q")
            .Node("Split", ["x"], ["p", "q"], ("axis", 2L));
        Assert.True(Check(model) >= 24);
    }

    [Fact]
    public void SplitIntoUnevenPartsByNumOutputs()
    {
        // Opset 18: 7 into 3 parts is 3, 3, 1.
        var model = new OnnxBuilder(18).Input("x", 1, 7, 3).Output("p").Output("q").Output("r")
            .Node("Split", ["x"], ["p", "q", "r"], ("axis", 1L), ("num_outputs", 3L));
        var graph = GradientCheck.Prepare(model, normalize: false);
        Assert.Equal([1, 1, 3], graph["r"].Shape!);
        Assert.True(Check(model) >= 21);
    }

    [Fact]
    public void SplitAlongTheBatchIsRefused()
    {
        // Without axis, Split splits axis 0.
        var model = new OnnxBuilder(11).Input("x", 1, 4).Output("p").Node("Split", ["x"], ["p"]);
        Assert.Equal(ErrorCodes.NotTrainable, Refused(model).Code);
    }

    [Fact]
    public void SliceWithNegativeStepsStartsAndAxes()
    {
        var model = new OnnxBuilder(13).Input("x", 1, 6, 7).Output("y")
            .Initializer("starts", [-1L, 1L]).Initializer("ends", [-8L, 6L]).Initializer("axes", [-1L, 1L]).Initializer("steps", [-2L, 2L])
            .Node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"]);
        var graph = GradientCheck.Prepare(model, normalize: false);
        Assert.Equal([1, 3, 4], graph["y"].Shape!);
        Assert.True(Check(model) >= 24);
    }

    [Fact]
    public void SliceWithAttributesBeforeOpset10KeepingTheWholeBatch()
    {
        var model = new OnnxBuilder(9).Input("x", 1, 5, 4).Output("y")
            .Node("Slice", ["x"], ["y"], ("starts", new long[] { 0, 1, -3 }), ("ends", new long[] { long.MaxValue, 4, -1 }));
        Assert.True(Check(model) >= 24);
    }

    [Fact]
    public void SliceOfTheBatchIsRefused()
    {
        var model = new OnnxBuilder(13).Input("x", 1, 5).Output("y")
            .Initializer("starts", [0L]).Initializer("ends", [1L]).Initializer("axes", [0L])
            .Node("Slice", ["x", "starts", "ends", "axes"], ["y"]);
        Assert.Equal(ErrorCodes.NotTrainable, Refused(model).Code);
    }

    [Fact]
    public void UnsqueezeThenSqueezeWithNegativeAxes()
    {
        var model = new OnnxBuilder(13).Input("x", 1, 3, 5).Output("u").Output("y")
            .Initializer("uaxes", [-1L, 2L]).Initializer("saxes", [-3L])
            .Node("Unsqueeze", ["x", "uaxes"], ["u"])
            .Node("Squeeze", ["u", "saxes"], ["y"]);
        var graph = GradientCheck.Prepare(model, normalize: false);
        Assert.Equal([1, 3, 1, 5, 1], graph["u"].Shape!);
        Assert.Equal([1, 3, 5, 1], graph["y"].Shape!);
        Assert.True(Check(model) >= 24);
    }

    [Fact]
    public void SqueezeAndUnsqueezeWithAxesAsAttributes()
    {
        var model = new OnnxBuilder(11).Input("x", 1, 1, 4).Output("y")
            .Node("Squeeze", ["x"], ["s"], ("axes", new long[] { 1 }))
            .Node("Unsqueeze", ["s"], ["y"], ("axes", new long[] { -1 }));
        Assert.True(Check(model) >= 12);
    }

    [Fact]
    public void SqueezeOrUnsqueezeOfTheBatchIsRefused()
    {
        var squeeze = new OnnxBuilder(11).Input("x", 1, 4).Output("y").Node("Squeeze", ["x"], ["y"], ("axes", new long[] { 0 }));
        Assert.Equal(ErrorCodes.NotTrainable, Refused(squeeze).Code);
        var all = new OnnxBuilder(13).Input("x", 1, 4).Output("y").Node("Squeeze", ["x"], ["y"]);
        Assert.Equal(ErrorCodes.NotTrainable, Refused(all).Code);
        var unsqueeze = new OnnxBuilder(13).Input("x", 1, 4).Output("y").Initializer("axes", [-3L]).Node("Unsqueeze", ["x", "axes"], ["y"]);
        Assert.Equal(ErrorCodes.NotTrainable, Refused(unsqueeze).Code);
    }

    [Fact]
    public void EmbeddingTableGatheredTwiceByRunTimeIds()
    {
        // The table is a parameter; both gathers add to its gradient, and repeated ids add within one gather.
        var model = new OnnxBuilder().IntInput("ids", 1, 4).IntInput("more", 1, 3).Output("e").Output("f")
            .Initializer("table", [7, 5], R(35, 2))
            .Node("Gather", ["table", "ids"], ["e"])
            .Node("Gather", ["table", "more"], ["f"]);
        var graph = GradientCheck.Prepare(model, normalize: false);
        var trainable = TrainableModel.Build(graph);
        Assert.Equal("table", Assert.Single(trainable.Parameters).Name);
        Assert.True(Check(model, batch: 2, probes: 35) >= 35);
    }

    [Fact]
    public void EmbeddingIdsMustBeIntegersInRange()
    {
        var model = new OnnxBuilder().IntInput("ids", 1, 2).Output("e").Initializer("table", [3, 2], R(6, 3)).Node("Gather", ["table", "ids"], ["e"]);
        var trainable = TrainableModel.Build(GradientCheck.Prepare(model, normalize: false));
        Assert.Throws<ArgumentException>(() => trainable.Forward(new Dictionary<string, Tensor<float>> { ["ids"] = new([1, 2], [1f, 3f]) }));
        Assert.Throws<ArgumentException>(() => trainable.Forward(new Dictionary<string, Tensor<float>> { ["ids"] = new([1, 2], [1f, 0.5f]) }));
    }

    [Fact]
    public void GatherOfAnActivationAlongAnInnerAxisWithRepeatedIndices()
    {
        var model = new OnnxBuilder().Input("x", 1, 3, 5, 2).Output("y")
            .Initializer("idx", [4L, -1L, 0L, 2L])
            .Node("Gather", ["x", "idx"], ["y"], ("axis", -2L));
        Assert.True(Check(model) >= 24);
    }

    [Fact]
    public void GatherOfTheBatchIsRefused()
    {
        var model = new OnnxBuilder().Input("x", 1, 5).Output("y").Initializer("idx", [0L]).Node("Gather", ["x", "idx"], ["y"]);
        Assert.Equal(ErrorCodes.NotTrainable, Refused(model).Code);
    }

    [Fact]
    public void MatMulOfTwoActivationsBroadcastingTheirBatches()
    {
        var model = new OnnxBuilder().Input("a", 1, 3, 1, 4, 5).Input("b", 1, 1, 2, 5, 3).Output("y")
            .Node("MatMul", ["a", "b"], ["y"]);
        var graph = GradientCheck.Prepare(model, normalize: false);
        Assert.Equal([1, 3, 2, 4, 3], graph["y"].Shape!);
        Assert.True(Check(model) >= 48);
    }

    [Fact]
    public void MatMulWithAConstantLeftOperandAndA1DRightOperand()
    {
        // A constant matrix times an activation, then the result times a 1-D constant vector: both constants train.
        var model = new OnnxBuilder().Input("x", 1, 2, 4, 3).Output("y")
            .Initializer("w", [5, 4], R(20, 4)).Initializer("v", [3], R(3, 5))
            .Node("MatMul", ["w", "x"], ["h"])
            .Node("MatMul", ["h", "v"], ["y"]);
        var graph = GradientCheck.Prepare(model, normalize: false);
        Assert.Equal([1, 2, 5], graph["y"].Shape!);
        Assert.True(Check(model) >= 40);
    }

    [Fact]
    public void GemmWithAlphaBetaAndARunTimeBias()
    {
        var model = new OnnxBuilder().Input("a", 1, 5).Input("c", 1, 4).Output("y")
            .Initializer("b", [5, 4], R(20, 6))
            .Node("Gemm", ["a", "b", "c"], ["y"], ("alpha", 0.7f), ("beta", 1.3f));
        Assert.True(Check(model) >= 40);
    }

    [Fact]
    public void GemmWithBothOperandsTransposedAndARunTimeB()
    {
        // A' = Aᵀ (A stored [K, M]), B' = Bᵀ with B computed at run time, C broadcast from one value.
        var model = new OnnxBuilder().Input("b", 1, 5).Output("y")
            .Initializer("a", [5, 1], R(5, 7)).Initializer("c", [1], R(1, 8))
            .Node("Gemm", ["a", "b", "c"], ["y"], ("transA", 1L), ("transB", 1L), ("alpha", -1.5f), ("beta", 0.5f));
        Assert.True(Check(model) >= 11);
    }

    [Fact]
    public void GemmWithARunTimeBTransposed()
    {
        var model = new OnnxBuilder().Input("x", 1, 3).Input("b", 1, 3).Output("y")
            .Node("Gemm", ["x", "b"], ["y"], ("transB", 1L));
        Assert.True(Check(model) >= 12);
    }
}
