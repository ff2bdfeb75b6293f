using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.LowRank;

/// <summary>Issue 24's low-rank bar: LeNet-300-100 and LeNet-5 at energy 0.9, fine-tuned on the 8,000 training digits (takes minutes).</summary>
public class LowRankFineTuneTests(ITestOutputHelper output)
{
    /// <summary>The model factorized (energy 0.9 unless given) and fine-tuned for 8 epochs on the labelled training digits, its test accuracy and float32's, and the weight bytes before and after.</summary>
    (Graph Graph, CompileOptions Plain, double Float32, double Accuracy, long Before, long After) FactorizedAndFineTuned(string model, string lowRank = "0.9")
    {
        var plain = new CompileOptions { ModelPath = TestData.Mnist(model) };
        double float32 = Training.FineTuneTests.TestAccuracy(ModelCompiler.Prepare(plain));
        var options = plain with
        {
            LowRank = lowRank, FineTune = true, Epochs = 8, CalibrationUint8Scale = 255,
            TrainingDataPath = TestData.Mnist("train-images-u8.npy"), TrainingLabelsPath = TestData.Mnist("train-labels.npy"),
        };
        var graph = ModelCompiler.Prepare(options);
        double accuracy = Training.FineTuneTests.TestAccuracy(graph);
        long before = CompressionPipeline.WeightBytes(ModelCompiler.Normalized(plain));
        long after = CompressionPipeline.WeightBytes(graph);
        output.WriteLine($"float32 {float32:P2}; {graph.CompressionStages[0].Name}, fine-tuned: {accuracy:P2}, {before:N0} → {after:N0} bytes");
        Assert.True(accuracy >= float32 - 0.005, $"low rank fine-tuned {accuracy:P2} against float32 {float32:P2}");
        return (graph, plain, float32, accuracy, before, after);
    }

    [Fact]
    public void LeNet300FactorizedAndFineTunedLosesAtMostHalfAPoint()
    {
        var (graph, plain, _, _, before, after) = FactorizedAndFineTuned("lenet300.onnx");
        // Fine-tuning trained the two thin layers of each factorized layer.
        Assert.Contains(graph.CompressionStages, s => s.Name == "fine-tuned" && s.Training is { Epochs.Count: > 0 });
        var untrained = ModelCompiler.Prepare(plain with { LowRank = "0.9" });
        var factors = untrained.Nodes.Where(n => n.Name.Contains("/low_rank_", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(factors);
        foreach (var node in factors)
            Assert.NotEqual(untrained[node.Inputs[1]].Constant!.Floats, graph[graph.Nodes.Single(n => n.Name == node.Name).Inputs[1]].Constant!.Floats);
        Assert.True(after * 2 <= before, $"{after:N0} bytes against {before:N0}");
    }

    /// <summary>LeNet-5 (two convolutions, two fully connected layers): fewer weight bytes and no more multiply-adds than float32 (the speed check).</summary>
    [Fact]
    public void LeNet5FactorizedAndFineTunedLosesAtMostHalfAPoint()
    {
        var (graph, plain, _, _, before, after) = FactorizedAndFineTuned("lenet5.onnx");
        long multiplyAddsBefore = MultiplyAdds.Total(ModelCompiler.Prepare(plain)), multiplyAddsAfter = MultiplyAdds.Total(graph);
        output.WriteLine($"{multiplyAddsBefore:N0} → {multiplyAddsAfter:N0} multiply-adds");
        Assert.Contains(graph.Nodes, n => n.Name.Contains("/low_rank_", StringComparison.Ordinal));
        Assert.True(after < before, $"{after:N0} bytes against {before:N0}");
        Assert.True(multiplyAddsAfter <= multiplyAddsBefore, $"{multiplyAddsAfter:N0} multiply-adds against {multiplyAddsBefore:N0}");
    }

    /// <summary>
    /// LeNet-300-100 with a size budget of a quarter: every layer pays at rank 1, so the three factorized layers take at
    /// most a quarter of their 266,200 weights (66,550), and fine-tuning keeps it within half a point.
    /// </summary>
    [Fact]
    public void LeNet300AtAQuarterOfItsBytesLosesAtMostHalfAPoint()
    {
        var (graph, _, _, _, _, _) = FactorizedAndFineTuned("lenet300.onnx", "bytes:0.25");
        long weights = graph.Nodes.Where(n => n.Name.Contains("/low_rank_", StringComparison.Ordinal)).Sum(n => graph[n.Inputs[1]].Constant!.Count);
        Assert.Equal(6, graph.Nodes.Count(n => n.Name.Contains("/low_rank_", StringComparison.Ordinal)));
        Assert.True(weights <= 266_200 / 4, $"{weights:N0} weights in the factorized layers");
        Assert.True(weights > 266_200 / 4 - 1_084, $"{weights:N0} weights: a rank of the first layer (784 + 300) still fits");
    }
}
