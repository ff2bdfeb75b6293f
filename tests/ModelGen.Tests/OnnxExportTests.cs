using Google.Protobuf;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Operators;
using ModelGen.Onnx;
using ModelGen.Onnx.Proto;
using ModelGen.Tests.Support;
using Xunit.Abstractions;

namespace ModelGen.Tests;

/// <summary>
/// `--emit-onnx` from the compressed graph (Compress/OnnxExport): ONNX Runtime on the exported file against ONNX Runtime on
/// the original (uncompressed) and against the reference evaluator on the graph that was exported (pruned, quantized).
/// </summary>
public sealed class OnnxExportTests(ITestOutputHelper output)
{
    static string Reference(string file) => Path.Combine(TestData.Root, "tests", "ModelGen.Tests", "Training", "Reference", file);

    static string ModelPath(string model) => model switch
    {
        "lenet5" or "lenet300" => TestData.Mnist(model + ".onnx"),
        "dwsep" => Reference("dwsep.onnx"),
        "blocks" => BlocksModel(),
        "matmul" => MatMulModel(),
        "mobilenetv2" => MobileNetV2Builder.Build().Save("mobilenetv2.onnx"),
        _ => throw new ArgumentException(model),
    };

    /// <summary>
    /// Conv → BatchNormalization → Relu → Clip (folded, then a fused chain); a depthwise Conv → LeakyRelu → Max with a
    /// constant; their residual Add → Relu; a pointwise Conv → HardSigmoid; Concat; max and average pooling; Flatten;
    /// Gemm (B [K, N], alpha) → Tanh; and a second output through GlobalAveragePool and Flatten.
    /// </summary>
    static string BlocksModel()
    {
        var bnVariance = OnnxBuilder.Random(8, 5).Select(v => MathF.Abs(v) + 0.5f).ToArray();
        return new OnnxBuilder(opset: 14)
            .Input("x", 1, 3, 8, 8)
            .Initializer("w1", [8, 3, 3, 3], OnnxBuilder.Random(216, 1)).Initializer("b1", [8], OnnxBuilder.Random(8, 2))
            .Initializer("scale", [8], OnnxBuilder.Random(8, 3)).Initializer("shift", [8], OnnxBuilder.Random(8, 4))
            .Initializer("mean", [8], OnnxBuilder.Random(8, 6)).Initializer("variance", [8], bnVariance)
            .Initializer("lo", [], [0f]).Initializer("hi", [], [0.8f])
            .Initializer("wd", [8, 1, 3, 3], OnnxBuilder.Random(72, 7)).Initializer("floor", [], [-0.05f])
            .Initializer("wp", [4, 8, 1, 1], OnnxBuilder.Random(32, 8))
            .Initializer("wg", [48, 10], OnnxBuilder.Random(480, 9)).Initializer("bg", [10], OnnxBuilder.Random(10, 10))
            .Node("Conv", ["x", "w1", "b1"], ["c1"], ("pads", new[] { 1, 1, 1, 1 }))
            .Node("BatchNormalization", ["c1", "scale", "shift", "mean", "variance"], ["n1"])
            .Node("Relu", ["n1"], ["r1"])
            .Node("Clip", ["r1", "lo", "hi"], ["a"])
            .Node("Conv", ["a", "wd"], ["d"], ("pads", new[] { 1, 1, 1, 1 }), ("group", 8))
            .Node("LeakyRelu", ["d"], ["l"], ("alpha", 0.1f))
            .Node("Max", ["l", "floor"], ["b"])
            .Node("Add", ["a", "b"], ["s"])
            .Node("Relu", ["s"], ["r"])
            .Node("Conv", ["r", "wp"], ["p0"])
            .Node("HardSigmoid", ["p0"], ["p"], ("alpha", 0.3f), ("beta", 0.4f))
            .Node("Concat", ["r", "p"], ["cat"], ("axis", 1))
            .Node("MaxPool", ["cat"], ["m"], ("kernel_shape", new[] { 2, 2 }), ("strides", new[] { 2, 2 }))
            .Node("AveragePool", ["m"], ["v"], ("kernel_shape", new[] { 2, 2 }), ("strides", new[] { 2, 2 }))
            .Node("Flatten", ["v"], ["f"])
            .Node("Gemm", ["f", "wg", "bg"], ["g"], ("alpha", 0.5f))
            .Node("Tanh", ["g"], ["y"])
            .Node("GlobalAveragePool", ["r"], ["pooled"])
            .Node("Flatten", ["pooled"], ["z"])
            .Output("y", 1, 10).Output("z", 1, 8)
            .Save("blocks.onnx");
    }

