using System.Globalization;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Training;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Sharing;

/// <summary>Sharing across layers chosen by similarity (WeightSharingTies="auto:0.9"): of layers of one shape, the near-copies are tied and the others are not.</summary>
public class WeightTyingBySimilarityTests
{
    // fc2 is fc1 with a little noise (3% of its range); fc3 is unrelated; fc4 has another shape.
    static readonly float[] W1 = OnnxBuilder.Random(64, 21), W3 = OnnxBuilder.Random(64, 23);
    static readonly float[] W2 = [.. W1.Zip(OnnxBuilder.Random(64, 22), (w, noise) => w + 0.03f * noise)];

    /// <summary>x → fc1 → Relu → fc2 → Relu → fc3 → Relu (each 8×8) → fc4 (3×8).</summary>
    static string Model() => new OnnxBuilder().Input("x", 1, 8).Output("y")
        .Initializer("w1", [8, 8], W1).Initializer("b1", [8], OnnxBuilder.Random(8, 31))
        .Initializer("w2", [8, 8], W2).Initializer("b2", [8], OnnxBuilder.Random(8, 32))
        .Initializer("w3", [8, 8], W3).Initializer("b3", [8], OnnxBuilder.Random(8, 33))
        .Initializer("w4", [3, 8], OnnxBuilder.Random(24, 34))
        .Node("Gemm", ["x", "w1", "b1"], ["h1"], ("transB", 1L)).NamedLast("fc1").Node("Relu", ["h1"], ["a1"])
        .Node("Gemm", ["a1", "w2", "b2"], ["h2"], ("transB", 1L)).NamedLast("fc2").Node("Relu", ["h2"], ["a2"])
        .Node("Gemm", ["a2", "w3", "b3"], ["h3"], ("transB", 1L)).NamedLast("fc3").Node("Relu", ["h3"], ["a3"])
        .Node("Gemm", ["a3", "w4"], ["y"], ("transB", 1L)).NamedLast("fc4").Save();

    static CompileOptions Options(string ties) => new()
    {
        ModelPath = Model(), ClassName = "TiedBySimilarity", Namespace = "TyingTests", WeightSharing = 4, WeightSharingTies = ties,
    };

    /// <summary>1 − ‖A − B‖ / max(‖A‖, ‖B‖), worked out here apart from the compiler's.</summary>
    static double Alike(float[] a, float[] b)
    {
        double Norm(IEnumerable<double> v) => Math.Sqrt(v.Sum(x => x * x));
        return 1 - Norm(a.Zip(b, (x, y) => (double)x - y)) / Math.Max(Norm(a.Select(x => (double)x)), Norm(b.Select(x => (double)x)));
    }

