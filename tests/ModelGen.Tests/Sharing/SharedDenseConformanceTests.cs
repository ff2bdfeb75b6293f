using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;

namespace ModelGen.Tests.Sharing;

/// <summary>
/// Shared fully connected layers (issue 24, item 1): the codebook kernel (every code width 2 to 8, every SIMD level,
/// the others through eng/test.sh) computes what the evaluator computes with the codebook's values, the weight bytes
/// are the packed codes and the codebook, and LeNet-300-100 and LeNet-5 shared at 4 bits run as the evaluator says
/// and close to ONNX Runtime on the original model.
/// </summary>
public sealed class SharedDenseConformanceTests(Xunit.Abstractions.ITestOutputHelper output)
{
    public static TheoryData<int, string> Cases()
    {
        var data = new TheoryData<int, string>();
        for (int bits = 2; bits <= 8; bits++)
            foreach (string simd in new[] { "auto", "vector128", "none" }) data.Add(bits, simd);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void CodebookKernelsComputeWhatTheEvaluatorComputes(int bits, string simd)
    {
        // 37 outputs (9 groups of 4 rows, then one alone) of 203 inputs (25 steps of 8, then 3 one by one), a fused Relu;
        // odd widths with a quarter of the weights exactly zero (a pruned layer: code 0 reserved).
        const int rows = 37, columns = 203;
        var random = new Random(24 + bits);
        var w = new float[rows * columns];
        for (int i = 0; i < w.Length; i++) w[i] = bits % 2 == 1 && random.Next(4) == 0 ? 0f : (float)(random.NextDouble() * 2 - 1);
        string path = new OnnxBuilder(13, "shared").Input("x", 1, columns)
            .Initializer("w", [rows, columns], w).Initializer("b", [rows], [.. Enumerable.Range(0, rows).Select(i => 0.01f * i)])
            .Node("Gemm", ["x", "w", "b"], ["h"], ("transB", 1)).Node("Relu", ["h"], ["y"]).Output("y").Save();
        var options = new CompileOptions { ModelPath = path, ClassName = "Shared", Namespace = "SharingTests", Simd = simd, WeightSharing = bits };
        var artifact = ModelCompiler.Compile(options, out var prepared);
        var node = Assert.Single(artifact.Nodes, n => n.Kernel == KernelKind.Dense);
        Assert.Equal(DenseLayout.Codebook, node.Dense!.Layout);
        Assert.Equal(bits, node.Dense.Bits);
        var form = Assert.IsType<SharedWeightsForm>(prepared.Nodes.Single(n => n.OpType == "Dense").Form);
        Assert.Equal(bits % 2 == 1, form.Weights.ZeroCode);
        // The codes' bytes, the codebook's and the bias's, as embedded and as the pipeline counts them.
        long expected = rows * ((columns * bits + 7) / 8) + 4L * (1 << bits) + 4L * rows;
        Assert.Equal(expected, EmbeddedBytes(artifact));
        Assert.Equal(expected, CompressionPipeline.WeightBytes(prepared));
        // The artifact's text carries the layout and bits.
        Assert.Equal(node.Dense, ArtifactText.Read(ArtifactText.Write(artifact)).Nodes.Single(n => n.Kernel == KernelKind.Dense).Dense);

        var models = GeneratedModels.Build(artifact);
        for (int trial = 0; trial < 3; trial++)
            RunAgainstTheEvaluator(models, artifact, prepared, OnnxBuilder.Random(columns, 100 + trial), [1, columns], rows, $"{bits}-bit {simd}, input {trial}");
    }

    /// <summary>The generated model's output for <paramref name="x"/>, asserted within tolerance of the evaluator's.</summary>
    static float[] RunAgainstTheEvaluator(GeneratedModels models, ModelArtifact artifact, Graph prepared, float[] x, int[] shape, int outputs, string what)
    {
        var y = new float[outputs];
        models.Run(artifact, [x], [y]);
        Tolerance.AssertClose(ReferenceEvaluator.Run(prepared, new Dictionary<string, TensorData> { [prepared.Inputs[0]] = new(shape, x) })[prepared.Outputs[0]].Floats, y, what);
        return y;
    }

    /// <summary>The bytes of the artifact's embedded weights (each tensor once).</summary>
    static long EmbeddedBytes(ModelArtifact artifact) =>
        artifact.Tensors.Where(t => t.Storage == TensorStorage.Weight && t.Data is not null).Select(t => t.Data!).Distinct().Sum(d => (long)d.Length);

    [Theory]
    [InlineData("lenet300.onnx")]
    [InlineData("lenet5.onnx")]
    public void LeNetsSharedAtFourBitsRunAsTheEvaluatorSaysAndAgreeWithOnnxRuntime(string model)
    {
        string path = TestData.Mnist(model);
        var options = new CompileOptions { ModelPath = path, ClassName = "Shared", Namespace = "SharingTests", WeightSharing = 4 };
        var artifact = ModelCompiler.Compile(options, out var prepared);
        Assert.All(artifact.Nodes.Where(n => n.Kernel == KernelKind.Dense), n => Assert.Equal(DenseLayout.Codebook, n.Dense!.Layout));
        // Bytes worked out from the shapes: per fully connected layer N·K/2 codes (K even here), 16 float32 entries and
        // the bias; the convolutions (no codebook kernel) keep their float32 weights and biases.
        long expected = 0;
        foreach (var n in prepared.Nodes.Where(n => n.OpType is "Dense" or "Conv"))
        {
            var shape = prepared[n.Inputs[1]].Shape!;
            long count = TensorData.Size(shape), bias = n.HasInput(2) ? TensorData.Size(prepared[n.Inputs[2]].Shape!) * 4L : 0;
            expected += (n.OpType == "Dense" ? count / 2 + 64 : count * 4) + bias;
        }
        Assert.Equal(expected, CompressionPipeline.WeightBytes(prepared));
        Assert.Equal(expected, EmbeddedBytes(artifact));
        if (model == "lenet300.onnx") Assert.Equal(300 * 392 + 100 * 150 + 10 * 50 + 3 * 64 + 4 * 410, expected);

        var models = GeneratedModels.Build(artifact);
        using var ort = new OnnxRuntimeOracle(path);
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        var (labels, _) = TestData.ReadNpy(TestData.Mnist("test-labels.npy"));
        int digits = 500, same = 0, rightShared = 0, rightOriginal = 0;
        for (int d = 0; d < digits; d++)
        {
            var x = images[(d * 784)..((d + 1) * 784)];
            var y = RunAgainstTheEvaluator(models, artifact, prepared, x, [1, 1, 28, 28], 10, $"digit {d}");
            var original = ort.Run((prepared.Inputs[0], x, [1, 1, 28, 28]))[0];
            int ours = Tolerance.ArgMax(y), theirs = Tolerance.ArgMax(original);
            if (ours == theirs) same++;
            if (ours == (int)labels[d]) rightShared++;
            if (theirs == (int)labels[d]) rightOriginal++;
        }
        output.WriteLine($"{model} shared 4-bit: top-1 agreement with ONNX Runtime {same}/{digits}, accuracy {rightShared} against {rightOriginal} of the original; WeightBytes {expected:N0}");
        // Deep Compression keeps LeNet's accuracy at 4-bit fully connected codebooks (before retraining the centroids,
        // within a few tenths): 16 well-placed values per layer move few decisions. We ask at most 2% of decisions changed
        // and at most 1 point of accuracy lost, without fine-tuning.
        Assert.True(same >= digits * 98 / 100, $"top-1 agreement {same}/{digits}");
        Assert.True(rightShared >= rightOriginal - digits / 100, $"accuracy {rightShared} against {rightOriginal}");
    }
}