    /// <summary>A MatMul on a 3-D input (Dense as MatMul + Add) → Add of the bias → HardSwish → Mul by a constant → Sigmoid, and a Gemm with transB → Elu.</summary>
    static string MatMulModel() => new OnnxBuilder(opset: 14)
        .Input("x", 1, 4, 6)
        .Initializer("w", [6, 5], OnnxBuilder.Random(30, 11)).Initializer("b", [5], OnnxBuilder.Random(5, 12)).Initializer("two", [], [2f])
        .Initializer("shape", [-1L, 20]).Initializer("wt", [3, 20], OnnxBuilder.Random(60, 13))
        .Node("MatMul", ["x", "w"], ["mm"]).Node("Add", ["mm", "b"], ["h"]).Node("HardSwish", ["h"], ["hs"])
        .Node("Mul", ["hs", "two"], ["scaled"]).Node("Sigmoid", ["scaled"], ["y"])
        .Node("Reshape", ["y", "shape"], ["flat"]).Node("Gemm", ["flat", "wt"], ["g"], ("transB", 1)).Node("Elu", ["g"], ["z"], ("alpha", 0.7f))
        .Output("y", 1, 4, 5).Output("z", 1, 3)
        .Save("matmul.onnx");

    /// <summary>Sample inputs for the graph's one input: test digits for the MNIST-shaped models, random values otherwise.</summary>
    static IEnumerable<float[]> Samples(Graph graph, int count)
    {
        int size = (int)TensorData.Size(graph[graph.Inputs.Single()].Shape!);
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        for (int d = 0; d < count; d++)
            yield return size == 784 ? images[(d * 784)..((d + 1) * 784)] : OnnxBuilder.Random(size, 100 + d);
    }

