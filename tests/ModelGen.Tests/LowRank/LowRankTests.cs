using MathNet.Numerics.LinearAlgebra;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.LowRank;

/// <summary>
/// Low-rank factorization (LowRank, --low-rank): the rank chosen, where it pays, and that the two thin layers compute
/// what the original layer computes (exactly for an exact low-rank weight; within the discarded singular values
/// otherwise).
/// </summary>
public class LowRankTests(ITestOutputHelper output)
{
    /// <summary>x [1, in] → Gemm (w [out, in], bias) → Relu → y.</summary>
    static string DenseModel(int inputs, int outputs, float[] weight) => new OnnxBuilder().Input("x", 1, inputs)
        .Initializer("w", [outputs, inputs], weight).Initializer("b", [outputs], OnnxBuilder.Random(outputs, 3))
        .Node("Gemm", ["x", "w", "b"], ["h"], ("transB", 1)).Node("Relu", ["h"], ["y"]).Output("y", 1, outputs).Save();

    static CompileOptions Options(string model, double? energy) => new() { ModelPath = model, LowRank = energy?.ToString("R", System.Globalization.CultureInfo.InvariantCulture) };

    static CompileOptions Target(string model, string lowRank) => new() { ModelPath = model, LowRank = lowRank };

    static float[] Evaluate(Graph graph, float[] x) =>
        ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { [graph.Inputs[0]] = new([1, x.Length], x) })[graph.Outputs[0]].Floats;

    /// <summary>The rank of each factorized layer: the rows of its thin (in → r) layer's weight.</summary>
    static int[] Ranks(Graph graph) => [.. graph.Nodes.Where(n => n.Name.EndsWith("/low_rank_in", StringComparison.Ordinal)).Select(n => graph[n.Inputs[1]].Shape![0])];

    [Fact]
    public void AnExactlyRankTwoWeightBecomesTwoLayersOfRankTwoComputingTheSame()
    {
        const int inputs = 10, outputs = 6;
        // W = A·B, A [6, 2], B [2, 10]: rank 2 exactly.
        var a = OnnxBuilder.Random(outputs * 2, 1);
        var b = OnnxBuilder.Random(2 * inputs, 2);
        var w = new float[outputs * inputs];
        for (int i = 0; i < outputs; i++)
            for (int j = 0; j < inputs; j++) w[i * inputs + j] = a[i * 2] * b[j] + a[i * 2 + 1] * b[inputs + j];
        string model = DenseModel(inputs, outputs, w);
        var original = ModelCompiler.Prepare(Options(model, null));
        var factorized = ModelCompiler.Prepare(Options(model, 0.999999));

        Assert.Equal([2], Ranks(factorized));
        Assert.Equal(2, factorized.Nodes.Count(n => n.OpType == "Dense"));
        Assert.Contains("Gemm_0 10→6 rank 2", factorized.CompressionStages[0].Name);
        // The activation stays on the second layer; the thin layer has neither bias nor activation.
        var thin = factorized.Nodes.Single(n => n.Name.EndsWith("/low_rank_in", StringComparison.Ordinal));
        Assert.Equal(2, thin.Inputs.Count);
        Assert.False(thin.Annotations.ContainsKey("activation"));
        Assert.True(factorized.Nodes.Single(n => n.Name.EndsWith("/low_rank_out", StringComparison.Ordinal)).Annotations.ContainsKey("activation"));
        for (int s = 0; s < 5; s++)
        {
            var x = OnnxBuilder.Random(inputs, 100 + s);
            var expected = Evaluate(original, x);
            var actual = Evaluate(factorized, x);
            for (int i = 0; i < outputs; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5, $"sample {s}, output {i}: {actual[i]} against {expected[i]}");
        }
    }

    [Fact]
    public void TheGeneratedCodeAgreesWithOnnxRuntimeWithinTheDiscardedSingularValues()
    {
        const int inputs = 30, outputs = 20;
        // Rank 4 plus a little noise: a spectrum that falls, so 0.9 of the energy pays, and the rest is not zero.
        var a = OnnxBuilder.Random(outputs * 4, 5);
        var b = OnnxBuilder.Random(4 * inputs, 6);
        var noise = OnnxBuilder.Random(outputs * inputs, 7);
        var w = new float[outputs * inputs];
        for (int i = 0; i < outputs; i++)
            for (int j = 0; j < inputs; j++)
            {
                float sum = 0.05f * noise[i * inputs + j];
                for (int k = 0; k < 4; k++) sum += a[i * 4 + k] * b[k * inputs + j];
                w[i * inputs + j] = sum;
            }
        string model = DenseModel(inputs, outputs, w);
        var options = Options(model, 0.9);
        var artifact = ModelCompiler.Compile(options, out var graph);
        int rank = Assert.Single(Ranks(graph));
        // ‖(W − W_r)·x‖∞ ≤ ‖W − W_r‖₂·‖x‖₂ = σ_{r+1}·‖x‖₂, and Relu does not widen a difference.
        var singular = Matrix<double>.Build.Dense(outputs, inputs, (i, j) => w[i * inputs + j]).Svd(false).S;
        Assert.True(singular[rank] > 0.01, $"rank {rank}: nothing discarded");
        var models = GeneratedModels.Build(artifact);
        using var ort = new OnnxRuntimeOracle(model);
        double worst = 0, worstBound = 0;
        for (int s = 0; s < 10; s++)
        {
            var x = OnnxBuilder.Random(inputs, 200 + s);
            var y = new float[outputs];
            models.Run(artifact, [x], [y]);
            var expected = ort.Run(("x", x, [1, inputs]))[0];
            double bound = singular[rank] * Math.Sqrt(x.Sum(v => (double)v * v)) + 1e-4;
            for (int i = 0; i < outputs; i++)
            {
                double error = Math.Abs(y[i] - expected[i]);
                Assert.True(error <= bound, $"sample {s}, output {i}: {y[i]} against ONNX Runtime's {expected[i]}, bound {bound}");
                worst = Math.Max(worst, error);
            }
            worstBound = Math.Max(worstBound, bound);
        }
        output.WriteLine($"rank {rank} of {outputs}; worst error {worst:G3}, bound up to {worstBound:G3}");
    }

    /// <summary>
    /// A 3×3 convolution (stride 2, pads 1, bias, Relu) whose weight, as [out, in·3·3], is exactly rank 2: a thin 3×3
    /// convolution to 2 channels then a 1×1, computing what ONNX Runtime computes on the original (the generated code)
    /// and what the evaluator computes on it.
    /// </summary>
    [Fact]
    public void AnExactlyRankTwoConvolutionBecomesAThinConvolutionThenAOneByOne()
    {
        const int channels = 3, outputs = 8, taps = channels * 9;
        var a = OnnxBuilder.Random(outputs * 2, 21);
        var b = OnnxBuilder.Random(2 * taps, 22);
        var w = new float[outputs * taps];
        for (int i = 0; i < outputs; i++)
            for (int j = 0; j < taps; j++) w[i * taps + j] = a[i * 2] * b[j] + a[i * 2 + 1] * b[taps + j];
        string model = new OnnxBuilder().Input("x", 1, channels, 8, 8)
            .Initializer("w", [outputs, channels, 3, 3], w).Initializer("b", [outputs], OnnxBuilder.Random(outputs, 23))
            .Node("Conv", ["x", "w", "b"], ["h"], ("pads", new long[] { 1, 1, 1, 1 }), ("strides", new long[] { 2, 2 })).Node("Relu", ["h"], ["y"])
            .Output("y", 1, outputs, 4, 4).Save();
        var original = ModelCompiler.Prepare(Options(model, null));
        var artifact = ModelCompiler.Compile(Options(model, 0.999999), out var factorized);
        Assert.Equal([2], Ranks(factorized));
        Assert.Equal([outputs, 2, 1, 1], factorized[factorized.Nodes.Single(n => n.Name.EndsWith("/low_rank_out", StringComparison.Ordinal)).Inputs[1]].Shape!);
        var models = GeneratedModels.Build(artifact);
        using var ort = new OnnxRuntimeOracle(model);
        for (int s = 0; s < 3; s++)
        {
            var x = OnnxBuilder.Random(channels * 64, 300 + s);
            var input = new Dictionary<string, TensorData> { ["x"] = new([1, channels, 8, 8], x) };
            var expected = ReferenceEvaluator.Run(original, input)["y"].Floats;
            var evaluated = ReferenceEvaluator.Run(factorized, input)["y"].Floats;
            var y = new float[expected.Length];
            models.Run(artifact, [x], [y]);
            var onnxRuntime = ort.Run(("x", x, [1, channels, 8, 8]))[0];
            for (int i = 0; i < y.Length; i++)
            {
                Assert.True(Math.Abs(evaluated[i] - expected[i]) <= 1e-5, $"sample {s}, value {i}: evaluator {evaluated[i]} against {expected[i]}");
                Assert.True(Math.Abs(y[i] - onnxRuntime[i]) <= 1e-4, $"sample {s}, value {i}: generated {y[i]} against ONNX Runtime's {onnxRuntime[i]}");
            }
        }
    }

    [Fact]
    public void TheRankIsTheSmallestKeepingTheEnergy()
    {
        // A diagonal weight [8, 10] (columns permuted) has singular values 4, 3, 2, 1, 0…: energies 16, 9, 4, 1 of 30.
        // 0.8 of 30 is 24: 16 + 9 = 25 reaches it, rank 2. 0.9 is 27: 16 + 9 + 4 = 29, rank 3. 0.99 is 29.7: rank 4.
        const int inputs = 10, outputs = 8;
        float[] diagonal = [4, 3, 2, 1, 0, 0, 0, 0];
        var w = new float[outputs * inputs];
        for (int i = 0; i < outputs; i++) w[i * inputs + (i * 3) % inputs] = i % 2 == 0 ? diagonal[i] : -diagonal[i];
        string model = DenseModel(inputs, outputs, w);
        Assert.Equal([2], Ranks(ModelCompiler.Prepare(Options(model, 0.8))));
        Assert.Equal([3], Ranks(ModelCompiler.Prepare(Options(model, 0.9))));
        Assert.Equal([4], Ranks(ModelCompiler.Prepare(Options(model, 0.99))));
        Assert.Equal(2, Compiler.Compress.LowRank.RankFor([4, 3, 2, 1, 0], 25.0 / 30));
        Assert.Equal(3, Compiler.Compress.LowRank.RankFor([4, 3, 2, 1, 0], 25.001 / 30));
    }

    [Fact]
    public void ALayerWhereFactorizingDoesNotPayStaysWhole()
    {
        // The identity [3, 3]: every singular value 1, so 0.9 of the energy needs rank 3, and 3·(3 + 3) > 3·3.
        // Rank 2 would not pay either (12 > 9): only rank 1 does.
        float[] identity = [1, 0, 0, 0, 1, 0, 0, 0, 1];
        var graph = ModelCompiler.Prepare(Options(DenseModel(3, 3, identity), 0.9));
        Assert.Empty(Ranks(graph));
        Assert.Single(graph.Nodes, n => n.OpType == "Dense");
        Assert.Contains("no layer pays", graph.CompressionStages[0].Name);
        Assert.False(Compiler.Compress.LowRank.Pays(2, 3, 3));
        Assert.True(Compiler.Compress.LowRank.Pays(1, 3, 3));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1")]
    [InlineData("-0.5")]
    [InlineData("1.5")]
    [InlineData("NaN")]
    [InlineData("0.9x")]
    [InlineData("energy:1")]
    [InlineData("bytes:1")]
    [InlineData("bytes:0")]
    [InlineData("bytes:half")]
    [InlineData("rank:0")]
    [InlineData("rank:1.5")]
    [InlineData("rank:-2")]
    [InlineData("size:0.5")]
    public void BadTargetsAreMG0007NamingTheOptionAndWhatToWrite(string target)
    {
        var e = Assert.Throws<ModelGenException>(() => CompressionPlan.Parse(new CompileOptions { ModelPath = "m.onnx", LowRank = target }));
        Assert.Equal(ErrorCodes.BadOption, e.Code);
        Assert.Equal("m.onnx", e.File);
        Assert.Contains($"LowRank (--low-rank) '{target}' is not a low-rank target", e.Message);
        Assert.Contains("above 0 and below 1 (0.9 or energy:0.9)", e.Message);
        Assert.Contains("(bytes:0.5)", e.Message);
        Assert.Contains("(rank:8)", e.Message);
    }

    [Fact]
    public void LowRankRunsBeforePruningAndTheOriginalHasNeither()
    {
        var options = new CompileOptions { ModelPath = "m.onnx", LowRank = "0.9", Pruning = 0.5 };
        var passes = CompressionPlan.Parse(options).Passes();
        Assert.IsType<LowRankPass>(passes[0]);
        Assert.IsType<PruningPass>(passes[1]);
        Assert.Null(CompressionPlan.Parse(options.Original).LowRank);
    }

    /// <summary>Issue 24's size bar without training: LeNet-300-100 at energy 0.9 keeps at most half its weight bytes.</summary>
    [Fact]
    public void LeNet300AtEnergyNineTenthsHalvesItsWeights()
    {
        var options = Options(TestData.Mnist("lenet300.onnx"), 0.9);
        long before = CompressionPipeline.WeightBytes(ModelCompiler.Normalized(options));
        var graph = ModelCompiler.Prepare(options);
        long after = graph.CompressionStages[^1].WeightBytes;
        output.WriteLine($"{graph.CompressionStages[0].Name}: {before:N0} → {after:N0} bytes");
        Assert.True(after * 2 <= before, $"{after:N0} bytes against {before:N0}");
        Assert.Equal(after, CompressionPipeline.WeightBytes(graph));
    }
}
