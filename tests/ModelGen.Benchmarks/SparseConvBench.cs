using System.Diagnostics;
using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Tests.Support;

using ModelGen.Tests.Pruning;

/// <summary>
/// The measurements behind issue 23's "2:4 kernels faster than dense" and SparseConvStorage.MaxKeptShare
/// (docs/implementation-notes.md, Sparse convolutions): LeNet-5 and the depthwise-separable test CNN, dense float32 and
/// with their convolutions pruned 2:4, 50% and 90%; then single convolutions of LeNet-5's conv2 and the CNN's pw2
/// shapes forced sparse at 20% to 90% pruned, against dense: where sparse starts to pay. All timed side by side at
/// batch 1 in one process, best of many interleaved rounds
/// (`dotnet run -c Release --project tests/ModelGen.Benchmarks -- sparse-conv`).
/// </summary>
public static class SparseConvBench
{
    public static void Run()
    {
        string cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "?";
        Console.WriteLine($"batch 1, best of interleaved rounds, {cpu}, {Environment.ProcessorCount} cores");
        string dwsep = Path.Combine(TestData.Root, "tests", "ModelGen.Tests", "Training", "Reference", "dwsep.onnx");
        var models = new List<(string Name, ModelArtifact Artifact)>();
        foreach (var (model, path) in new[] { ("LeNet5", TestData.Mnist("lenet5.onnx")), ("Dwsep", dwsep) })
        {
            models.Add(($"{model} dense", ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = model + "Dense", Namespace = "Sparse.Bench" })));
            foreach (var pruning in new[] { "2:4", "0.5", "0.9" })
                models.Add(($"{model} {pruning}", SparseConvModels.Compile(SparseConvModels.PrunedCopy(path, pruning), model + "P" + Tag(pruning)).Artifact));
        }
        Time(models, 784);
        // Single layers: [in channels, out channels, kernel, input size] of LeNet-5's conv2 and the CNN's pw2.
        var layers = new List<(string Name, ModelArtifact Artifact)>();
        foreach (var (name, c, m, k, size) in new[] { ("conv2 20→50 5x5 12x12", 20, 50, 5, 12), ("pw2 32→64 1x1 14x14", 32, 64, 1, 14) })
        {
            var weights = OnnxBuilder.Random(m * c * k * k, 5);
            string Layer(float[] w, string file) => new OnnxBuilder(13, "layer").Input("x", 1, c, size, size).Initializer("w", [m, c, k, k], w)
                .Node("Conv", ["x", "w"], ["y"]).Output("y").Save(file);
            string tag = name.Split(' ')[0];
            layers.Add(($"{tag} dense", ModelCompiler.Compile(new CompileOptions { ModelPath = Layer(weights, "dense.onnx"), ClassName = tag + "Dense", Namespace = "Sparse.Bench" })));
            foreach (var pruning in new[] { "2:4", "0.2", "0.3", "0.4", "0.5", "0.7", "0.9" })
                layers.Add(($"{tag} {pruning}", SparseConvModels.Compile(Layer(SparseConvModels.Prune(weights, m, pruning), "p.onnx"), tag + "P" + Tag(pruning), maxKeptShare: 1).Artifact));
        }
        Time(layers, 0);
    }

    static string Tag(string pruning) => pruning.Replace(":", "of").Replace(".", "");

    static void Time(List<(string Name, ModelArtifact Artifact)> rows, int inputLength)
    {
        var models = GeneratedModels.Build([.. rows.Select(r => r.Artifact)]);
        var best = rows.ToDictionary(r => r.Name, _ => double.MaxValue);
        const int Runs = 64;
        var (digits, _) = TestData.ReadNpy(TestData.Mnist("calibration-256.npy"));
        var buffers = rows.ToDictionary(r => r.Name, r =>
        {
            long inLength = r.Artifact.Tensors[r.Artifact.Inputs[0].Tensor].ElementCount, outLength = r.Artifact.Tensors[r.Artifact.Outputs[0].Tensor].ElementCount;
            var input = inputLength > 0 ? digits.AsSpan(0, (int)inLength * Runs).ToArray() : OnnxBuilder.Random((int)inLength * Runs, 3);
            return (input, new float[outLength * Runs]);
        });
        for (int round = 0; round < 60; round++)
            foreach (var (name, artifact) in rows)
            {
                var clock = Stopwatch.StartNew();
                models.RunMany(artifact, buffers[name].input, buffers[name].Item2, Runs);
                if (round >= 5) best[name] = Math.Min(best[name], clock.Elapsed.TotalMicroseconds / Runs);
            }
        foreach (var (name, _) in rows)
            Console.WriteLine($"{name,-16} {best[name],8:F1} µs   ({best[name.Split(' ')[0] + " dense"] / best[name]:F2}x dense)");
    }
}
