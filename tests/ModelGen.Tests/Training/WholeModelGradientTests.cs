using System.IO.Compression;
using ModelGen.Compiler;
using ModelGen.Compiler.Data;
using ModelGen.Compiler.Training;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.Training;

/// <summary>
/// Whole models against PyTorch: the gradient of the mean cross-entropy of LeNet-5 and of the depthwise-separable
/// test CNN on the first 16 test digits, from our engine in float32, against the gradients that
/// Reference/make_gradients.py computed with PyTorch (committed beside it).
/// </summary>
public class WholeModelGradientTests
{
    const int Batch = 16;

    static string Reference(string file) => Path.Combine(TestData.Root, "tests", "ModelGen.Tests", "Training", "Reference", file);

    [Theory]
    [InlineData("lenet5")]
    [InlineData("dwsep")]
    public void MatchesPyTorch(string name)
    {
        string path = name == "lenet5" ? TestData.Mnist("lenet5.onnx") : Reference("dwsep.onnx");
        var graph = ModelCompiler.Import(path);
        var original = ModelCompiler.Import(path);
        Compiler.Normalize.Passes.Run(graph);
        var model = TrainableModel.Build(graph);

        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        var (labels, _) = TestData.ReadNpy(TestData.Mnist("test-labels.npy"));
        var x = new Tensor<float>([Batch, 1, 28, 28], images[..(Batch * 28 * 28)]);
        var pass = model.Forward(new Dictionary<string, Tensor<float>> { [graph.Inputs.Single()] = x });
        string output = graph.Outputs.Single();
        var (loss, dLogits) = MeanCrossEntropy(pass[output], [.. labels[..Batch].Select(v => (int)v)]);
        var grads = pass.Backward(new Dictionary<string, Tensor<float>> { [output] = dLogits });

        var expected = ReadNpz(Reference(name + "-gradients.npz"));
        Assert.Equal(expected["loss"][0], loss, 1e-4f * expected["loss"][0]);
        // Normalization rewrites Gemm as Dense with new constants (W [N, K], here the same layout as PyTorch's
        // Linear); each node keeps its name, so a parameter's ONNX initializer is the original node's input.
        var onnxName = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            var before = original.Nodes.Single(n => n.Name == node.Name);
            for (int i = 1; i < node.Inputs.Count; i++) onnxName[node.Inputs[i]] = before.Inputs[i];
        }
        Assert.Equal(expected.Keys.Where(k => k != "loss").Order(), model.Parameters.Select(p => onnxName[p.Name]).Order());
        foreach (var p in model.Parameters)
        {
            var torch = expected[onnxName[p.Name]];
            var ours = grads[p.Name].Data;
            Assert.Equal(torch.Length, ours.Length);
            // Within 1e-4 of the tensor's largest gradient: an element's own magnitude can be tiny where terms cancel.
            float scale = torch.Max(MathF.Abs), worst = 0;
            for (int i = 0; i < ours.Length; i++) worst = MathF.Max(worst, MathF.Abs(ours[i] - torch[i]));
            Assert.True(worst <= 1e-4f * scale, $"{onnxName[p.Name]}: largest difference {worst:G3} against PyTorch, {worst / scale:G3} of its largest gradient {scale:G3}");
        }
    }

    /// <summary>The mean cross-entropy of logits [batch, classes] on labels, and its gradient (softmax − one-hot) / batch.</summary>
    static (float Loss, Tensor<float> Gradient) MeanCrossEntropy(Tensor<float> logits, int[] labels)
    {
        int batch = logits.Shape[0], classes = logits.Shape[1];
        var gradient = new Tensor<float>(logits.Shape);
        double loss = 0;
        for (int s = 0; s < batch; s++)
        {
            var row = logits.Data.AsSpan(s * classes, classes);
            double max = row.ToArray().Max(), sum = 0;
            foreach (var v in row) sum += Math.Exp(v - max);
            loss += Math.Log(sum) + max - row[labels[s]];
            for (int c = 0; c < classes; c++)
                gradient.Data[s * classes + c] = (float)((Math.Exp(row[c] - max) / sum - (c == labels[s] ? 1 : 0)) / batch);
        }
        return ((float)(loss / batch), gradient);
    }

    static Dictionary<string, float[]> ReadNpz(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        var arrays = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var entry in zip.Entries)
        {
            using var stream = entry.Open();
            using var bytes = new MemoryStream();
            stream.CopyTo(bytes);
            arrays[Path.GetFileNameWithoutExtension(entry.FullName)] = NpyReader.Read(bytes.ToArray(), entry.FullName).Data;
        }
        return arrays;
    }
}
