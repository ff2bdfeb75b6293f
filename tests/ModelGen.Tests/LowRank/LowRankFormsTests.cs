using MathNet.Numerics.LinearAlgebra;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.LowRank;

/// <summary>
/// The two forms of a factorized convolution (a thin k×k then a 1×1, or k×1 then 1×k), the speed check that keeps a
/// layer whole when its multiply-adds would grow, and the ranks from a size budget (bytes:…) or a fixed rank (rank:…).
/// </summary>
public class LowRankFormsTests
{
    const int Channels = 3, Outputs = 8, Side = 10;

    static CompileOptions Options(string model, string lowRank) => new() { ModelPath = model, LowRank = lowRank };

    /// <summary>
    /// A 3×3 convolution with vertical stride 2, vertical dilation 2, pads top 1, left 0, bottom 0, right 2, bias and
    /// Relu, over a 10×10 input: each axis's pad, stride and dilation differ, so splitting them wrongly shows.
    /// </summary>
    static string ConvModel(float[] weight, int channels = Channels, int outputs = Outputs, long[]? strides = null, long[]? pads = null, long[]? dilations = null, int side = Side)
    {
        strides ??= [2, 1];
        pads ??= [1, 0, 0, 2];
        dilations ??= [2, 1];
        int outH = (int)((side + pads[0] + pads[2] - (2 * dilations[0] + 1)) / strides[0] + 1);
        int outW = (int)((side + pads[1] + pads[3] - (2 * dilations[1] + 1)) / strides[1] + 1);
        return new OnnxBuilder().Input("x", 1, channels, side, side)
            .Initializer("w", [outputs, channels, 3, 3], weight).Initializer("b", [outputs], OnnxBuilder.Random(outputs, 41))
            .Node("Conv", ["x", "w", "b"], ["h"], ("pads", pads), ("strides", strides), ("dilations", dilations)).Node("Relu", ["h"], ["y"])
            .Output("y", 1, outputs, outH, outW).Save();
    }

    /// <summary>W[o, c, y, x] = Σ_k H[o, k, x]·V[k, c, y] (+ noise): rank <paramref name="rank"/> as [c·3, o·3].</summary>
    static float[] Separable(int rank, int seed, float noise = 0, int channels = Channels, int outputs = Outputs)
    {
        var v = OnnxBuilder.Random(rank * channels * 3, seed);
        var h = OnnxBuilder.Random(outputs * rank * 3, seed + 1);
        var e = OnnxBuilder.Random(outputs * channels * 9, seed + 2);
        var w = new float[outputs * channels * 9];
        for (int o = 0; o < outputs; o++)
            for (int c = 0; c < channels; c++)
                for (int y = 0; y < 3; y++)
                    for (int x = 0; x < 3; x++)
                    {
                        int i = ((o * channels + c) * 3 + y) * 3 + x;
                        float sum = noise * e[i];
                        for (int k = 0; k < rank; k++) sum += h[(o * rank + k) * 3 + x] * v[(k * channels + c) * 3 + y];
                        w[i] = sum;
                    }
        return w;
    }

    /// <summary>W[o, c·9 + t] = Σ_k A[o, k]·B[k, c·9 + t] (+ noise): rank 2 as [o, c·9].</summary>
    static float[] Thin(int seed, float noise)
    {
        const int taps = Channels * 9;
        var a = OnnxBuilder.Random(Outputs * 2, seed);
        var b = OnnxBuilder.Random(2 * taps, seed + 1);
        var e = OnnxBuilder.Random(Outputs * taps, seed + 2);
        var w = new float[Outputs * taps];
        for (int i = 0; i < Outputs; i++)
            for (int j = 0; j < taps; j++) w[i * taps + j] = noise * e[i * taps + j] + a[i * 2] * b[j] + a[i * 2 + 1] * b[taps + j];
        return w;
    }

    static Node First(Graph g) => g.Nodes.Single(n => n.Name.EndsWith("/low_rank_in", StringComparison.Ordinal));
    static Node Second(Graph g) => g.Nodes.Single(n => n.Name.EndsWith("/low_rank_out", StringComparison.Ordinal));

    static Dictionary<string, TensorData> Feed(float[] x, int channels = Channels, int side = Side) => new() { ["x"] = new([1, channels, side, side], x) };

