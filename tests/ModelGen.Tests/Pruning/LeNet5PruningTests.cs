using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Training;
using ModelGen.Tests.Support;
using ModelGen.Tests.Training;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Pruning;

/// <summary>Issue 23's bars on LeNet-5, measured on the 2,000 test digits (data the pruning never saw).</summary>
public class LeNet5PruningTests(ITestOutputHelper output)
{
    static CompileOptions Options(string model = "lenet5.onnx") => new()
    {
        ModelPath = TestData.Mnist(model), CalibrationUint8Scale = 255,
    };

    static string Calibration => TestData.Mnist("calibration-256.npy");

    /// <summary>Accuracy of the graph's float32 arithmetic: its sparse storage (how the kernels read the same weights) set aside.</summary>
    static double Accuracy(Graph graph)
    {
        var floats = graph.Clone();
        foreach (var node in floats.Nodes)
            if (node.Form is SparseConvForm or SparseDenseForm { Int8: null }) node.Form = LayerForm.Float32;
        return MnistTraining.TestAccuracy(TrainableModel.Build(floats));
    }

    static double ZeroShare(Graph graph)
    {
        var weights = MagnitudePruning.PrunableWeights(graph).SelectMany(w => graph[w.Weight].Constant!.Floats).ToArray();
        return weights.Count(v => v == 0) / (double)weights.Length;
    }

    /// <summary>One-shot 50% without training data, each layer refit on the 256 calibration digits: at most 1 point lost.</summary>
    [Fact]
    public void OneShotHalfWithRefitLosesAtMostOnePoint()
    {
        double float32 = Accuracy(ModelCompiler.Prepare(Options()));
        var pruned = ModelCompiler.Prepare(Options() with { Pruning = 0.5, CalibrationPath = Calibration });
        double accuracy = Accuracy(pruned);
        output.WriteLine($"float32 {float32:P2}, one-shot 50% with refit {accuracy:P2}");
        Assert.Contains(pruned.CompressionStages, s => s.Name == "pruned 50% (one-shot, kept weights refit on the calibration data)");
        Assert.InRange(ZeroShare(pruned), 0.5, 0.5001);
        Assert.True(accuracy >= float32 - 0.01, $"one-shot 50% {accuracy:P2} against float32 {float32:P2}");
    }

    /// <summary>2:4 reached in two steps (3:4, 2:4) while fine-tuning on the 8,000 training digits: at most 0.3 points lost.</summary>
    [Fact]
    public void TwoOfFourWhileFineTuningLosesAtMostAThirdOfAPoint()
    {
        double float32 = Accuracy(ModelCompiler.Prepare(Options()));
        var pruned = ModelCompiler.Prepare(Options() with
        {
            PruningKind = "2:4", FineTune = true, Epochs = 4, LearningRate = 1e-3f,
            TrainingDataPath = TestData.Mnist("train-images-u8.npy"), TrainingLabelsPath = TestData.Mnist("train-labels.npy"),
        });
        double accuracy = Accuracy(pruned);
        output.WriteLine($"float32 {float32:P2}, 2:4 fine-tuned {accuracy:P2}");
        foreach (var layer in PrunableLayer.Of(pruned))
            Assert.NotNull(SparseWeights.NOfM(pruned[layer.Weight].Constant!.Floats, layer.Rows, layer.Columns, 2, 4));
        Assert.True(accuracy >= float32 - 0.003, $"2:4 fine-tuned {accuracy:P2} against float32 {float32:P2}");
    }

    /// <summary>The report of a model pruned but not quantized says so, and gives each layer's kept share (LeNet-300-100: every layer takes 2:4 whole).</summary>
    [Fact]
    public void TheReportOfAPrunedModelSaysHowMuchIsPrunedAndEachLayersKeptShare()
    {
        var options = Options("lenet300.onnx") with { PruningKind = "2:4", CalibrationPath = Calibration };
        var compiled = ModelCompiler.Compile(options, null, out var prepared);
        var report = CompressionReport.Create(options, compiled, Calibration, null, null, prepared);
        Assert.StartsWith("lenet300.onnx: pruned 2:4, 50.0% of the convolution and fully connected weights zero: weights", report.Summary());
        Assert.Equal(3, report.Layers.Count(l => l.KeptShare is not null));
        Assert.All(report.Layers, l => Assert.Equal(0.5, l.KeptShare));
        Assert.Contains("| weights kept |", report.Markdown());
    }
}
