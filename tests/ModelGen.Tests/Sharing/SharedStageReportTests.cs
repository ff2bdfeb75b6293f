using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Sharing;

/// <summary>
/// Deep Compression's pipeline as its tables show it (issue 24, item 6): pruned while fine-tuning, shared, codebooks
/// fine-tuned, each stage with its weight bytes and its accuracy in the compression report, and on the 2,000 test
/// digits through the reference evaluator.
/// </summary>
public class SharedStageReportTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("lenet300.onnx", 4, 6, 1e-3f)]
    [InlineData("lenet5.onnx", 5, 4, 1e-3f)]
    [InlineData("lenet300.onnx", 4, 6, 1e-4f)]
    public void TheReportGivesEachStagesAccuracyAndWeightBytes(string model, int bits, int epochs, float rate)
    {
        var options = SharedFineTuneTests.MnistOptions(model) with { Pruning = 0.92, FineTune = true, Epochs = epochs, LearningRate = rate, WeightSharing = bits };
        var prepared = ModelCompiler.Prepare(options, CompressionPlan.Parse(options) with { KeepStageGraphs = true });
        var artifact = ModelCompiler.Compile(options, prepared, out _);
        var report = CompressionReport.Create(options, artifact, TestData.Mnist("test-images.npy"), TestData.Mnist("test-labels.npy"), null, prepared);
        output.WriteLine(report.Markdown());

        double float32 = SharedFineTuneTests.EvaluatorAccuracy(ModelCompiler.Prepare(options.Original));
        output.WriteLine($"{model}, 2,000 test digits through the evaluator: float32 {float32:P2}");
        var accuracy = new Dictionary<string, double>();
        foreach (var stage in prepared.CompressionStages)
        {
            accuracy[stage.Name] = SharedFineTuneTests.EvaluatorAccuracy(stage.Snapshot ?? prepared);
            output.WriteLine($"  {stage.Name}: {accuracy[stage.Name]:P2}, weights {stage.WeightBytes:N0} B");
        }

        string shared = $"shared ({bits}-bit codebooks)";
        Assert.Equal(["fine-tuned", shared, "codebooks fine-tuned"], report.Stages.Select(s => s.Name).Take(3));
        foreach (var name in new[] { "fine-tuned", shared, "codebooks fine-tuned" })
        {
            var row = report.Stages.Single(s => s.Name == name);
            Assert.InRange(row.Figures!.Accuracy!.Value, 0.9, 1.0);
            Assert.Contains($"| {name} | {row.WeightBytes:N0} |", report.Markdown());
        }
        // Shared, the weights are each layer's packed codes and codebook, and the float32 biases.
        // Layers left float32 (convolutions) count 4 bytes a weight. The graph as the codebooks' fine-tuning left it (sparse storage may follow).
        var sharedGraph = prepared.CompressionStages.Single(s => s.Name == "codebooks fine-tuned").Snapshot ?? prepared;
        long expected = sharedGraph.Nodes.Where(n => n.HasInput(1) && sharedGraph[n.Inputs[1]].Constant is not null).Sum(n =>
            (n.Form is SharedWeightsForm f ? f.Weights.DenseBytes : sharedGraph[n.Inputs[1]].Constant!.Count * 4L) + (n.HasInput(2) ? sharedGraph[n.Inputs[2]].Constant!.Count * 4L : 0));
        Assert.Equal(expected, report.Stages.Single(s => s.Name == shared).WeightBytes);
        Assert.Equal(expected, report.Stages.Single(s => s.Name == "codebooks fine-tuned").WeightBytes);
        Assert.True(expected * 5 < report.Stages.Single(s => s.Name == "fine-tuned").WeightBytes);
        Assert.All(report.Layers.Where(l => l.Operator is not ("Add" or "Conv")), l => Assert.StartsWith($"shared weights: {bits}-bit codes", l.Precision));
        // A convolution shares only when pruned and stored sparse (its codebook kernel is the sparse one); else float32.
        Assert.All(report.Layers.Where(l => l.Operator == "Conv"), l => Assert.True(!l.Precision.Contains("shared weights") || l.Precision.Contains("stored sparse"), l.Precision));
        Assert.NotNull(report.Stages.Single(s => s.Name == "codebooks fine-tuned").Training);
        // The codebooks' fine-tuning recovers what sharing lost, and the pipeline ends near float32.
        Assert.True(accuracy["codebooks fine-tuned"] >= accuracy[shared], $"codebooks fine-tuned {accuracy["codebooks fine-tuned"]:P2}, shared {accuracy[shared]:P2}");
        Assert.True(accuracy["codebooks fine-tuned"] >= float32 - 0.01, $"codebooks fine-tuned {accuracy["codebooks fine-tuned"]:P2}, float32 {float32:P2}");
    }
}