    /// <summary>
    /// A weight of rank 2 as [c·kh, o·kw] (and rank up to 6 as [o, c·kh·kw]) becomes a 3×1 convolution to 2 channels
    /// with the vertical stride, dilation and pads, then a 1×3 with the horizontal ones: the generated code computes
    /// what ONNX Runtime computes on the original model, and the evaluator agrees on both graphs.
    /// </summary>
    [Fact]
    public void AnExactlySeparableConvolutionBecomesAVerticalThenAHorizontalConvolutionComputingTheSame()
    {
        string model = ConvModel(Separable(2, 50));
        var original = ModelCompiler.Prepare(new CompileOptions { ModelPath = model });
        var artifact = ModelCompiler.Compile(Options(model, "0.999999"), out var factorized);
        var (first, second) = (First(factorized), Second(factorized));
        Assert.Equal([2, Channels, 3, 1], factorized[first.Inputs[1]].Shape!);
        Assert.Equal([Outputs, 2, 1, 3], factorized[second.Inputs[1]].Shape!);
        Assert.Equal([3L, 1], first.Ints("kernel_shape")!);
        Assert.Equal([2L, 1], first.Ints("strides")!);
        Assert.Equal([2L, 1], first.Ints("dilations")!);
        Assert.Equal([1L, 0, 0, 0], first.Ints("pads")!);
        Assert.Equal([1L, 3], second.Ints("kernel_shape")!);
        Assert.Equal([1L, 1], second.Ints("strides")!);
        Assert.Equal([1L, 1], second.Ints("dilations")!);
        Assert.Equal([0L, 0, 0, 2], second.Ints("pads")!);
        Assert.Equal(2, first.Inputs.Count); // the bias stays on the second half, with the activation
        Assert.Contains("rank 2 (3×1 then 1×3)", factorized.CompressionStages[0].Name);
        // The vertical convolution keeps every input column: 10 wide, 4 high ((10 + 1 pad − dilated window 5) / stride 2 + 1).
        Assert.Equal([1, 2, 4, Side], factorized[first.Outputs[0]].Shape!);
        var models = GeneratedModels.Build(artifact);
        using var ort = new OnnxRuntimeOracle(model);
        for (int s = 0; s < 3; s++)
        {
            var x = OnnxBuilder.Random(Channels * Side * Side, 400 + s);
            var expected = ReferenceEvaluator.Run(original, Feed(x))["y"].Floats;
            var evaluated = ReferenceEvaluator.Run(factorized, Feed(x))["y"].Floats;
            var y = new float[expected.Length];
            models.Run(artifact, [x], [y]);
            var onnxRuntime = ort.Run(("x", x, [1, Channels, Side, Side]))[0];
            for (int i = 0; i < y.Length; i++)
            {
                Assert.True(Math.Abs(evaluated[i] - expected[i]) <= 1e-5, $"sample {s}, value {i}: evaluator {evaluated[i]} against {expected[i]}");
                Assert.True(Math.Abs(y[i] - onnxRuntime[i]) <= 1e-4, $"sample {s}, value {i}: generated {y[i]} against ONNX Runtime's {onnxRuntime[i]}");
            }
        }
    }

    /// <summary>
    /// Truncated (energy 0.9 of a rank-2 weight plus noise): each form where its spectrum makes it the cheaper one, and
    /// the generated code computes what the evaluator computes on the factorized graph; the form with fewer multiply-adds
    /// at that energy was taken, and the weight the two halves make is the truncated SVD's (its SQNR from the spectrum).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TruncatedEachFormComputesWhatTheEvaluatorComputes(bool separable)
    {
        var weight = separable ? Separable(2, 60, 0.02f) : Thin(70, 0.02f);
        string model = ConvModel(weight);
        var artifact = ModelCompiler.Compile(Options(model, "0.9"), out var factorized);
        var (first, second) = (First(factorized), Second(factorized));
        Assert.Equal(separable ? [Outputs, 2, 1, 3] : new[] { Outputs, 2, 1, 1 }, factorized[second.Inputs[1]].Shape!);
        // Each form's rank at 0.9 and its multiply-adds: the output is 4×10 (vertical as above; horizontal 10 + 2 − 3 + 1), the vertical half's 4×10.
        double[] thin = Spectrum(weight, Outputs, Channels * 9, (o, j) => o * Channels * 9 + j);
        double[] split = Spectrum(weight, Channels * 3, Outputs * 3, (i, j) => ((j / 3 * Channels + i / 3) * 3 + i % 3) * 3 + j % 3);
        int thinRank = Compiler.Compress.LowRank.RankFor(thin, 0.9), splitRank = Compiler.Compress.LowRank.RankFor(split, 0.9);
        long thinCost = 40L * thinRank * (Channels * 9 + Outputs), splitCost = splitRank * (4L * Side * Channels * 3 + 40L * Outputs * 3);
        Assert.Equal(separable, splitCost < thinCost);
        long[] multiplyAdds = [.. MultiplyAdds.ByLayer(factorized).Select(l => l.MultiplyAdds)];
        Assert.Equal(separable ? splitCost : thinCost, multiplyAdds.Sum());
        // SQNR of the product of the halves against the original: the kept energy over the discarded.
        var spectrum = separable ? split : thin;
        int rank = separable ? splitRank : thinRank;
        var product = Compiler.Compress.LowRank.Product(factorized[first.Inputs[1]].Constant!, factorized[second.Inputs[1]].Constant!);
        Assert.Equal([Outputs, Channels, 3, 3], product.Shape);
        double error = weight.Select((w, i) => (double)(w - product.Floats[i]) * (w - product.Floats[i])).Sum();
        double discarded = spectrum.Skip(rank).Sum(s => s * s);
        Assert.True(Math.Abs(error - discarded) <= 1e-3 * discarded, $"squared error {error} against the discarded energy {discarded}");
        var models = GeneratedModels.Build(artifact);
        for (int s = 0; s < 3; s++)
        {
            var x = OnnxBuilder.Random(Channels * Side * Side, 500 + s);
            var evaluated = ReferenceEvaluator.Run(factorized, Feed(x))["y"].Floats;
            var y = new float[evaluated.Length];
            models.Run(artifact, [x], [y]);
            for (int i = 0; i < y.Length; i++)
                Assert.True(Math.Abs(y[i] - evaluated[i]) <= 1e-4, $"sample {s}, value {i}: generated {y[i]} against the evaluator's {evaluated[i]}");
        }
    }

