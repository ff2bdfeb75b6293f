using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;

namespace ModelGen.Tests.Pruning;

/// <summary>
/// Sparse convolutions (SparseConvEmitter) against the reference evaluator (within 1e-4) and ONNX Runtime on the same
/// pruned float weights, at the widest SIMD, Vector128 only and scalar (eng/test.sh reruns this class with the wider
/// instruction sets switched off): odd sizes, pads, strides, dilations, groups, 1xk and kx1 kernels, fused
/// activations, empty output channels, N:M rows with a short last group, a batch of 2, a 1-D convolution; then pruned LeNet-5 and
/// the depthwise-separable test CNN.
/// </summary>
public sealed class SparseConvConformanceTests
{
    /// <summary>A case: input shape, weight shape, Conv attributes, how the weights are pruned, bias, activation after.</summary>
    sealed record Case(int[] X, int[] W, (string, object)[] Attributes, string Pruning, bool Bias = true, string? Activation = null, int[]? EmptyRows = null, string? Format = null);

    static readonly Dictionary<string, Case> Cases = new()
    {
        ["3x3Pads1Relu"] = new([1, 3, 9, 11], [5, 3, 3, 3], [("pads", new[] { 1, 1, 1, 1 })], "0.7", Activation: "Relu"),
        ["AsymmetricPadsVerticalStride2"] = new([1, 2, 10, 13], [4, 2, 3, 3], [("pads", new[] { 0, 2, 1, 0 }), ("strides", new[] { 2, 1 })], "0.5", Bias: false),
        ["Dilation2"] = new([1, 3, 12, 12], [6, 3, 3, 3], [("pads", new[] { 2, 2, 2, 2 }), ("dilations", new[] { 2, 2 })], "2:4", Format: "2:4"),
        ["Groups2ShortLastGroup"] = new([1, 4, 8, 9], [6, 2, 3, 3], [("group", 2)], "2:4", Format: "2:4"),
        ["Kernel1x5"] = new([1, 3, 7, 17], [5, 3, 1, 5], [("pads", new[] { 0, 2, 0, 2 })], "2:4", Format: "2:4"),
        ["Kernel5x1Clip"] = new([1, 3, 17, 6], [4, 3, 5, 1], [("pads", new[] { 2, 0, 2, 0 })], "0.6", Activation: "Clip"),
        ["EmptyOutputChannels"] = new([1, 4, 9, 9], [6, 4, 3, 3], [], "0.5", EmptyRows: [1, 4]),
        ["Pointwise2of4Relu"] = new([1, 16, 7, 7], [20, 16, 1, 1], [], "2:4", Activation: "Relu", Format: "2:4"),
        ["PointwiseWide90"] = new([1, 8, 14, 14], [12, 8, 1, 1], [], "0.9"),
        ["WideRows"] = new([1, 2, 5, 70], [3, 2, 3, 3], [("pads", new[] { 1, 1, 1, 1 })], "0.6"),
        ["EightBitIndices"] = new([1, 32, 6, 6], [4, 32, 3, 3], [], "0.97", Format: "unstructured-8"),
        ["NarrowOutput"] = new([1, 2, 3, 3], [3, 2, 2, 2], [], "0.5"),
        ["Batch2Groups2"] = new([2, 4, 6, 7], [4, 2, 3, 3], [("group", 2), ("pads", new[] { 1, 1, 1, 1 })], "0.5"),
        ["OneDimensional"] = new([1, 4, 20], [6, 4, 3], [("pads", new[] { 1, 1 })], "2:4"),
        // N:M tile edges (offsets decoded per row, the input copied onto 64-byte lines): rows of 13 columns (a last
        // vector overlapping), a vertical stride of 2 and uneven pads; 27 columns a row (a last decoding step short);
        // a pointwise row of 100 columns (tiles as equal as they divide); long rows at 4:8 (4-bit positions) and 1:4
        // (no vector decoding); an output row narrower than a vector.
        ["TwoOfFourOddColumnsStride2Pads"] = new([1, 6, 11, 13], [7, 6, 3, 3], [("pads", new[] { 1, 2, 0, 1 }), ("strides", new[] { 2, 1 })], "2:4", Activation: "Relu", Format: "2:4"),
        ["TwoOfFourShortLastDecodingStep"] = new([1, 3, 9, 21], [5, 3, 3, 3], [], "2:4", Bias: false, Format: "2:4"),
        ["TwoOfFourPointwiseHundredColumns"] = new([1, 8, 10, 10], [9, 8, 1, 1], [], "2:4", Activation: "Clip", Format: "2:4"),
        ["FourOfEight"] = new([1, 8, 7, 19], [6, 8, 3, 3], [("pads", new[] { 1, 1, 1, 1 })], "4:8", Format: "4:8"),
        ["OneOfFour"] = new([1, 8, 6, 17], [5, 8, 3, 3], [], "1:4", Format: "1:4"),
        ["TwoOfFourNarrowOutput"] = new([1, 4, 5, 5], [3, 4, 2, 2], [], "2:4", Format: "2:4"),
        ["SixPercentKept"] = new([1, 16, 8, 8], [5, 16, 3, 3], [("pads", new[] { 1, 1, 1, 1 })], "0.94"), // gaps of 15 to 30 common: 5- or 6-bit indices
        ["LongRows"] = new([1, 200, 5, 5], [2, 200, 3, 3], [], "0.8"), // 360 entries a row: 16-bit counts
    };

