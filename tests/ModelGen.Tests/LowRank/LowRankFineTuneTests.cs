using ModelGen.Compiler;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.LowRank;

/// <summary>Issue 24's low-rank bar: LeNet-300-100 at energy 0.9, fine-tuned on the 8,000 training digits (takes minutes).</summary>
public class LowRankFineTuneTests(ITestOutputHelper output)
{
    [Fact]
    public void LeNet300FactorizedAndFineTunedLosesAtMostHalfAPoint()
    {
        var plain = new CompileOptions { ModelPath = TestData.Mnist("lenet300.onnx") };
        double float32 = Training.FineTuneTests.TestAccuracy(ModelCompiler.Prepare(plain));
        var options = plain with
        {
            LowRank = "0.9", FineTune = true, Epochs = 8, CalibrationUint8Scale = 255,
            TrainingDataPath = TestData.Mnist("train-images-u8.npy"), TrainingLabelsPath = TestData.Mnist("train-labels.npy"),
        };
        var graph = ModelCompiler.Prepare(options);
        double accuracy = Training.FineTuneTests.TestAccuracy(graph);
        long before = Compiler.Compress.CompressionPipeline.WeightBytes(ModelCompiler.Normalized(plain));
        long after = Compiler.Compress.CompressionPipeline.WeightBytes(graph);
        output.WriteLine($"float32 {float32:P2}; {graph.CompressionStages[0].Name}, fine-tuned: {accuracy:P2}, {before:N0} → {after:N0} bytes");
        // Fine-tuning trained the two thin layers of each factorized layer.
        Assert.Contains(graph.CompressionStages, s => s.Name == "fine-tuned" && s.Training is { Epochs.Count: > 0 });
        var untrained = ModelCompiler.Prepare(plain with { LowRank = "0.9" });
        var factors = untrained.Nodes.Where(n => n.Name.Contains("/low_rank_", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(factors);
        foreach (var node in factors)
            Assert.NotEqual(untrained[node.Inputs[1]].Constant!.Floats, graph[graph.Nodes.Single(n => n.Name == node.Name).Inputs[1]].Constant!.Floats);
        Assert.True(after * 2 <= before, $"{after:N0} bytes against {before:N0}");
        Assert.True(accuracy >= float32 - 0.005, $"low rank fine-tuned {accuracy:P2} against float32 {float32:P2}");
    }

    /// <summary>
    /// LeNet-5 at energy 0.9, fine-tuned: fewer weight bytes and no more multiply-adds than float32 (the speed check),
    /// at most half a point lost on the test digits.
    /// </summary>
    [Fact]
    public void LeNet5FactorizedAndFineTunedLosesAtMostHalfAPoint()
    {
        var plain = new CompileOptions { ModelPath = TestData.Mnist("lenet5.onnx") };
        var original = ModelCompiler.Prepare(plain);
        double float32 = Training.FineTuneTests.TestAccuracy(original);
        var options = plain with
        {
            LowRank = "0.9", FineTune = true, Epochs = 8, CalibrationUint8Scale = 255,
            TrainingDataPath = TestData.Mnist("train-images-u8.npy"), TrainingLabelsPath = TestData.Mnist("train-labels.npy"),
        };
        var graph = ModelCompiler.Prepare(options);
        double accuracy = Training.FineTuneTests.TestAccuracy(graph);
        long before = Compiler.Compress.CompressionPipeline.WeightBytes(ModelCompiler.Normalized(plain));
        long after = Compiler.Compress.CompressionPipeline.WeightBytes(graph);
        long multiplyAddsBefore = Compiler.Compress.MultiplyAdds.Total(original), multiplyAddsAfter = Compiler.Compress.MultiplyAdds.Total(graph);
        output.WriteLine($"float32 {float32:P2}; {graph.CompressionStages[0].Name}, fine-tuned: {accuracy:P2}, {before:N0} → {after:N0} bytes, {multiplyAddsBefore:N0} → {multiplyAddsAfter:N0} multiply-adds");
        Assert.Contains(graph.Nodes, n => n.Name.Contains("/low_rank_", StringComparison.Ordinal));
        Assert.True(after < before, $"{after:N0} bytes against {before:N0}");
        Assert.True(multiplyAddsAfter <= multiplyAddsBefore, $"{multiplyAddsAfter:N0} multiply-adds against {multiplyAddsBefore:N0}");
        Assert.True(accuracy >= float32 - 0.005, $"low rank fine-tuned {accuracy:P2} against float32 {float32:P2}");
    }
}