    /// <summary>ONNX Runtime on the exported graph against the evaluator on it (and, when given, against ONNX Runtime on the original); the worst difference.</summary>
    static double Compare(Graph graph, byte[] exported, string? original, int samples, double relative = 1e-4, double absolute = 1e-5)
    {
        using var ort = new OnnxRuntimeOracle(exported);
        using var reference = original is null ? null : new OnnxRuntimeOracle(original);
        string input = graph.Inputs.Single();
        int[] shape = graph[input].Shape!;
        double worst = 0;
        int sample = 0;
        foreach (var x in Samples(graph, samples))
        {
            var got = ort.Run((input, x, shape));
            var evaluated = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { [input] = new(shape, x) });
            var expected = reference?.Run((input, x, shape));
            for (int o = 0; o < graph.Outputs.Count; o++)
            {
                var mine = evaluated[graph.Outputs[o]].Floats;
                Tolerance.AssertClose(mine, got[o], $"sample {sample} output {graph.Outputs[o]}: exported in ONNX Runtime vs the evaluator", relative, absolute);
                if (expected is not null) Tolerance.AssertClose(expected[o], got[o], $"sample {sample} output {graph.Outputs[o]}: exported vs original in ONNX Runtime");
                for (int i = 0; i < mine.Length; i++) worst = Math.Max(worst, Math.Abs(mine[i] - got[o][i]));
            }
            sample++;
        }
        return worst;
    }

    /// <summary>How many inputs to compare: the evaluator takes seconds on MobileNetV2.</summary>
    static int Samples(string model) => model == "mobilenetv2" ? 2 : 20;

    static byte[] Export(Graph graph, List<string> notes) => OnnxExport.Build(graph, notes).ToByteArray();

    [Theory]
    [InlineData("lenet5")]
    [InlineData("lenet300")]
    [InlineData("dwsep")]
    [InlineData("blocks")]
    [InlineData("matmul")]
    [InlineData("mobilenetv2")]
    public void UncompressedExportAgreesWithTheOriginalInOnnxRuntime(string model)
    {
        string path = ModelPath(model);
        var graph = ModelCompiler.Prepare(new CompileOptions { ModelPath = path });
        var notes = new List<string>();
        var exported = Export(graph, notes);
        Assert.Empty(notes);
        var written = ModelProto.Parser.ParseFrom(exported);
        // Dense went out as Gemm or MatMul, the fused activations as their own nodes, nothing of the compiler's own domain.
        Assert.All(written.Graph.Node, n => Assert.Equal("", n.Domain));
        Assert.DoesNotContain(written.Graph.Node, n => n.OpType == "BatchNormalization");
        Assert.Equal(graph.Outputs, written.Graph.Output.Select(o => o.Name));
        double worst = Compare(graph, exported, path, samples: Samples(model));
        output.WriteLine($"{model}: {written.Graph.Node.Count} nodes ({string.Join(", ", written.Graph.Node.GroupBy(n => n.OpType).Select(g => $"{g.Key} {g.Count()}"))}); worst difference from the evaluator {worst:G3}");
    }

    [Theory]
    [InlineData("lenet5")]
    [InlineData("lenet300")]
    [InlineData("dwsep")]
    [InlineData("mobilenetv2")]
    public void PrunedExportKeepsTheZerosAndAgreesWithTheEvaluator(string model)
    {
        var graph = ModelCompiler.Prepare(new CompileOptions { ModelPath = ModelPath(model), Pruning = 0.5 });
        var exported = Export(graph, []);
        var initializers = ModelProto.Parser.ParseFrom(exported).Graph.Initializer.ToDictionary(t => t.Name);
        long zeros = 0, weights = 0;
        foreach (var node in graph.Nodes.Where(n => n.OpType is DenseOperator.Name or "Conv"))
        {
            var w = graph[node.Inputs[1]].Constant!.Floats;
            // Under its own name (Gemm, Conv) or transposed (MatMul).
            var tensor = initializers.GetValueOrDefault(node.Inputs[1]) ?? initializers.GetValueOrDefault(node.Inputs[1] + ".transposed")
                ?? throw new Xunit.Sdk.XunitException($"{node.Name}'s weights {node.Inputs[1]} not among the initializers {string.Join(", ", initializers.Keys)}");
            var written = Compiler.Import.OnnxImporter.ReadTensor(tensor, "exported").Floats;
            Assert.Equal(w.Count(v => v == 0f), written.Count(v => v == 0f));
            Assert.Equal(w.Length, written.Length);
            zeros += written.Count(v => v == 0f);
            weights += written.Length;
        }
        output.WriteLine($"{model} pruned 0.5: {zeros} of {weights} exported weights are zeros");
        Assert.True(zeros >= weights / 2 - 1, $"{zeros} of {weights} weights zero");
        Compare(graph, exported, null, samples: Samples(model));
    }

    /// <summary>
    /// int8 and int4 weights go out as uint8 + DequantizeLinear, whose values are exactly the float weights the graph
    /// computes with: ONNX Runtime agrees with the evaluator within 1e-4 (pruned first, the zeros stay zero codes).
    /// </summary>
    [Theory]
    [InlineData("lenet5", "int8-weights", null)]
    [InlineData("lenet300", "int8-weights", 0.5)]
    [InlineData("lenet300", "int4-weights", null)]
    [InlineData("dwsep", "int8-weights", 0.5)]
    public void QuantizedWeightsGoOutThroughDequantizeLinear(string model, string compression, double? pruning)
    {
        var graph = ModelCompiler.Prepare(new CompileOptions { ModelPath = ModelPath(model), Compression = compression, Pruning = pruning });
        var notes = new List<string>();
        var exported = Export(graph, notes);
        int layers = graph.Nodes.Count(n => WeightQuantization.Of(n) is not null || Int4Quantization.Of(n) is not null); // int8 weights stored sparse too
        Assert.True(layers > 0);
        Assert.Equal(layers, notes.Count(n => n.EndsWith("weights through DequantizeLinear", StringComparison.Ordinal)));
        var written = ModelProto.Parser.ParseFrom(exported).Graph;
        Assert.Equal(layers, written.Node.Count(n => n.OpType == "DequantizeLinear"));
        if (pruning is not null)
        {
            // A pruned weight is the zero code (128) of its uint8 initializer.
            long codes = written.Initializer.Where(t => t.Name.EndsWith("_quantized", StringComparison.Ordinal)).Sum(t => t.RawData.Count(b => b == 128));
            long total = written.Initializer.Where(t => t.Name.EndsWith("_quantized", StringComparison.Ordinal)).Sum(t => (long)t.RawData.Length);
            Assert.True(codes >= total / 2 - 1, $"{codes} of {total} zero codes");
        }
        Compare(graph, exported, null, samples: 20);
    }

    /// <summary>Below opset 13 DequantizeLinear has no axis: int8 weights go out as the float32 weights they stand for, and a note says so.</summary>
    [Fact]
    public void BelowOpset13QuantizedWeightsGoOutInFloat32()
    {
        string path = new OnnxBuilder(opset: 11).Input("x", 1, 6)
            .Initializer("w", [4, 6], OnnxBuilder.Random(24, 21)).Initializer("b", [4], OnnxBuilder.Random(4, 22))
            .Node("Gemm", ["x", "w", "b"], ["g"], ("transB", 1)).Node("Relu", ["g"], ["y"]).Output("y", 1, 4).Save();
        var graph = ModelCompiler.Prepare(new CompileOptions { ModelPath = path, Compression = "int8-weights" });
        var notes = new List<string>();
        var exported = Export(graph, notes);
        Assert.Contains("no per-axis DequantizeLinear", Assert.Single(notes));
        Assert.DoesNotContain(ModelProto.Parser.ParseFrom(exported).Graph.Node, n => n.OpType == "DequantizeLinear");
        Compare(graph, exported, null, samples: 5);
    }

    /// <summary>
    /// int8 arithmetic goes out as QDQ: ONNX Runtime computes in integers too, but requantizes in float where our kernels
    /// use fixed point, so a hidden value can differ by a uint8 step: the tolerance is top-1 on all but one digit in 100
    /// and outputs within 0.05 (QuantizationTests holds the same export against the generated code on 500 digits).
    /// </summary>
    [Theory]
    [InlineData("lenet300")]
    [InlineData("lenet5")]
    public void Int8ArithmeticGoesOutAsQdq(string model)
    {
        var graph = ModelCompiler.Prepare(new CompileOptions { ModelPath = ModelPath(model), Compression = "int8", Pruning = 0.5, CalibrationPath = TestData.Mnist("calibration-256.npy") });
        var notes = new List<string>();
        var exported = Export(graph, notes);
        Assert.Contains(notes, n => n.EndsWith("int8 input and weights through DequantizeLinear", StringComparison.Ordinal));
        Assert.Contains(ModelProto.Parser.ParseFrom(exported).Graph.Node, n => n.OpType == "QuantizeLinear");
        using var ort = new OnnxRuntimeOracle(exported);
        int same = 0;
        double worst = 0;
        foreach (var x in Samples(graph, 100))
        {
            var got = ort.Run(("image", x, [1, 1, 28, 28]))[0];
            var evaluated = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { ["image"] = new([1, 1, 28, 28], x) })[graph.Outputs[0]].Floats;
            if (Tolerance.ArgMax(got) == Tolerance.ArgMax(evaluated)) same++;
            for (int i = 0; i < got.Length; i++) worst = Math.Max(worst, Math.Abs(got[i] - evaluated[i]));
        }
        output.WriteLine($"{model} pruned 0.5 + int8: top-1 as the evaluator on {same} of 100; worst difference {worst:G3}");
        Assert.True(same >= 99, $"{same} of 100");
        Assert.True(worst < 0.05, $"worst difference {worst}");
    }

    /// <summary>
    /// Fine-tuned weights (gradual pruning while fine-tuning, then int8 weights) go out as the graph has them: the export is
    /// the fine-tuned model, not the original's weights, and ONNX Runtime on it agrees with the evaluator within 1e-4.
    /// </summary>
    [Fact]
    public void FineTunedWeightsGoOut()
    {
        var options = new CompileOptions
        {
            ModelPath = TestData.Mnist("lenet300.onnx"), Compression = "int8-weights", Pruning = 0.5, FineTune = true, Epochs = 1,
            TrainingDataPath = TestData.Mnist("train-images-u8.npy"), TrainingLabelsPath = TestData.Mnist("train-labels.npy"), CalibrationUint8Scale = 255,
        };
        var tuned = ModelCompiler.Prepare(options);
        var oneShot = ModelCompiler.Prepare(options with { FineTune = false, TrainingDataPath = null, TrainingLabelsPath = null });
        var layer = tuned.Nodes.First(n => n.OpType == DenseOperator.Name);
        var tunedWeights = tuned[layer.Inputs[1]].Constant!.Floats;
        Assert.False(tunedWeights.SequenceEqual(oneShot[oneShot.Nodes.First(n => n.OpType == DenseOperator.Name).Inputs[1]].Constant!.Floats));
        var exported = Export(tuned, []);
        // The first layer's weights as DequantizeLinear gives them back: the fine-tuned ones.
        var written = ModelProto.Parser.ParseFrom(exported).Graph;
        var codes = written.Initializer.First(t => t.Name.StartsWith(layer.Inputs[1], StringComparison.Ordinal) && t.Name.EndsWith("_quantized", StringComparison.Ordinal));
        var scales = Compiler.Import.OnnxImporter.ReadTensor(written.Initializer.First(t => t.Name.StartsWith(layer.Inputs[1], StringComparison.Ordinal) && t.Name.EndsWith("_scale", StringComparison.Ordinal)), "exported").Floats;
        int k = (int)codes.Dims[1];
        for (int i = 0; i < tunedWeights.Length; i++) Assert.Equal(tunedWeights[i], (codes.RawData[i] - 128) * scales[i / k]);
        Compare(tuned, exported, null, samples: 20);
    }

    /// <summary>A form that computes in integers in a way no ONNX operator does.</summary>
    sealed record UnknownIntegerForm : IntegerForm
    {
        public override TensorData[] Evaluate(Node node, TensorData?[] inputs) => [inputs[0]!];
    }

    [Fact]
    public void ANodeTheExportCannotExpressIsAnErrorNamingIt()
    {
        var graph = ModelCompiler.Prepare(new CompileOptions { ModelPath = TestData.Mnist("lenet300.onnx") });
        var dense = graph.Nodes.First(n => n.OpType == DenseOperator.Name);
        dense.Form = new UnknownIntegerForm();
        var e = Assert.Throws<ModelGenException>(() => OnnxExport.Build(graph, []));
        Assert.Equal(ErrorCodes.UnsupportedOperator, e.Code);
        Assert.Contains(dense.Describe, e.Message);
        Assert.Contains("--emit-onnx", e.Message);

        dense.Form = LayerForm.Float32;
        dense.Annotations["activation"] = "ScaledTanh:1:2";
        e = Assert.Throws<ModelGenException>(() => OnnxExport.Build(graph, []));
        Assert.Contains(dense.Describe, e.Message);
        Assert.Contains("ScaledTanh", e.Message);
    }
}

/// <summary>`modelgen compile --pruning 0.5 --emit-onnx`: a file ONNX Runtime loads and runs.</summary>
[Collection("Console")]
public sealed class OnnxExportCliTests
{
    [Fact]
    public void CompileWithPruningEmitsOnnxThatOnnxRuntimeRuns()
    {
        string dir = Directory.CreateTempSubdirectory("modelgen-emit-onnx").FullName, onnx = Path.Combine(dir, "out.onnx");
        string model = TestData.Mnist("lenet5.onnx");
        int exit = Cli.Program.Main(["compile", model, "--pruning", "0.5", "--emit-onnx", onnx, "--out", dir]);
        Assert.Equal(0, exit);
        var graph = ModelCompiler.Prepare(new CompileOptions { ModelPath = model, Pruning = 0.5 });
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        using var ort = new OnnxRuntimeOracle(onnx);
        for (int d = 0; d < 5; d++)
        {
            var x = images[(d * 784)..((d + 1) * 784)];
            var evaluated = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { ["image"] = new([1, 1, 28, 28], x) })[graph.Outputs[0]].Floats;
            Tolerance.AssertClose(evaluated, ort.Run(("image", x, [1, 1, 28, 28]))[0], $"digit {d}");
        }
    }
}