    static double[] Spectrum(float[] w, int rows, int columns, Func<int, int, int> index) =>
        Matrix<double>.Build.Dense(rows, columns, (i, j) => w[index(i, j)]).Svd(false).S.ToArray();

    /// <summary>
    /// W = H ⊗ V, H = [[1, 0, 0], [0, 1, 0]] (2 outputs), V random [4 channels, 3]: rank 1 as [c·3, o·3], rank 2 with two
    /// equal singular values as [o, c·9]. With a horizontal stride of 8 over 16 columns, 3×1 then 1×3 at rank 1 holds
    /// 4·3 + 2·3 = 18 weights against 72 but computes 14·16·4·3 + 14·2·2·3 = 2,856 multiply-adds against
    /// 14·2·2·4·9 = 2,016 (the vertical convolution runs over all 16 columns), and the thin form at rank 2 takes
    /// 2·(36 + 2) = 76 weights: the layer stays whole, and the stage and the report say why. With stride 1 it is factorized.
    /// </summary>
    [Fact]
    public void ALayerWhoseMultiplyAddsWouldGrowStaysWholeAndTheReportSaysWhy()
    {
        const int channels = 4, outputs = 2, side = 16;
        var v = OnnxBuilder.Random(channels * 3, 80);
        var w = new float[outputs * channels * 9];
        for (int o = 0; o < outputs; o++)
            for (int c = 0; c < channels; c++)
                for (int y = 0; y < 3; y++) w[((o * channels + c) * 3 + y) * 3 + o] = v[c * 3 + y];
        string Model(long stride) => ConvModel(w, channels, outputs, [1, stride], [0, 0, 0, 0], [1, 1], side);

        var strided = ModelCompiler.Prepare(Options(Model(8), "0.99"));
        Assert.Single(strided.Nodes, n => n.OpType == "Conv");
        string why = "rank 2 as 3×3 then 1×1 takes 76 weights against 72; rank 1 as 3×1 then 1×3 computes 2,856 multiply-adds against 2,016";
        Assert.Equal(why, strided.Nodes.Single(n => n.OpType == "Conv").Annotations[Compiler.Compress.LowRank.StaysAnnotation]);
        Assert.Contains($"no layer pays; stays whole: Conv_0 ({why})", strided.CompressionStages[0].Name);

        var options = Options(Model(1), "0.99");
        var dense = ModelCompiler.Prepare(options with { LowRank = null });
        var factorized = ModelCompiler.Prepare(options);
        Assert.Equal([outputs, 1, 1, 3], factorized[Second(factorized).Inputs[1]].Shape!);
        // 14·16·4·3 + 14·14·2·3 = 3,864 against 14·14·2·4·9 = 14,112.
        Assert.Equal(14_112, MultiplyAdds.Total(dense));
        Assert.Equal(3_864, MultiplyAdds.Total(factorized));
    }

