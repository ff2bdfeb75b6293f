using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Training;
using ModelGen.Tests.Training;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Pruning;

/// <summary>Structured pruning of whole models: LeNet-5 (issue 23's bar) and the depthwise-separable test CNN.</summary>
public class ChannelPruningModelTests(ITestOutputHelper output)
{
    static string ModelPath(string model) => model == "dwsep.onnx"
        ? Path.Combine(TestData.Root, "tests", "ModelGen.Tests", "Training", "Reference", model) : TestData.Mnist(model);

    static CompileOptions Options(string model, double? pruning) =>
        new() { ModelPath = ModelPath(model), Pruning = pruning, PruningKind = pruning is null ? null : "channels", ClassName = "Pruned", Namespace = "ChannelPruning" };

    /// <summary>
    /// Half the channels of every layer but the last gone: each layer keeps ⌈half⌉ of its filters or neurons, the last
    /// keeps all, the multiply-adds fall to at most a third (both ends of a layer halve, so about a quarter), and the
    /// compiled pruned model computes what the evaluator does on the pruned graph.
    /// </summary>
    [Theory]
    [InlineData("lenet5.onnx", 1 / 3.0)]
    [InlineData("dwsep.onnx", 1 / 2.0)]
    public void HalfTheChannelsGoAndTheCompiledModelRuns(string model, double mostMultiplyAdds)
    {
        var original = ModelCompiler.Prepare(Options(model, null));
        var artifact = ModelCompiler.Compile(Options(model, 0.5), out var pruned);
        long before = MultiplyAdds.Total(original), after = MultiplyAdds.Total(pruned);
        output.WriteLine(pruned.CompressionStages[0].Name);
        output.WriteLine($"weight bytes {CompressionPipeline.WeightBytes(original):N0} → {CompressionPipeline.WeightBytes(pruned):N0}");
        foreach (var (node, macs) in MultiplyAdds.ByLayer(pruned))
            output.WriteLine($"{node.Name}: {MultiplyAdds.ByLayer(original).Single(l => l.Node.Name == node.Name).MultiplyAdds:N0} → {macs:N0}");
        var layers = original.Nodes.Where(n => n.OpType is "Conv" or "Dense" && n.Int("group", 1) == 1).Select(n => n.Name).ToList();
        foreach (var name in layers)
        {
            int filters = original[original.Nodes.Single(n => n.Name == name).Inputs[1]].Constant!.Shape[0];
            int kept = pruned[pruned.Nodes.Single(n => n.Name == name).Inputs[1]].Constant!.Shape[0];
            bool last = pruned.Nodes.Single(n => n.Name == name).Outputs[0] == pruned.Outputs[0];
            Assert.Equal(last ? filters : filters - filters / 2, kept);
        }
        Assert.True(after <= before * mostMultiplyAdds, $"multiply-adds {before:N0} → {after:N0}");

        var shape = pruned[pruned.Inputs[0]].Shape!;
        var models = GeneratedModels.Build(artifact);
        for (int sample = 0; sample < 4; sample++)
        {
            var input = OnnxBuilder.Random(shape.Aggregate(1, (a, b) => a * b), 50 + sample);
            var expected = ReferenceEvaluator.Run(pruned, new Dictionary<string, TensorData> { [pruned.Inputs[0]] = new(shape, input) })[pruned.Outputs[0]].Floats;
            var generated = new float[expected.Length];
            models.Run(artifact, [input], [generated]);
            Tolerance.AssertClose(expected, generated, $"{model} pruned, compiled against the evaluator, sample {sample}");
        }
    }

    /// <summary>Issue 23's bar for LeNet-5: half its filters and half of f1's neurons gone, then fine-tuned on the 8,000 training digits, at most half a point lost.</summary>
    [Fact]
    public void LeNet5HalfTheChannelsFineTunedLosesAtMostHalfAPoint()
    {
        double float32 = FineTuneTests.TestAccuracy(ModelCompiler.Prepare(Options("lenet5.onnx", null)));
        double oneShot = FineTuneTests.TestAccuracy(ModelCompiler.Prepare(Options("lenet5.onnx", 0.5)));
        var options = Options("lenet5.onnx", 0.5) with
        {
            FineTune = true, Epochs = 12, LearningRate = 1e-3f, CalibrationUint8Scale = 255,
            TrainingDataPath = TestData.Mnist("train-images-u8.npy"), TrainingLabelsPath = TestData.Mnist("train-labels.npy"),
        };
        var tuned = ModelCompiler.Prepare(options);
        double accuracy = FineTuneTests.TestAccuracy(tuned);
        output.WriteLine($"float32 {float32:P2}, channels halved {oneShot:P2}, fine-tuned {accuracy:P2}");
        foreach (var stage in tuned.CompressionStages) output.WriteLine($"{stage.Name} {stage.Training?.Summary()}");
        Assert.Equal(["channels", "fine-tuned"], tuned.CompressionStages.Select(s => s.Name.Split(' ')[0]));
        Assert.True(accuracy >= float32 - 0.005, $"pruned and fine-tuned {accuracy:P2} against float32 {float32:P2}");
    }
}
