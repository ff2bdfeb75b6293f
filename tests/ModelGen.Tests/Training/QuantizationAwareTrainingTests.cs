using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Compiler.Training;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Training;

public class QuantizationAwareTrainingTests
{
    /// <summary>
    /// The forward pass of quantization-aware training must compute what the quantized model computes: the
    /// evaluator on the graph the compression pass makes (round to nearest without calibration data) is the oracle.
    /// </summary>
    [Theory]
    [InlineData("int4-weights")]
    [InlineData("int8-weights")]
    public void TheFakeQuantizedForwardIsTheQuantizedModel(string compression)
    {
        var options = new CompileOptions { ModelPath = TestData.Mnist("lenet300.onnx"), Compression = compression };
        var graph = ModelCompiler.Normalized(options);
        var model = TrainableModel.Build(graph);
        var layers = QuantizationAwareTraining.Attach(model, CompressionPlan.Parse(options));
        Assert.Equal(3, layers.Count);

        var quantized = ModelCompiler.Prepare(options);
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        const int batch = 5;
        var input = Tensor<float>.From([batch, 1, 28, 28], images.AsSpan(0, batch * 784));
        var ours = model.Forward(new Dictionary<string, Tensor<float>> { [graph.Inputs[0]] = input })[graph.Outputs[0]].Data;
        var plain = TrainableModel.Build(graph).Forward(new Dictionary<string, Tensor<float>> { [graph.Inputs[0]] = input })[graph.Outputs[0]].Data;
        for (int s = 0; s < batch; s++)
        {
            var expected = ReferenceEvaluator.Run(quantized, new Dictionary<string, TensorData> { [graph.Inputs[0]] = new([1, 1, 28, 28], images[(s * 784)..((s + 1) * 784)]) })[graph.Outputs[0]].Floats;
            Tolerance.AssertClose(expected, ours.AsSpan(s * 10, 10), $"sample {s}", relative: 1e-4, absolute: 1e-4);
        }
        // And the rounding is really on: the float32 model's outputs differ from it.
        Assert.True(ours.Zip(plain).Max(p => Math.Abs(p.First - p.Second)) > 1e-3);
    }

    [Fact]
    public void RoundTripRoundsEachRowToItsOwnGrid()
    {
        // Row 0: scale 0.875 / 7 = 0.125 exactly; −2.5 and 0.5 steps round half to even. Row 1 is all zeros; row 2 has its own scale.
        float[] w = [0.875f, -0.3125f, 0.0625f, 0f, 0f, 0f, 7f, 3.4f, -1f];
        var r = QuantizationAwareTraining.RoundTrip(w, 3, 3, 7);
        Assert.Equal([0.875f, -0.25f, 0f, 0f, 0f, 0f, 7f, 3f, -1f], r);
    }
}