    /// <summary>
    /// Two fully connected layers, 10 → 8 with singular values 4, 3, 2, 1 (energy shares 16, 9, 4, 1 of 30) and 8 → 10
    /// with 2, 2, 2, 2 (4 each of 16); each rank costs 18 weights of 80. bytes:0.7 allows 112 weights: both start at
    /// rank 1 (36), then by energy share per weight the first gets rank 2 (9/30 > 4/16), then the second ranks 2, 3 and 4
    /// (4/16 > 4/30), 108 weights; one more would take 126.
    /// </summary>
    [Fact]
    public void ASizeBudgetGivesTheRanksKeepingTheMostEnergy()
    {
        string model = TwoLayers();
        var graph = ModelCompiler.Prepare(Options(model, "bytes:0.7"));
        Assert.Equal([2, 4], Ranks(graph));
        Assert.Contains("; the factorized layers 432 B of a 448 B budget", graph.CompressionStages[0].Name);
        Assert.Equal((80 + 80 + 8 + 10) * 4 - (160 - 108) * 4, CompressionPipeline.WeightBytes(graph));
        // bytes:0.5: 80 weights, four ranks: 1 + 1, then the first's second (9/30), then the second's second.
        Assert.Equal([2, 2], Ranks(ModelCompiler.Prepare(Options(model, "bytes:0.5"))));
        // rank:3 everywhere; the second layer has only four nonzero singular values, rank 3 keeps three of them.
        Assert.Equal([3, 3], Ranks(ModelCompiler.Prepare(Options(model, "rank:3"))));
        Assert.Contains("low rank (rank 3)", ModelCompiler.Prepare(Options(model, "rank:3")).CompressionStages[0].Name);
    }

    /// <summary>rank:5 of an identity 3×3 is rank 3, 18 weights against 9: the layer stays, and says so.</summary>
    [Fact]
    public void AFixedRankThatDoesNotPayLeavesTheLayerWhole()
    {
        var graph = ModelCompiler.Prepare(Options(Dense(3, 3, [1, 0, 0, 0, 1, 0, 0, 0, 1]), "rank:5"));
        Assert.Empty(Ranks(graph));
        Assert.Equal("rank 3 takes 18 weights against 9", graph.Nodes.Single(n => n.OpType == "Dense").Annotations[Compiler.Compress.LowRank.StaysAnnotation]);
    }

    [Fact]
    public void GoodTargetsParse()
    {
        Assert.Equal(new LowRankTarget(LowRankMode.Energy, 0.9), LowRankTarget.Parse("0.9", "m.onnx"));
        Assert.Equal(new LowRankTarget(LowRankMode.Energy, 0.8), LowRankTarget.Parse(" energy:0.8 ", "m.onnx"));
        Assert.Equal(new LowRankTarget(LowRankMode.Bytes, 0.5), LowRankTarget.Parse("Bytes:0.5", "m.onnx"));
        Assert.Equal(new LowRankTarget(LowRankMode.Rank, 8), LowRankTarget.Parse("rank:8", "m.onnx"));
        Assert.Null(LowRankTarget.Parse(" ", "m.onnx"));
    }

    static int[] Ranks(Graph graph) => [.. graph.Nodes.Where(n => n.Name.EndsWith("/low_rank_in", StringComparison.Ordinal)).Select(n => graph[n.Inputs[1]].Shape![0])];

    static string Dense(int inputs, int outputs, float[] weight) => new OnnxBuilder().Input("x", 1, inputs)
        .Initializer("w", [outputs, inputs], weight).Initializer("b", [outputs], OnnxBuilder.Random(outputs, 3))
        .Node("Gemm", ["x", "w", "b"], ["y"], ("transB", 1)).Output("y", 1, outputs).Save();

    /// <summary>x [1, 10] → Gemm (σ 4, 3, 2, 1) → Relu → Gemm (σ 2, 2, 2, 2) → y [1, 10]; the weights have one nonzero per row, in distinct columns.</summary>
    static string TwoLayers()
    {
        var a = new float[8 * 10];
        float[] sa = [4, 3, 2, 1, 0, 0, 0, 0];
        for (int i = 0; i < 8; i++) a[i * 10 + (i * 3) % 10] = i % 2 == 0 ? sa[i] : -sa[i];
        var b = new float[10 * 8];
        for (int i = 0; i < 4; i++) b[i * 8 + (i * 3) % 8] = 2;
        return new OnnxBuilder().Input("x", 1, 10)
            .Initializer("a", [8, 10], a).Initializer("ab", [8], OnnxBuilder.Random(8, 4))
            .Initializer("b", [10, 8], b).Initializer("bb", [10], OnnxBuilder.Random(10, 5))
            .Node("Gemm", ["x", "a", "ab"], ["h"], ("transB", 1)).Node("Relu", ["h"], ["r"])
            .Node("Gemm", ["r", "b", "bb"], ["y"], ("transB", 1)).Output("y", 1, 10).Save();
    }
}