    public static TheoryData<string> Names => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(Names))]
    public void SparseKernelMatchesTheEvaluatorAndOnnxRuntime(string name)
    {
        var (c, path) = Model(name);
        var compiled = new[] { "auto", "vector128", "none" }.Select(simd => SparseConvModels.Compile(path, "Sparse" + simd.Replace("128", ""), simd)).ToList();
        foreach (var (artifact, _) in compiled)
        {
            var sparse = Assert.Single(SparseConvModels.SparseConvs(artifact));
            if (c.Format is not null) Assert.Equal(c.Format, sparse.Conv!.Sparse!.ToString());
        }
        var models = GeneratedModels.Build([.. compiled.Select(m => m.Artifact)]);
        var x = OnnxBuilder.Random(c.X.Aggregate(1, (p, q) => p * q), 13);
        var graph = compiled[0].Graph;
        var expected = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { ["x"] = new(c.X, x) })[graph.Outputs[0]].Floats;
        using var ort = new OnnxRuntimeOracle(path);
        var reference = ort.Run(("x", x, c.X))[0];
        Tolerance.AssertClose(reference, expected, $"{name}: evaluator vs ONNX Runtime");
        foreach (var (artifact, _) in compiled)
        {
            var y = new float[expected.Length];
            models.Run(artifact, [x], [y]);
            Tolerance.AssertClose(expected, y, $"{name}, {artifact.ClassName}");
        }
    }

    /// <summary>The cases whose codes are fewer bytes sparse than dense (small layers may not be), at 3 bits (codes across bytes) and 4.</summary>
    public static TheoryData<string, int> SharedCases()
    {
        var data = new TheoryData<string, int>();
        foreach (string name in new[] { "3x3Pads1Relu", "Dilation2", "PointwiseWide90", "EightBitIndices", "OneDimensional", "SixPercentKept", "LongRows" })
            foreach (int bits in new[] { 3, 4 }) data.Add(name, bits);
        return data;
    }

    /// <summary>
    /// The same convolutions with their weights shared (codebooks of 2^bits values, code 0 for the pruned zeros), the
    /// codes stored sparse: the kernels against the evaluator (which computes with the values the codes stand for) at
    /// every SIMD level, and the bytes the form counts worked out here and equal to those embedded.
    /// </summary>
    [Theory]
    [MemberData(nameof(SharedCases))]
    public void SparseSharedKernelMatchesTheEvaluator(string name, int bits)
    {
        var (c, path) = Model(name);
        var compiled = new[] { "auto", "vector128", "none" }.Select(simd => SparseConvModels.Compile(path, "Shared" + simd.Replace("128", ""), simd, sharingBits: bits)).ToList();
        foreach (var (artifact, graph) in compiled)
        {
            var node = Assert.Single(SparseConvModels.SparseConvs(artifact));
            Assert.Equal(bits, node.Conv!.Sparse!.CodeBits);
            // N:M where the float case is (unstructured may take other index bits: codes of 3 or 4 bits make padding cheaper).
            if (c.Format is { } nOfM && nOfM.Contains(':')) Assert.Equal($"{nOfM},c{bits}", node.Conv.Sparse.ToString());
            var form = Assert.IsType<SparseConvForm>(graph.Nodes.Single(n => n.Name == node.Name).Form);
            var s = form.Weights;
            long indexBytes = Enumerable.Range(0, s.Rows).Sum(r => ((long)(s.RowStarts[r + 1] - s.RowStarts[r]) * s.IndexBits + 7) / 8) + (8 % s.IndexBits == 0 ? 0 : 1);
            long countBytes = s.Pattern == SparsePattern.NOfM ? 0 : s.Rows * (Enumerable.Range(0, s.Rows).All(r => s.RowStarts[r + 1] - s.RowStarts[r] < 256) ? 1 : 2);
            long expected = ((long)s.Entries * bits + 7) / 8 + (bits == 8 ? 0 : 1) + indexBytes + countBytes + 4 * (1 << bits);
            Assert.Equal(expected, form.Bytes);
            int stored = s.Pattern == SparsePattern.NOfM ? 3 : 4; // codes, indices, [counts,] codebook
            Assert.Equal(expected, node.Inputs.Skip(1).Take(stored).Sum(i => (long)artifact.Tensors[i].Data!.Length));
        }
        var models = GeneratedModels.Build([.. compiled.Select(m => m.Artifact)]);
        var x = OnnxBuilder.Random(c.X.Aggregate(1, (p, q) => p * q), 13);
        var shared = compiled[0].Graph;
        var evaluated = ReferenceEvaluator.Run(shared, new Dictionary<string, TensorData> { ["x"] = new(c.X, x) })[shared.Outputs[0]].Floats;
        foreach (var (artifact, _) in compiled)
        {
            var y = new float[evaluated.Length];
            models.Run(artifact, [x], [y]);
            Tolerance.AssertClose(evaluated, y, $"{name} shared {bits} bits, {artifact.ClassName}");
        }
    }

    /// <summary>The case's one-Conv model, its weights pruned as the case says, written to a file.</summary>
    static (Case Case, string Path) Model(string name)
    {
        var c = Cases[name];
        int rows = c.W[0];
        var weights = SparseConvModels.Prune(OnnxBuilder.Random(c.W.Aggregate(1, (a, b) => a * b), 11), rows, c.Pruning);
        int columns = weights.Length / rows;
        foreach (int r in c.EmptyRows ?? []) Array.Clear(weights, r * columns, columns);
        var b = new OnnxBuilder(13, name).Input("x", [.. c.X.Select(d => (int?)d)]).Initializer("w", c.W, weights);
        string[] convInputs = c.Bias ? ["x", "w", "b"] : ["x", "w"];
        if (c.Bias) b.Initializer("b", [rows], OnnxBuilder.Random(rows, 12));
        b.Node("Conv", convInputs, [c.Activation is null ? "y" : "c"], c.Attributes);
        if (c.Activation == "Relu") b.Node("Relu", ["c"], ["y"]);
        if (c.Activation == "Clip") b.Initializer("lo", [], [0f]).Initializer("hi", [], [0.5f]).Node("Clip", ["c", "lo", "hi"], ["y"]);
        return (c, b.Output("y").Save(name + ".onnx"));
    }

    [Theory]
    [InlineData("lenet5", "2:4")]
    [InlineData("lenet5", "0.5")]
    [InlineData("lenet5", "0.9")]
    [InlineData("dwsep", "2:4")]
    [InlineData("dwsep", "0.9")]
    public void PrunedModelsMatchTheEvaluatorAndOnnxRuntime(string model, string pruning)
    {
        string original = model == "lenet5" ? TestData.Mnist("lenet5.onnx") : Path.Combine(TestData.Root, "tests", "ModelGen.Tests", "Training", "Reference", "dwsep.onnx");
        string path = SparseConvModels.PrunedCopy(original, pruning);
        var compiled = new[] { "auto", "vector128", "none" }.Select(simd => SparseConvModels.Compile(path, "Pruned" + simd.Replace("128", ""), simd)).ToList();
        // Every convolution but the depthwise ones is sparse: LeNet-5's two, the CNN's stem and three pointwise layers.
        Assert.Equal(model == "lenet5" ? 2 : 4, SparseConvModels.SparseConvs(compiled[0].Artifact).Count);
        var models = GeneratedModels.Build([.. compiled.Select(m => m.Artifact)]);
        var (digits, _) = TestData.ReadNpy(TestData.Mnist("calibration-256.npy"));
        var graph = compiled[0].Graph;
        using var ort = new OnnxRuntimeOracle(path);
        for (int i = 0; i < 4; i++)
        {
            var x = digits.AsSpan(i * 784, 784).ToArray();
            var expected = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { [graph.Inputs[0]] = new([1, 1, 28, 28], x) })[graph.Outputs[0]].Floats;
            Tolerance.AssertClose(ort.Run((graph.Inputs[0], x, [1, 1, 28, 28]))[0], expected, $"{model} {pruning}: evaluator vs ONNX Runtime");
            foreach (var (artifact, _) in compiled)
            {
                var y = new float[expected.Length];
                models.Run(artifact, [x], [y]);
                Tolerance.AssertClose(expected, y, $"{model} {pruning}, {artifact.ClassName}, digit {i}");
            }
        }
    }

    [Fact]
    public void OneShotPruningThroughThePlanEmitsSparseConvolutions()
    {
        // --pruning 0.92 on LeNet-5: magnitude pruning, then the sparse storage stage; the convolutions it made sparse run as the evaluator says.
        var options = new CompileOptions { ModelPath = TestData.Mnist("lenet5.onnx"), ClassName = "Pruned92", Namespace = "Sparse.Plan", Pruning = 0.92 };
        var artifact = ModelCompiler.Compile(options, out var graph);
        Assert.Equal("sparse storage (convolutions)", graph.CompressionStages[^1].Name);
        Assert.NotEmpty(SparseConvModels.SparseConvs(artifact));
        Assert.True(graph.CompressionStages[^1].WeightBytes < graph.CompressionStages[^2].WeightBytes);
        var models = GeneratedModels.Build(artifact);
        var (digits, _) = TestData.ReadNpy(TestData.Mnist("calibration-256.npy"));
        var x = digits.AsSpan(0, 784).ToArray();
        var expected = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { [graph.Inputs[0]] = new([1, 1, 28, 28], x) })[graph.Outputs[0]].Floats;
        var y = new float[expected.Length];
        models.Run(artifact, [x], [y]);
        Tolerance.AssertClose(expected, y, "LeNet-5 pruned 92%");
    }
}