    [Fact]
    public void TheNearCopiesAreTiedTheUnrelatedLayerIsNotAndTheGeneratedCodeAgreesWithTheEvaluator()
    {
        double near = Alike(W1, W2);
        Assert.InRange(near, 0.9, 1); // the model is as the test means it: fc1, fc2 alike; fc3 like neither
        Assert.True(Alike(W1, W3) < 0.9 && Alike(W2, W3) < 0.9);

        var options = Options("auto:0.9");
        var prepared = ModelCompiler.Prepare(options);
        Node Layer(string name) => prepared.Nodes.Single(n => n.Name == name);
        Assert.Equal(Layer("fc1").Inputs[1], Layer("fc2").Inputs[1]);
        Assert.Same(Layer("fc1").Form, Layer("fc2").Form);
        Assert.NotEqual(Layer("fc1").Inputs[1], Layer("fc3").Inputs[1]);
        Assert.NotSame(Layer("fc1").Form, Layer("fc3").Form);
        // Tied as named ties are: the mean of the two, clustered as one layer.
        var expected = WeightSharing.Cluster([.. W1.Zip(W2, (a, b) => (a + b) / 2)], 8, 8, 4);
        var form = Assert.IsType<SharedWeightsForm>(Layer("fc1").Form);
        Assert.Equal(expected.Codes, form.Weights.Codes);
        Assert.Equal(expected.Codebook, form.Weights.Codebook);
        // The stage says which layers and how alike.
        Assert.Equal($"tied by similarity ≥ 0.9 (fc1 = fc2, similarity {near.ToString("0.###", CultureInfo.InvariantCulture)}; 4-bit codebook)", prepared.CompressionStages[0].Name);

        var artifact = ModelCompiler.Compile(options, prepared, out _);
        EvaluatorAgreement.Assert(GeneratedModels.Build(artifact), artifact, prepared, seed: 300, trials: 5, "model tied by similarity");
    }

    /// <summary>Fine-tuned tied as named ties are: one parameter, its codebook's gradient summed over both layers.</summary>
    [Fact]
    public void TiesChosenBySimilarityAreOneParameterForFineTuning()
    {
        var prepared = ModelCompiler.Prepare(Options("auto"));
        var fc1 = prepared.Nodes.Single(n => n.Name == "fc1");
        Assert.Equal(fc1.Inputs[1], prepared.Nodes.Single(n => n.Name == "fc2").Inputs[1]);
        Assert.Single(TrainableModel.Build(prepared).Parameters, p => p.Name == fc1.Inputs[1]);
        Assert.InRange(SharedFineTuneTests.CheckCodebookGradient(prepared, fc1.Inputs[1], ((SharedWeightsForm)fc1.Form).Weights), 12, 16);
    }

    /// <summary>Three alike layers form one group; a layer alike to one member but not to another stays out.</summary>
    [Fact]
    public void EveryTwoLayersOfAGroupAreAlike()
    {
        var graph = ModelCompiler.Prepare(Options("") with { WeightSharing = null, WeightSharingTies = null });
        Node Layer(string name) => graph.Nodes.Single(n => n.Name == name);
        // fc3 halfway between fc1 and a far copy: alike to fc1 above 0.5, to fc2 (near fc1) too; lower the bar below both and all three tie.
        graph[Layer("fc3").Inputs[1]].Constant = new TensorData([8, 8], [.. W1.Zip(W3, (a, b) => a + 0.3f * b)]);
        var w = new[] { "fc1", "fc2", "fc3" }.Select(n => graph[Layer(n).Inputs[1]].Constant!.Floats).ToArray();
        double low = new[] { Alike(w[0], w[1]), Alike(w[0], w[2]), Alike(w[1], w[2]) }.Min();
        var all = WeightTying.Choose(graph, low, out _);
        Assert.Equal(["fc1", "fc2", "fc3"], Assert.Single(all).Layers);
        Assert.Equal(low, all[0].Similarity, 12);
        // Above fc3's lower similarity but below its higher one: fc3 may not join the pair.
        double between = (Math.Min(Alike(w[0], w[2]), Alike(w[1], w[2])) + Math.Max(Alike(w[0], w[2]), Alike(w[1], w[2]))) / 2;
        Assert.Equal(["fc1", "fc2"], Assert.Single(WeightTying.Choose(graph, between, out _)).Layers);
    }

    [Fact]
    public void WhenNothingQualifiesTheStageSaysSoAndEachLayerKeepsItsOwnWeight()
    {
        var prepared = ModelCompiler.Prepare(Options("auto:1"));
        var weights = prepared.Nodes.Where(n => n.Name.StartsWith("fc", StringComparison.Ordinal)).Select(n => n.Inputs[1]).ToList();
        Assert.Equal(4, weights.Distinct().Count());
        string near = Alike(W1, W2).ToString("0.###", CultureInfo.InvariantCulture);
        Assert.Equal($"tied by similarity ≥ 1 (no layers tied: the most similar of one shape, fc1 and fc2, {near}; 4-bit codebook)", prepared.CompressionStages[0].Name);
    }

    [Theory]
    [InlineData("auto:1.5")]
    [InlineData("auto:x")]
    [InlineData("auto:0")]
    [InlineData("auto:")]
    [InlineData("auto:-0.5")]
    public void BadThresholdsAreMG0007NamingTheItem(string ties)
    {
        var e = Assert.Throws<ModelGenException>(() => CompressionPlan.Parse(Options(ties)));
        Assert.Equal(ErrorCodes.BadOption, e.Code);
        Assert.Contains($"WeightSharingTies (--weight-sharing-ties) '{ties}': the similarity threshold", e.Message);
    }

    [Fact]
    public void AutoIsTheDefaultThresholdAndNeedsWeightSharing()
    {
        Assert.Equal(WeightTying.DefaultSimilarity, CompressionPlan.Parse(Options("auto")).WeightSharingTies.Similarity);
        Assert.Equal(0.75, CompressionPlan.Parse(Options(" Auto:0.75 ")).WeightSharingTies.Similarity);
        var noSharing = Assert.Throws<ModelGenException>(() => CompressionPlan.Parse(Options("auto") with { WeightSharing = null }));
        Assert.Contains("give WeightSharing", noSharing.Message);
    }
}
