using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using ModelGen.Artifact;
using ModelGen.Cli.Bench;
using ModelGen.Compiler;
using ModelGen.Tests.Support;

// dotnet run -c Release --project tests/ModelGen.Benchmarks                   BenchmarkDotNet, every model
// dotnet run -c Release --project tests/ModelGen.Benchmarks -- --filter '*lenet5*'
// dotnet run -c Release --project tests/ModelGen.Benchmarks -- tables         the `modelgen bench` table of each model
// dotnet run -c Release --project tests/ModelGen.Benchmarks -- models <dir>   writes the synthetic models (for modelgen bench)
// dotnet run -c Release --project tests/ModelGen.Benchmarks -- suite [--seconds S] [--only NAME] [--shared DIR]
//     every model (and the third-party models of DIR, default ../shared/data/models) at each SIMD level: one table
// dotnet run -c Release --project tests/ModelGen.Benchmarks -- train [lenet5] [lenet300] [--no-pytorch]
//     one training epoch (8,000 digits, batch 64, Adam), ours beside PyTorch's (pytorch_epoch.py) with as many threads
// dotnet run -c Release --project tests/ModelGen.Benchmarks -- prune [name…]
//     issue 23's pruning recipes: accuracy on the test digits, weight bytes, multiply-adds, latency beside dense float32
// dotnet run -c Release --project tests/ModelGen.Benchmarks -- compose [name…]
//     issue 24's recipes (pruning, weight sharing, low rank, composed), in the same table as prune's
// dotnet run -c Release --project tests/ModelGen.Benchmarks -- distill [name…] [--epochs N]
//     issue 25's MLP student of LeNet-5: labels alone, labels and teacher, label-free; beside the teacher's code
// dotnet run -c Release --project tests/ModelGen.Benchmarks -- sparse-conv
//     sparse convolution kernels against dense, whole models and single layers at 20% to 90% pruned
if (args.Length > 0 && args[0] == "sparse-conv")
{
    SparseConvBench.Run();
    return;
}
if (args.Length > 0 && args[0] == "prune")
{
    PruneBenchmark.Run(args);
    return;
}
if (args.Length > 0 && args[0] == "distill")
{
    DistillBenchmark.Run(args);
    return;
}
if (args.Length > 0 && args[0] == "compose")
{
    CompositionBenchmark.Run(args);
    return;
}
if (args.Length > 0 && args[0] == "train")
{
    TrainBenchmark.Run(args);
    return;
}
if (args.Length > 0 && args[0] == "suite")
{
    Suite.Run();
    return;
}
if (args.Length > 0 && args[0] == "suite-level")
{
    Suite.RunLevel(args);
    return;
}
if (args.Length > 0 && args[0] == "models")
{
    string dir = args.Length > 1 ? args[1] : ".";
    Directory.CreateDirectory(dir);
    foreach (var (name, path) in BenchModels.All) File.Copy(path, Path.Combine(dir, name + ".onnx"), overwrite: true);
    Console.WriteLine($"wrote {string.Join(", ", BenchModels.All.Select(m => m.Name + ".onnx"))} to {Path.GetFullPath(dir)}");
    return;
}
if (args.Length > 0 && args[0] == "tables")
{
    foreach (var (name, path) in BenchModels.All)
    {
        string? data = name.StartsWith("lenet", StringComparison.Ordinal) || name == "dwsep" ? TestData.Mnist("test-images.npy") : null;
        Console.WriteLine(BenchCommand.Run(new BenchCommand.BenchOptions(path, data, 1, 1, "auto", 3, 1000)).Format());
    }
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(InferenceBenchmarks).Assembly).Run(args);

/// <summary>The models benchmarked: the two MNIST models of the repository, a depthwise-separable CNN and a keyword-spotting CNN.</summary>
public static class BenchModels
{
    public static IReadOnlyList<(string Name, string Path)> All { get; } =
    [
        ("lenet5", TestData.Mnist("lenet5.onnx")),
        ("lenet300", TestData.Mnist("lenet300.onnx")),
        ("dwsep", SyntheticModels.DepthwiseSeparableCnn().Save("dwsep.onnx")),
        ("kws", SyntheticModels.KeywordSpottingCnn().Save("kws.onnx")),
    ];

    public static string Path(string name) => All.Single(m => m.Name == name).Path;
}

/// <summary>One inference at batch 1, one thread: ONNX Runtime (baseline) against the generated class, on the same input.</summary>
[InProcess]
[MemoryDiagnoser]
public class InferenceBenchmarks
{
    [Params("lenet5", "lenet300", "dwsep")]
    public string Model { get; set; } = "lenet5";

    InProcessModel _ours = null!;
    OnnxRuntimeModel _ort = null!;
    object[] _inputs = [], _outputs = [];

    [GlobalSetup]
    public void Setup()
    {
        string path = BenchModels.Path(Model);
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "BenchModel", Namespace = "Benchmarks" });
        _ours = InProcessModel.Load(ArtifactText.Read(ArtifactText.Write(artifact)));
        var input = artifact.Tensors[artifact.Inputs[0].Tensor];
        var output = artifact.Tensors[artifact.Outputs[0].Tensor];
        var images = TestData.ReadNpy(TestData.Mnist("test-images.npy")).Data;
        _inputs = [images[..(int)input.ElementCount]];
        _outputs = [new float[output.ElementCount]];
        _ort = new OnnxRuntimeModel(path, [(artifact.Inputs[0].Name, (Array)_inputs[0], input.Shape)], [(artifact.Outputs[0].Name, new float[output.ElementCount], output.Shape)]);
    }

    [Benchmark(Baseline = true)]
    public void OnnxRuntime() => _ort.Run();

    [Benchmark]
    public void ModelGen() => _ours.Run(_inputs, _outputs);

    [GlobalCleanup]
    public void Cleanup() => _ort.Dispose();
}
