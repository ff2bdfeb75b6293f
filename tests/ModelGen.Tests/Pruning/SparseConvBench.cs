using System.Diagnostics;
using ModelGen.Compiler;
using ModelGen.Tests.Support;

namespace ModelGen.Tests.Pruning;

/// <summary>
/// The measurement of issue 23's "2:4 kernels faster than dense" (docs/implementation-notes.md, Sparse convolutions):
/// LeNet-5 and the depthwise-separable test CNN, dense float32 and with their convolutions pruned 2:4, 50% and 90%,
/// timed side by side at batch 1 in one process. A harness, not a test: it runs only with MODELGEN_SPARSE_BENCH=1
/// (`MODELGEN_SPARSE_BENCH=1 dotnet test tests/ModelGen.Tests -c Release --no-build --filter SparseConvBench
/// --logger "console;verbosity=detailed"`); `modelgen bench` takes no pruning options yet.
/// </summary>
public sealed class SparseConvBench(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void SparseAgainstDenseAtBatch1()
    {
        if (Environment.GetEnvironmentVariable("MODELGEN_SPARSE_BENCH") != "1") return;
        string dwsep = Path.Combine(TestData.Root, "tests", "ModelGen.Tests", "Training", "Reference", "dwsep.onnx");
        var rows = new List<(string Name, ModelGen.Artifact.ModelArtifact Artifact)>();
        foreach (var (model, path) in new[] { ("LeNet5", TestData.Mnist("lenet5.onnx")), ("Dwsep", dwsep) })
        {
            rows.Add(($"{model} dense", ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = model + "Dense", Namespace = "Sparse.Bench" })));
            foreach (var pruning in new[] { "2:4", "0.5", "0.9" })
                rows.Add(($"{model} {pruning}", SparseConvModels.Compile(SparseConvModels.PrunedCopy(path, pruning), model + "P" + pruning.Replace(":", "of").Replace(".", ""), "auto").Artifact));
        }
        var models = GeneratedModels.Build([.. rows.Select(r => r.Artifact)]);
        var (digits, _) = TestData.ReadNpy(TestData.Mnist("calibration-256.npy"));
        const int Runs = 64;
        var input = digits.AsSpan(0, 784 * Runs).ToArray();
        var outputs = new float[10 * Runs];
        var best = rows.ToDictionary(r => r.Name, _ => double.MaxValue);
        for (int round = 0; round < 40; round++)
            foreach (var (name, artifact) in rows)
            {
                var clock = Stopwatch.StartNew();
                models.RunMany(artifact, input, outputs, Runs);
                if (round >= 5) best[name] = Math.Min(best[name], clock.Elapsed.TotalMicroseconds / Runs);
            }
        string cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "?";
        output.WriteLine($"batch 1, best of 35 rounds of {Runs} runs, {cpu}, {Environment.ProcessorCount} cores");
        foreach (var (name, _) in rows)
            output.WriteLine($"{name,-16} {best[name],8:F1} µs   ({best[name.Split(' ')[0] + " dense"] / best[name]:F2}x dense)");
    }
}
