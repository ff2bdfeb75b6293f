using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;

namespace ModelGen.Tests.Pruning;

/// <summary>
/// Pruning, fine-tuning and weight sharing composed (issue 24): LeNet-300-100 pruned while fine-tuned on the 8,000
/// training digits, its layers then shared in codebooks of 32 values, stored sparse with the codes as values. The
/// emitted code runs from the codes, computes what the evaluator computes, embeds the bytes the pipeline counts, and
/// classifies the 2,000 test digits as ONNX Runtime classifies them with the original float32 model.
/// </summary>
public sealed class SparseSharingTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void PrunedFineTunedAndSharedLeNet300RunsFromItsCodesAndAgreesWithOnnxRuntimeOnTheOriginal()
    {
        string path = TestData.Mnist("lenet300.onnx");
        var options = new CompileOptions
        {
            ModelPath = path, ClassName = "PrunedShared", Namespace = "SparseTests", Pruning = 0.92, WeightSharing = 5,
            FineTune = true, Epochs = 12, LearningRate = 1e-3f, CalibrationUint8Scale = 255,
            TrainingDataPath = TestData.Mnist("train-images-u8.npy"), TrainingLabelsPath = TestData.Mnist("train-labels.npy"),
        };
        var artifact = ModelCompiler.Compile(options, out var prepared);
        var shared = artifact.Nodes.Where(n => n.Dense?.Sparse is { Shared: true }).ToList();
        Assert.NotEmpty(shared);
        Assert.All(shared, n => Assert.Equal(5, n.Dense!.Sparse!.CodeBits));
        // Each sparse layer's count is its embedded codes, indices, row counts and codebook (a dense float32 layer's
        // panels embed padding the pipeline's count leaves out: the total below is what the artifact embeds).
        SparseDenseConformanceTests.AssertBytesAsEmbedded(artifact, prepared);
        long embedded = artifact.Tensors.Where(t => t.Storage == TensorStorage.Weight && t.Data is not null).Select(t => t.Data!).Distinct().Sum(d => (long)d.Length);
        output.WriteLine($"{string.Join(", ", artifact.Nodes.Where(n => n.Dense is not null).Select(n => $"{n.Name} {(n.Dense!.Sparse is { } s ? $"sparse {s.Text} {s.ValuesText}" : n.Dense.Layout.ToString())}"))}; WeightBytes {embedded:N0}");

        var models = GeneratedModels.Build(artifact);
        using var ort = new OnnxRuntimeOracle(path);
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        var (labels, _) = TestData.ReadNpy(TestData.Mnist("test-labels.npy"));
        int same = 0, right = 0, rightOriginal = 0;
        for (int d = 0; d < labels.Length; d++)
        {
            var x = images[(d * 784)..((d + 1) * 784)];
            var y = new float[10];
            models.Run(artifact, [x], [y]);
            if (d < 100)
            {
                var evaluated = ReferenceEvaluator.Run(prepared, new Dictionary<string, TensorData> { [prepared.Inputs[0]] = new([1, 1, 28, 28], x) })[prepared.Outputs[0]].Floats;
                Tolerance.AssertClose(evaluated, y, $"digit {d}");
            }
            int original = Tolerance.ArgMax(ort.Run((prepared.Inputs[0], x, [1, 1, 28, 28]))[0]), ours = Tolerance.ArgMax(y);
            if (ours == original) same++;
            if (ours == (int)labels[d]) right++;
            if (original == (int)labels[d]) rightOriginal++;
        }
        output.WriteLine($"argmax as the original's on {same} of {labels.Length} digits; accuracy {right / 20.0:F2}% (original {rightOriginal / 20.0:F2}%)");
        // Issue 24's bar is at most 0.2 points below float32 once the centroids are fine-tuned too (not yet): here the
        // codes of the pruned, fine-tuned model keep within half a point, and its answers are the original's on 96% or more (97.1% when written).
        Assert.True(same >= 0.96 * labels.Length, $"argmax as the original's on only {same} of {labels.Length} digits");
        Assert.True(right >= rightOriginal - 10, $"accuracy {right / 20.0:F2}% against the original's {rightOriginal / 20.0:F2}%");
    }
}
