using System.Diagnostics;
using System.Globalization;
using ModelGen.Artifact;
using ModelGen.Cli.Bench;
using ModelGen.Compiler;
using Compiler = ModelGen.Compiler;
using ModelGen.Tests.Support;

/// <summary>
/// Issue 23's figures in one table: each pruning recipe of its Done-when list compiled as a build would, then the
/// emitted code run on the 2,000 test digits (accuracy against the labels), its embedded weight bytes and
/// multiply-adds, and its latency at batch 1 beside our dense float32 model of the same network, timed in the
/// same interleaved rounds. `prune [name…]` runs the recipes whose names contain one of the names.
/// </summary>
public static class PruneBenchmark
{
    internal sealed record Recipe(string Name, string Model, Func<CompileOptions, CompileOptions> Options);

    internal static CompileOptions FineTuned(CompileOptions o, int epochs, float learningRate) => o with
    {
        FineTune = true, Epochs = epochs, LearningRate = learningRate,
        TrainingDataPath = TestData.Mnist("train-images-u8.npy"), TrainingLabelsPath = TestData.Mnist("train-labels.npy"),
    };

    static readonly Recipe[] Recipes =
    [
        new("lenet300 unstructured 92% + fine-tuning", "lenet300.onnx", o => FineTuned(o with { Pruning = 0.92 }, 12, 1e-3f)),
        new("lenet300 unstructured 92% + fine-tuning, int8 weights", "lenet300.onnx", o => FineTuned(o with { Pruning = 0.92, Compression = "int8-weights" }, 12, 1e-3f)),
        new("lenet300 unstructured 93% + fine-tuning, int8 weights", "lenet300.onnx", o => FineTuned(o with { Pruning = 0.93, Compression = "int8-weights" }, 12, 1e-3f)),
        new("lenet300 unstructured 95% + fine-tuning", "lenet300.onnx", o => FineTuned(o with { Pruning = 0.95 }, 12, 1e-3f)),
        new("lenet5 channels 50% + fine-tuning", "lenet5.onnx", o => FineTuned(o with { Pruning = 0.5, PruningKind = "channels" }, 6, 1e-3f)),
        new("lenet5 2:4 + fine-tuning", "lenet5.onnx", o => FineTuned(o with { PruningKind = "2:4" }, 4, 1e-3f)),
        new("lenet5 one-shot 50%", "lenet5.onnx", o => o with { Pruning = 0.5 }),
        new("lenet5 one-shot 50%, refit on calibration", "lenet5.onnx", o => o with { Pruning = 0.5, CalibrationPath = TestData.Mnist("calibration-256.npy") }),
        new("dwsep channels 50% + fine-tuning", DwsepTrained, o => FineTuned(o with { Pruning = 0.5, PruningKind = "channels" }, 6, 1e-3f)),
        new("dwsep 2:4 + fine-tuning", DwsepTrained, o => FineTuned(o with { PruningKind = "2:4" }, 4, 1e-3f)),
    ];

    /// <summary>
    /// The depthwise-separable test CNN has random weights; to measure what pruning costs in accuracy it is first
    /// trained here on the 8,000 training digits (6 epochs from its initial weights, deterministic), written out with
    /// --emit-onnx's exporter, and that trained model is the dense baseline.
    /// </summary>
    const string DwsepTrained = "dwsep-trained";

    static string ModelPath(string model)
    {
        if (model != DwsepTrained) return TestData.Mnist(model);
        string path = Path.Combine(Path.GetTempPath(), "modelgen-prune-bench", "dwsep-trained.onnx");
        if (File.Exists(path)) return path;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var trained = ModelCompiler.Prepare(FineTuned(new CompileOptions { ModelPath = BenchModels.Path("dwsep"), CalibrationUint8Scale = 255 }, 6, 1e-3f));
        Compiler.Compress.OnnxExport.Write(trained, path);
        return path;
    }

    public static void Run(string[] args) => Run(args, Recipes);

