using System.Text;
using ModelGen.Compiler;
using ModelGen.Compiler.Data;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;

namespace ModelGen.Tests.Distillation;

/// <summary>Students of LeNet-5 written with the test ONNX writer, and slices of the MNIST digits as the files a build reads.</summary>
public static class Students
{
    /// <summary>
    /// MLP 784-100-10 (Flatten, Gemm, Relu, Gemm) with LeNet-5's contract: input 'image' [N, 1, 28, 28], output
    /// 'scores' (logits). Its own weights are uniform in ±1/√fan-in (PyTorch's default for a linear layer).
    /// </summary>
    public static OnnxBuilder Mlp(string input = "image", string output = "scores", int classes = 10, int seed = 7)
    {
        static float[] Scaled(float[] v, double fanIn) => [.. v.Select(x => (float)(x / Math.Sqrt(fanIn)))];
        return new OnnxBuilder()
            .Input(input, null, 1, 28, 28)
            .Initializer("fc1.weight", [100, 784], Scaled(OnnxBuilder.Random(100 * 784, seed), 784))
            .Initializer("fc1.bias", [100], Scaled(OnnxBuilder.Random(100, seed + 1), 784))
            .Initializer("fc2.weight", [classes, 100], Scaled(OnnxBuilder.Random(classes * 100, seed + 2), 100))
            .Initializer("fc2.bias", [classes], Scaled(OnnxBuilder.Random(classes, seed + 3), 100))
            .Node("Flatten", [input], ["flat"], ("axis", 1L))
            .Node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["hidden"], ("transB", 1L))
            .Node("Relu", ["hidden"], ["hidden.relu"])
            .Node("Gemm", ["hidden.relu", "fc2.weight", "fc2.bias"], [output], ("transB", 1L))
            .Output(output);
    }

    /// <summary>MLP parameters: 784·100 + 100 + 100·10 + 10.</summary>
    public const long MlpParameters = 784 * 100 + 100 + 100 * 10 + 10;

    /// <summary>Training digits first..first+count (float32 in 0..1) as a .npy, and their labels as another, in a fresh folder.</summary>
    public static (string Images, string Labels) TrainingSlice(int count, int first = 0) =>
        Slice(NpyReader.Read(TestData.Mnist("train-images-u8.npy"), 255).Data, NpyReader.Read(TestData.Mnist("train-labels.npy")).Data, first, count);

    /// <summary>Test digits first..first+count and their labels.</summary>
    public static (string Images, string Labels) TestSlice(int count, int first = 0) =>
        Slice(NpyReader.Read(TestData.Mnist("test-images.npy")).Data, NpyReader.Read(TestData.Mnist("test-labels.npy")).Data, first, count);

    static (string, string) Slice(float[] images, float[] labels, int first, int count)
    {
        string dir = Path.Combine(Path.GetTempPath(), "modelgen-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string imagesPath = Path.Combine(dir, "images.npy"), labelsPath = Path.Combine(dir, "labels.npy");
        var pixels = images.AsSpan(first * 784, count * 784).ToArray();
        WriteNpy(imagesPath, "<f4", $"({count}, 1, 28, 28)", MemoryMarshalBytes(pixels));
        var classes = labels.AsSpan(first, count).ToArray().Select(l => (long)l).ToArray();
        WriteNpy(labelsPath, "<i8", $"({count},)", MemoryMarshalBytes(classes));
        return (imagesPath, labelsPath);
    }

    static byte[] MemoryMarshalBytes<T>(T[] values) where T : unmanaged => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    /// <summary>NumPy format 1.0: magic, header length, a dict padded with spaces to 64 bytes and ending in '\n', the data.</summary>
    static void WriteNpy(string path, string descr, string shape, byte[] data)
    {
        string header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        header = header.PadRight((header.Length + 10 + 1 + 63) / 64 * 64 - 10 - 1) + "\n";
        using var file = File.Create(path);
        file.Write([0x93, .. "NUMPY"u8, 1, 0, (byte)header.Length, (byte)(header.Length >> 8)]);
        file.Write(Encoding.ASCII.GetBytes(header));
        file.Write(data);
    }

    /// <summary>Top-1 accuracy of a prepared graph on test digits first..first+count, by the reference evaluator.</summary>
    public static double TestAccuracy(Graph graph, int count, int first = 0)
    {
        var images = NpyReader.Read(TestData.Mnist("test-images.npy")).Data;
        var labels = NpyReader.Read(TestData.Mnist("test-labels.npy")).Data;
        int correct = 0;
        for (int s = first; s < first + count; s++)
        {
            var scores = ReferenceEvaluator.Run(graph, new Dictionary<string, TensorData> { [graph.Inputs[0]] = new([1, 1, 28, 28], images[(s * 784)..((s + 1) * 784)]) })[graph.Outputs[0]].Floats;
            if (Tolerance.ArgMax(scores) == (int)labels[s]) correct++;
        }
        return (double)correct / count;
    }

    /// <summary>Options distilling LeNet-5 into <paramref name="student"/> on <paramref name="data"/>, label-free unless labels are given.</summary>
    public static CompileOptions Options(string student, string data, string? labels = null, int epochs = 4, int seed = 1) => new()
    {
        ModelPath = TestData.Mnist("lenet5.onnx"), Student = student, TrainingDataPath = data, TrainingLabelsPath = labels, Epochs = epochs, Seed = seed,
    };
}
