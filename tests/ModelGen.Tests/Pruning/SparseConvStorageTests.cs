using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Tests.Support;

namespace ModelGen.Tests.Pruning;

/// <summary>The sparse storage pass: which convolutions go sparse, the index stream's bits, the byte count against the embedded bytes.</summary>
public sealed class SparseConvStorageTests
{
    [Fact]
    public void IndexStreamPacksEachIndexFromTheLowBitsAndStartsRowsOnAByte()
    {
        // Unstructured, 4 bits: columns 0, 15 (padding), 30 (padding), 40 → distances 1, 15, 15, 10; row 1 empty.
        var w = new float[2 * 41];
        w[0] = 1.5f; w[40] = -2f;
        Assert.Equal(new byte[] { 0xF1, 0xAF }, SparseConvStorage.IndexStream(SparseWeights.Unstructured(w, 2, 41, 4)));
        // 2:4 over 10 columns (a short last group): positions 0, 1 | 0, 3 | 0, 1 in 2 bits → 0b11_00_01_00, 0b01_00.
        var nOfM = SparseWeights.NOfM([0, 3, 0, 0, 1, 0, 0, 2, 0, 5], 1, 10, 2, 4)!;
        Assert.Equal(new byte[] { 0b11_00_01_00, 0b01_00 }, SparseConvStorage.IndexStream(nOfM));
        // Two rows of one 8-bit index each: each on its own byte.
        var two = new float[2 * 300];
        two[299] = 1f; two[300] = 2f;
        Assert.Equal(new byte[] { 255, 45, 1 }, SparseConvStorage.IndexStream(SparseWeights.Unstructured(two, 2, 300, 8)));
    }

    [Fact]
    public void OnlyPrunedConvolutionsThatPayGoSparse()
    {
        // A 3x3 convolution at 90% zeros goes sparse; one with 70% kept, a depthwise one and one of horizontal stride 2 stay dense.
        float[] Pruned(int n, double share, int seed) => SparseConvModels.Unstructured(OnnxBuilder.Random(n, seed), share);
        string path = new OnnxBuilder(13, "decide").Input("x", 1, 8, 10, 10)
            .Initializer("w1", [8, 8, 3, 3], Pruned(576, 0.9, 1)).Node("Conv", ["x", "w1"], ["a"], ("pads", new[] { 1, 1, 1, 1 }))
            .Initializer("w2", [8, 8, 3, 3], Pruned(576, 0.3, 2)).Node("Conv", ["a", "w2"], ["b"], ("pads", new[] { 1, 1, 1, 1 }))
            .Initializer("w3", [8, 1, 3, 3], Pruned(72, 0.9, 3)).Node("Conv", ["b", "w3"], ["c"], ("pads", new[] { 1, 1, 1, 1 }), ("group", 8))
            .Initializer("w4", [8, 8, 3, 3], Pruned(576, 0.9, 4)).Node("Conv", ["c", "w4"], ["y"], ("strides", new[] { 1, 2 }))
            .Output("y").Save("decide.onnx");
        var (artifact, graph) = SparseConvModels.Compile(path, "Decide");
        Assert.Equal(["w1"], graph.Nodes.Where(n => n.Form is SparseConvForm).Select(n => n.Inputs[1]));
        Assert.Single(SparseConvModels.SparseConvs(artifact));
    }

    [Theory]
    [InlineData("2:4", "2:4")]
    [InlineData("1:4", "1:4")]
    [InlineData("4:8", "4:8")]
    [InlineData("3:4", null)]
    [InlineData("5:8", null)]
    public void NOfMGoesSparseWhileItsEntriesCostLessThanTheDenseWeights(string pruning, string? format)
    {
        // Stored entries × NOfMEntryCost against the dense weights: 50% and 25% pay, 75% and 62.5% do not.
        var weights = SparseConvModels.Prune(OnnxBuilder.Random(16 * 8 * 9, 7), 16, pruning);
        string path = new OnnxBuilder(13, "nofm").Input("x", 1, 8, 12, 12).Initializer("w", [16, 8, 3, 3], weights)
            .Node("Conv", ["x", "w"], ["y"], ("pads", new[] { 1, 1, 1, 1 })).Output("y").Save("nofm.onnx");
        var (artifact, _) = SparseConvModels.Compile(path, "NOfM");
        Assert.Equal(format, SparseConvModels.SparseConvs(artifact).SingleOrDefault()?.Conv!.Sparse!.ToString());
    }

    [Fact]
    public void ThePassRunsLastAndOnlyWhenThePlanPrunes()
    {
        var options = new CompileOptions { ModelPath = TestData.Mnist("lenet5.onnx"), Compression = "int8-weights" };
        Assert.DoesNotContain(CompressionPlan.Parse(options).Passes(), p => p is SparseConvStoragePass);
        var pruning = CompressionPlan.Parse(options with { Pruning = 0.5 }).Passes();
        Assert.IsType<SparseConvStoragePass>(pruning.OrderBy(p => p.Stage).Last());
    }

    [Theory]
    [InlineData("2:4")]
    [InlineData("0.9")]
    public void WeightBytesCountTheEmbeddedSparseBytes(string pruning)
    {
        string path = SparseConvModels.PrunedCopy(TestData.Mnist("lenet5.onnx"), pruning);
        var (artifact, graph) = SparseConvModels.Compile(path, "Bytes");
        var dense = ModelCompiler.Normalized(new CompileOptions { ModelPath = path });
        long saved = 0;
        foreach (var node in SparseConvModels.SparseConvs(artifact))
        {
            var form = (SparseConvForm)graph.Nodes.Single(n => n.Name == node.Name).Form;
            int weightInputs = node.Conv!.Sparse!.IsNOfM ? 2 : 3; // values, indices (and row counts)
            long embedded = node.Inputs.Skip(1).Take(weightInputs).Sum(i => (long)artifact.Tensors[i].Data!.Length);
            Assert.Equal(form.Weights.Bytes(4), embedded);
            saved += form.Weights.Rows * (long)form.Weights.Columns * 4 - embedded;
        }
        Assert.True(saved > 0);
        Assert.Equal(CompressionPipeline.WeightBytes(dense) - saved, CompressionPipeline.WeightBytes(graph));
        // The sparse attributes survive the artifact's text form.
        var read = ArtifactText.Read(ArtifactText.Write(artifact));
        Assert.Equal(SparseConvModels.SparseConvs(artifact).Select(n => n.Conv), SparseConvModels.SparseConvs(read).Select(n => n.Conv));
        // A sparse method names its format, and only a valid one.
        Assert.Throws<FormatException>(() => new ConvAttributes(1, ConvMethod.Sparse));
        Assert.Throws<FormatException>(() => SparseConvFormat.NOfM(4, 4));
        Assert.Throws<FormatException>(() => SparseConvFormat.Unstructured(2));
    }
}
