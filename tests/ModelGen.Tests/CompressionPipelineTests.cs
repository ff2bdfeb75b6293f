using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Onnx;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// The compression seam: forms on the IR, Graph.Clone, the plan parsed once, the pipeline's stages, and the mixed
/// search on clones of one imported model.
/// </summary>
public sealed class CompressionPipelineTests
{
    static readonly string LeNet5 = TestData.Mnist("lenet5.onnx");
    static readonly string Calibration = TestData.Mnist("calibration-256.npy");

    static float[][] Digits(int count)
    {
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        return [.. Enumerable.Range(0, count).Select(d => images[(d * 784)..((d + 1) * 784)])];
    }

    static float[] Evaluate(Graph graph, float[] x) =>
        ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { ["image"] = new([1, 1, 28, 28], x) })[graph.Outputs[0]].Floats;

    [Fact]
    public void CompressingACloneLeavesTheOriginalAsOnnxRuntimeComputesIt()
    {
        var options = new CompileOptions { ModelPath = LeNet5, Compression = "int8", CalibrationPath = Calibration };
        var original = ModelCompiler.Normalized(options);
        var digits = Digits(8);
        var before = digits.Select(x => Evaluate(original, x)).ToList();

        var clone = original.Clone();
        CompressionPipeline.Run(clone, CompressionPlan.Parse(options));
        Assert.Contains(clone.Nodes, n => n.Form is Int8ConvForm);
        Assert.Contains(clone.Nodes, n => n.Form is Int8DenseForm { Output: not null });
        Assert.All(original.Nodes, n => Assert.IsType<Float32Form>(n.Form));
        Assert.Empty(original.CompressionStages);

        using var ort = new OnnxRuntimeOracle(LeNet5);
        bool differs = false;
        for (int d = 0; d < digits.Length; d++)
        {
            var after = Evaluate(original, digits[d]);
            Assert.Equal(before[d], after); // bit for bit: the clone's compression did not reach the original
            Tolerance.AssertClose(ort.Run(("image", digits[d], [1, 1, 28, 28]))[0], after, $"digit {d}");
            differs |= !Evaluate(clone, digits[d]).SequenceEqual(after);
        }
        Assert.True(differs, "the int8 clone computes in integers: its outputs differ from the float32 model's");
    }

    [Fact]
    public void ACloneHasItsOwnNodesValuesAndForms()
    {
        var graph = ModelCompiler.Normalized(new CompileOptions { ModelPath = LeNet5 });
        var clone = graph.Clone();
        Assert.Equal(graph.Nodes.Select(n => n.Name), clone.Nodes.Select(n => n.Name));
        Assert.All(graph.Nodes.Zip(clone.Nodes), p => { Assert.NotSame(p.First, p.Second); Assert.NotSame(p.First.Inputs, p.Second.Inputs); });
        Assert.All(clone.Values, v => Assert.NotSame(graph[v.Key], v.Value));
        clone.Nodes[0].Inputs[0] = "renamed";
        clone.Nodes[1].Form = new KeptFloat32Form(LayerForm.Float32);
        clone[graph.Outputs[0]].Shape = [7];
        Assert.NotEqual("renamed", graph.Nodes[0].Inputs[0]);
        Assert.IsType<Float32Form>(graph.Nodes[1].Form);
        Assert.NotEqual([7], graph[graph.Outputs[0]].Shape);
    }

    [Fact]
    public void ThePlanIsParsedOnceIntoTypedOptions()
    {
        var plan = CompressionPlan.Parse(new CompileOptions { ModelPath = LeNet5, Compression = "INT8", CalibrationPath = Calibration, BiasCorrection = false, CalibrationUint8Scale = 255 });
        Assert.Equal("int8", plan.Kind);
        Assert.Equal(Calibration, plan.CalibrationPath);
        Assert.Equal(255f, plan.CalibrationUint8Scale);
        Assert.False(plan.BiasCorrection);
        Assert.True(plan.ConvolutionWeights);
        Assert.Equal(["int8 arithmetic", "int8 weights (convolutions)"], plan.Passes().Select(p => p.Name));
        Assert.False(CompressionPlan.Parse(new CompileOptions { ModelPath = LeNet5, Compression = "int8-weights", Simd = "none" }).ConvolutionWeights);

        var mixed = CompressionPlan.Parse(new CompileOptions
        {
            ModelPath = LeNet5, Compression = "mixed-weights", LayerPrecisions = new Dictionary<string, string> { ["a"] = "int4", ["b"] = "int8" },
        });
        var passes = mixed.Passes();
        Assert.Equal(["int8 weights (fully connected)", "int4 weights (fully connected)"], passes.Select(p => p.Name));
        Assert.Equal("int4", mixed.Precision(new Node { Name = "a" }));
        Assert.Equal("float32", mixed.Precision(new Node { Name = "c" }));
        Assert.Equal("none", CompressionPlan.Parse(new CompileOptions { ModelPath = LeNet5 }).Kind);
        Assert.Empty(CompressionPlan.Parse(new CompileOptions { ModelPath = LeNet5 }).Passes());
    }

    [Theory]
    [InlineData("int9", 1f, "Compression 'int9' is not one of none, int8, int8-weights, int4-weights, mixed-weights, mixed")]
    [InlineData("int8", 1f, "Compression int8 needs Calibration: the activations' ranges come from it")]
    [InlineData("mixed-weights", 1f, "Compression mixed-weights needs Calibration and AccuracyBudget: it chooses each layer's precision against the budget")]
    [InlineData("none", 0f, "the divisor of uint8 data (--calibration-scale, bench's --uint8-scale) must be a finite number above 0, not 0")]
    [InlineData("none", float.NaN, "the divisor of uint8 data (--calibration-scale, bench's --uint8-scale) must be a finite number above 0, not NaN")]
    public void ABadPlanIsMG0007BeforeTheModelIsRead(string compression, float scale, string message)
    {
        // The model file does not exist: the plan's errors come first.
        var options = new CompileOptions { ModelPath = "missing.onnx", Compression = compression, CalibrationUint8Scale = scale };
        var e = Assert.Throws<ModelGenException>(() => CompressionPlan.Parse(options));
        Assert.Equal(ErrorCodes.BadOption, e.Code);
        Assert.Equal(message, e.Message);
        Assert.Equal(ErrorCodes.BadOption, Assert.Throws<ModelGenException>(() => ModelCompiler.Prepare(options)).Code);
    }

    [Fact]
    public void TheReportListsThePipelinesStagesWithTheWeightBytesAfterEach()
    {
        var options = new CompileOptions { ModelPath = LeNet5, ClassName = "Staged", Compression = "int8-weights", CalibrationPath = Calibration };
        var artifact = ModelCompiler.Compile(options, out var prepared);
        var report = CompressionReport.Create(options, artifact, Calibration, null, null, prepared);
        Assert.Equal(["int8 weights (fully connected)", "int8 weights (convolutions)"], report.Stages.Select(s => s.Name));
        long floatBytes = CompressionPipeline.WeightBytes(ModelCompiler.Normalized(options));
        Assert.True(report.Stages[0].WeightBytes < floatBytes && report.Stages[1].WeightBytes < report.Stages[0].WeightBytes,
            $"{floatBytes} → {string.Join(" → ", report.Stages.Select(s => s.WeightBytes))}");
        Assert.Contains("| int8 weights (convolutions) |", report.Markdown(), StringComparison.Ordinal);
        Assert.Contains("\"stages\"", report.Json(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("mixed", "lenet5.onnx")]
    [InlineData("mixed-weights", "lenet300.onnx")]
    public void TheMixedSearchImportsTheModelOnceAndReturnsAPlan(string compression, string model)
    {
        var options = new CompileOptions { ModelPath = TestData.Mnist(model), Compression = compression, CalibrationPath = Calibration };
        int imports = ModelCompiler.ImportsOnThisThread;
        // A budget every assignment meets: the search ends after its first trial (every layer at the lowest precision).
        var search = MixedPrecision.Search(options, "100%", null);
        Assert.Equal(imports + 1, ModelCompiler.ImportsOnThisThread);
        Assert.Equal(compression, search.Plan.Kind);
        Assert.Equal(search.Choices.ToDictionary(c => c.Node, c => c.Precision), search.Plan.LayerPrecisions);
        Assert.All(search.Choices, c => Assert.Equal(compression == "mixed" ? "int8" : "int4", c.Precision));
        Assert.Equal(search.Choices.Count, search.Prepared.Nodes.Count(n => n.Form is Int8LayerForm or Int4WeightsForm));
    }
}
