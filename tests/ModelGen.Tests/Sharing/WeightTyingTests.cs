using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Training;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using ModelGen.Tests.Training;
using Xunit;

namespace ModelGen.Tests.Sharing;

/// <summary>Sharing across layers (issue 24, item 2): named layers of one shape tied to one weight, one codebook, one set of codes.</summary>
public class WeightTyingTests
{
    static readonly float[] W1 = OnnxBuilder.Random(64, 11), W2 = OnnxBuilder.Random(64, 12);

    /// <summary>x → fc1 (8×8) → Relu → fc2 (8×8) → Relu → fc3 (3×8): fc1 and fc2 have weights of one shape.</summary>
    static string Model() => new OnnxBuilder().Input("x", 1, 8).Output("y")
        .Initializer("w1", [8, 8], W1).Initializer("b1", [8], OnnxBuilder.Random(8, 13))
        .Initializer("w2", [8, 8], W2).Initializer("b2", [8], OnnxBuilder.Random(8, 14))
        .Initializer("w3", [3, 8], OnnxBuilder.Random(24, 15))
        .Node("Gemm", ["x", "w1", "b1"], ["h1"], ("transB", 1L)).NamedLast("fc1").Node("Relu", ["h1"], ["a1"])
        .Node("Gemm", ["a1", "w2", "b2"], ["h2"], ("transB", 1L)).NamedLast("fc2").Node("Relu", ["h2"], ["a2"])
        .Node("Gemm", ["a2", "w3"], ["y"], ("transB", 1L)).NamedLast("fc3").Save();

    static CompileOptions Options(string ties = "fc1,fc2") => new()
    {
        ModelPath = Model(), ClassName = "Tied", Namespace = "TyingTests", WeightSharing = 4, WeightSharingTies = ties,
    };

    [Fact]
    public void TiedLayersReadOneWeightClusteredFromTheirMeanAndTheGeneratedCodeAgreesWithTheEvaluator()
    {
        var options = Options();
        var prepared = ModelCompiler.Prepare(options);
        Node fc1 = prepared.Nodes.Single(n => n.Name == "fc1"), fc2 = prepared.Nodes.Single(n => n.Name == "fc2"), fc3 = prepared.Nodes.Single(n => n.Name == "fc3");
        Assert.Equal(fc1.Inputs[1], fc2.Inputs[1]);
        var form = Assert.IsType<SharedWeightsForm>(fc1.Form);
        Assert.Same(form, fc2.Form);
        var expected = WeightSharing.Cluster([.. W1.Zip(W2, (a, b) => (a + b) / 2)], 8, 8, 4);
        Assert.Equal(expected.Codes, form.Weights.Codes);
        Assert.Equal(expected.Codebook, form.Weights.Codebook);
        Assert.Equal(expected.Values(), prepared[fc1.Inputs[1]].Constant!.Floats);
        // fc3 is shared on its own; the tied weight counts once.
        var fc3Shared = Assert.IsType<SharedWeightsForm>(fc3.Form).Weights;
        Assert.Equal(expected.DenseBytes + fc3Shared.DenseBytes + 2 * 8 * 4, prepared.CompressionStages[^1].WeightBytes);
        Assert.Equal(["tied (fc1 = fc2; 4-bit codebook)", "shared (4-bit codebooks)", "sparse storage (fully connected)", "sparse storage (convolutions)"], prepared.CompressionStages.Select(s => s.Name));

        var artifact = ModelCompiler.Compile(options, prepared, out _);
        // Emitted once: both layers read one embedded tensor made from the tied weight.
        var dense = artifact.Nodes.Where(n => n.Kernel == KernelKind.Dense).ToList();
        Assert.Equal(3, dense.Count);
        Assert.Equal(dense[0].Inputs[1], dense[1].Inputs[1]);
        Assert.Equal(dense[0].Inputs[2], dense[1].Inputs[2]); // and one codebook
        Assert.Equal(2, artifact.Tensors.Count(t => t.Data is not null && t.Name.StartsWith(fc1.Inputs[1], StringComparison.Ordinal))); // the codes and the codebook, once each
        EvaluatorAgreement.Assert(GeneratedModels.Build(artifact), artifact, prepared, seed: 200, trials: 5, "tied model");
    }

    /// <summary>Fine-tuned tied: the tied weight is one parameter, so its codebook's gradient sums over both layers (finite differences agree).</summary>
    [Fact]
    public void ATiedCodebooksGradientSumsOverTheTiedLayers()
    {
        var prepared = ModelCompiler.Prepare(Options());
        var fc1 = prepared.Nodes.Single(n => n.Name == "fc1");
        var model = TrainableModel.Build(prepared);
        Assert.Single(model.Parameters, p => p.Name == fc1.Inputs[1]);
        Assert.InRange(SharedFineTuneTests.CheckCodebookGradient(prepared, fc1.Inputs[1], ((SharedWeightsForm)fc1.Form).Weights), 12, 16);
    }

    [Theory]
    [InlineData("fc1", "names one layer")]
    [InlineData("fc1,fc2;fc2,fc3", "named twice")]
    [InlineData("fc1,fc3", "weights of one shape")]
    [InlineData("fc1,conv9", "'conv9' is not a fully connected layer")]
    public void BadTiesAreMG0007(string ties, string message)
    {
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Prepare(Options(ties)));
        Assert.Equal(ErrorCodes.BadOption, e.Code);
        Assert.Contains(message, e.Message);
        var noSharing = Assert.Throws<ModelGenException>(() => CompressionPlan.Parse(Options() with { WeightSharing = null }));
        Assert.Contains("give WeightSharing", noSharing.Message);
    }
}
