using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.LowRank;

/// <summary>
/// The halves of a factorized layer whose rank the 4-row, 16-column panels would pad keep their rows unpadded
/// (Dense layout nk32): the embedded bytes are the graph's, and the generated kernel (every SIMD level: eng/test.sh
/// reruns Conformance tests with the wider sets off) agrees with the evaluator for ranks that leave every tail.
/// </summary>
public class LowRankRowsConformanceTests
{
    /// <summary>x [1, 40] → fc1 (33×40) → Relu → fc2 (37×33): the first halves' rows are 40 and 33 long (tails 8 and 1 of 16).</summary>
    static string Model() => new OnnxBuilder().Input("x", 1, 40).Output("y")
        .Initializer("w1", [33, 40], OnnxBuilder.Random(33 * 40, 41)).Initializer("b1", [33], OnnxBuilder.Random(33, 42))
        .Initializer("w2", [37, 33], OnnxBuilder.Random(37 * 33, 43)).Initializer("b2", [37], OnnxBuilder.Random(37, 44))
        .Node("Gemm", ["x", "w1", "b1"], ["h1"], ("transB", 1L)).NamedLast("fc1").Node("Relu", ["h1"], ["a1"])
        .Node("Gemm", ["a1", "w2", "b2"], ["y"], ("transB", 1L)).NamedLast("fc2").Save();

    static long EmbeddedBytes(ModelArtifact artifact) => artifact.Tensors.Where(t => t.Storage == TensorStorage.Weight && t.Data is not null).Sum(t => (long)t.Data!.Length);

    [Fact]
    public void ThinHalvesAreStoredUnpaddedAndTheGeneratedCodeAgreesWithTheEvaluatorAtEveryRank()
    {
        // Ranks 1 to 17, each a row length of the second halves: every tail of 4, 8 and 16 columns, and rows not a multiple of 4.
        int[] ranks = [.. Enumerable.Range(1, 17)];
        string model = Model();
        var compiled = ranks.Select(r =>
        {
            var options = new CompileOptions { ModelPath = model, ClassName = $"Rank{r}", Namespace = "LowRankRows", LowRank = $"rank:{r}" };
            var prepared = ModelCompiler.Prepare(options);
            return (Rank: r, Prepared: prepared, Artifact: ModelCompiler.Compile(options, prepared, out _));
        }).ToList();
        foreach (var (r, prepared, artifact) in compiled)
        {
            var dense = artifact.Nodes.Where(n => n.Kernel == KernelKind.Dense).ToList();
            Assert.Equal(4, dense.Count); // both layers factorized at every rank (r·(40 + 33) < 40·33 up to 17)
            // Every half here pads as panels (rows of 33 or 37, or columns of 40 or 33), whatever the rank.
            Assert.All(dense, node => Assert.Equal(DenseLayout.Nk32, node.Dense!.Layout));
            Assert.Equal(CompressionPipeline.WeightBytes(prepared), EmbeddedBytes(artifact)); // the weights and biases as the graph holds them, nothing padded
        }
        var models = GeneratedModels.Build([.. compiled.Select(c => c.Artifact)]);
        foreach (var (r, prepared, artifact) in compiled)
            EvaluatorAgreement.Assert(models, artifact, prepared, seed: 500, trials: 3, $"rank {r}, nk32 kernels");
    }

    /// <summary>A half the panels hold without padding (rows a multiple of 4, columns of 16) keeps the panels, as every layer did before.</summary>
    [Fact]
    public void HalvesThePanelsDoNotPadKeepThePanels()
    {
        string model = new OnnxBuilder().Input("x", 1, 48).Output("y")
            .Initializer("w", [32, 48], OnnxBuilder.Random(32 * 48, 45)).Initializer("b", [32], OnnxBuilder.Random(32, 46))
            .Node("Gemm", ["x", "w", "b"], ["y"], ("transB", 1L)).Save();
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = model, LowRank = "rank:16" });
        Assert.Equal([DenseLayout.Panels4, DenseLayout.Panels4], artifact.Nodes.Where(n => n.Kernel == KernelKind.Dense).Select(n => n.Dense!.Layout));
    }
}
