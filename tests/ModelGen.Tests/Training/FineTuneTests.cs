using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Training;

/// <summary>
/// Fine-tuning in the compile (FineTune): quantization-aware training against the labels of the 2,000 test digits
/// (the oracle: accuracy on data the training never saw), and the options' checks.
/// </summary>
public class FineTuneTests(ITestOutputHelper output)
{
    static CompileOptions Options(string model, string compression, bool fineTune, int epochs = 3) => new()
    {
        ModelPath = TestData.Mnist(model), Compression = compression, FineTune = fineTune, Epochs = epochs,
        TrainingDataPath = fineTune ? TestData.Mnist("train-images-u8.npy") : null,
        TrainingLabelsPath = fineTune ? TestData.Mnist("train-labels.npy") : null,
        CalibrationUint8Scale = 255,
        CalibrationPath = compression == "int8" ? TestData.Mnist("calibration-256.npy") : null,
    };

    /// <summary>Top-1 accuracy of a prepared graph on the 2,000 test digits, by the reference evaluator.</summary>
    static double TestAccuracy(Graph graph)
    {
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        var (labels, _) = TestData.ReadNpy(TestData.Mnist("test-labels.npy"));
        int correct = 0;
        for (int s = 0; s < labels.Length; s++)
        {
            var scores = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { [graph.Inputs[0]] = new([1, 1, 28, 28], images[(s * 784)..((s + 1) * 784)]) })[graph.Outputs[0]].Floats;
            if (Tolerance.ArgMax(scores) == (int)labels[s]) correct++;
        }
        return (double)correct / labels.Length;
    }

    /// <summary>Issue 22's bar: int4 weights fine-tuned lose at most 0.3 points against float32, and keep more than int4 without fine-tuning.</summary>
    [Theory]
    [InlineData("lenet300.onnx")]
    [InlineData("lenet5.onnx")]
    public void Int4WeightsFineTunedLoseAtMostAThirdOfAPoint(string model)
    {
        double float32 = TestAccuracy(ModelCompiler.Prepare(Options(model, "none", false)));
        double plain = TestAccuracy(ModelCompiler.Prepare(Options(model, "int4-weights", false)));
        var tuned = ModelCompiler.Prepare(Options(model, "int4-weights", true));
        double fineTuned = TestAccuracy(tuned);
        output.WriteLine($"float32 {float32:P2}, int4 {plain:P2}, int4 fine-tuned {fineTuned:P2}");
        Assert.Contains(tuned.CompressionStages, s => s.Name == "fine-tuned" && s.Training is { Epochs.Count: > 0 });
        Assert.True(fineTuned >= float32 - 0.003, $"fine-tuned int4 {fineTuned:P2} against float32 {float32:P2}");
        Assert.True(fineTuned >= plain, $"fine-tuned int4 {fineTuned:P2} against int4 without fine-tuning {plain:P2}");
    }

    [Fact]
    public void Int8FineTunedAtLeastMatchesInt8()
    {
        double plain = TestAccuracy(ModelCompiler.Prepare(Options("lenet5.onnx", "int8", false)));
        double fineTuned = TestAccuracy(ModelCompiler.Prepare(Options("lenet5.onnx", "int8", true)));
        output.WriteLine($"int8 {plain:P2}, int8 fine-tuned {fineTuned:P2}");
        Assert.True(fineTuned >= plain, $"fine-tuned int8 {fineTuned:P2} against int8 without fine-tuning {plain:P2}");
    }
}