    /// <summary>Runs the <paramref name="recipes"/> whose names contain one of args[1..] (all when none is given) into one table.</summary>
    internal static void Run(string[] args, IReadOnlyList<Recipe> recipes)
    {
        string[] only = args.Skip(1).ToArray();
        Console.WriteLine($"accuracy on the 2,000 test digits; latency at batch 1, one thread, medians of interleaved rounds; {Environment.ProcessorCount} processors, .NET {Environment.Version}");
        Console.WriteLine($"SIMD: Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}, Vector256 {System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated}, FMA {System.Runtime.Intrinsics.X86.Fma.IsSupported}");
        Console.WriteLine();
        Console.WriteLine("| recipe | accuracy | dense float32 | weight bytes | of float32 | multiply-adds | of dense | latency | dense float32 | speed-up | compile |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var dense = new Dictionary<string, (InProcessModel Model, double Accuracy, long Bytes, long MultiplyAdds)>(StringComparer.Ordinal);
        foreach (var recipe in recipes.Where(r => only.Length == 0 || only.Any(n => r.Name.Contains(n, StringComparison.OrdinalIgnoreCase))))
        {
            var baseOptions = new CompileOptions { ModelPath = ModelPath(recipe.Model), ClassName = "PruneBench", Namespace = "ModelGenBench", CalibrationUint8Scale = 255 };
            if (!dense.TryGetValue(recipe.Model, out var plain))
            {
                var artifact = ModelCompiler.Compile(baseOptions);
                var model = Load(artifact);
                dense[recipe.Model] = plain = (model, Accuracy(model), WeightBytes(artifact), BenchCommand.MultiplyAdds(artifact));
            }
            var clock = Stopwatch.StartNew();
            var compiled = ModelCompiler.Compile(recipe.Options(baseOptions));
            double compileSeconds = clock.Elapsed.TotalSeconds;
            var ours = Load(compiled);
            double accuracy = Accuracy(ours);
            long bytes = WeightBytes(compiled), macs = BenchCommand.MultiplyAdds(compiled);
            var (oursSeconds, plainSeconds) = Race(ours, plain.Model);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {recipe.Name} | {accuracy * 100:F2}% | {plain.Accuracy * 100:F2}% | {bytes:N0} | 1/{(double)plain.Bytes / bytes:F1} | {macs:N0} | {100.0 * macs / plain.MultiplyAdds:F0}% | {oursSeconds * 1e6:F1} µs | {plainSeconds * 1e6:F1} µs | {plainSeconds / oursSeconds:F2}x | {compileSeconds:F0} s |"));
        }
    }

    static InProcessModel Load(ModelArtifact artifact) => InProcessModel.Load(ArtifactText.Read(ArtifactText.Write(artifact)));

    /// <summary>The weights the emitted class embeds (each array once).</summary>
    static long WeightBytes(ModelArtifact artifact) =>
        artifact.Tensors.Where(t => t.Storage == TensorStorage.Weight && t.Data is not null).Select(t => t.Data!).Distinct(ReferenceEqualityComparer.Instance).Sum(d => (long)((byte[])d!).Length);

    /// <summary>Top-1 accuracy of the emitted code on the 2,000 test digits.</summary>
    static double Accuracy(InProcessModel model)
    {
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        var (labels, _) = TestData.ReadNpy(TestData.Mnist("test-labels.npy"));
        var input = new float[784];
        var scores = new float[10];
        int correct = 0;
        for (int s = 0; s < 2000; s++)
        {
            Array.Copy(images, s * 784, input, 0, 784);
            model.Run([input], [scores]);
            if (Array.IndexOf(scores, scores.Max()) == (int)labels[s]) correct++;
        }
        return correct / 2000.0;
    }

    /// <summary>Both models' median latency over interleaved rounds of about 50 ms each, after a warm-up.</summary>
    static (double Ours, double Plain) Race(InProcessModel ours, InProcessModel plain)
    {
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        object[] inputs = [images[..784]], outputs = [new float[10]];
        int Count(InProcessModel m)
        {
            long start = Stopwatch.GetTimestamp();
            int n = 0;
            while (Stopwatch.GetElapsedTime(start).TotalSeconds < 0.5) { m.Ticks(inputs, outputs, 1); n++; }
            return Math.Max(1, n / 10);
        }
        int oursCount = Count(ours), plainCount = Count(plain);
        var oursTimes = new List<double>();
        var plainTimes = new List<double>();
        for (int r = 0; r < 40; r++)
        {
            oursTimes.Add((double)ours.Ticks(inputs, outputs, oursCount) / Stopwatch.Frequency / oursCount);
            plainTimes.Add((double)plain.Ticks(inputs, outputs, plainCount) / Stopwatch.Frequency / plainCount);
        }
        return (Median(oursTimes), Median(plainTimes));
    }

    static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}
