using ModelGen.Compiler;
using ModelGen.Tests.Support;
using Xunit.Abstractions;

namespace ModelGen.Tests;

/// <summary>
/// Weights that scale (issue 4): a model with over 4 MiB of float32 weights through the compiler, the
/// real source generator and the C# compiler; its outputs against ONNX Runtime, and the assembly growing
/// by about the weight bytes. How long a consumer's build takes with it is measured, not asserted, by
/// eng/measure-weight-embedding.sh (machines are noisy).
/// </summary>
public sealed class LargeWeightsTests(ITestOutputHelper output)
{
    [Fact]
    public void AModelWithFourMegabytesOfWeightsCompilesAndMatchesOnnxRuntime()
    {
        // x [1, 1024] → Gemm (w1 [1024, 1024]: 4 MiB, b1) → Relu → Gemm (w2 [16, 1024], b2), seeded weights.
        var model = SyntheticModels.LargeMlp(1024, 1024, 16);
        string path = model.Save("large.onnx");
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "Large", Namespace = "Weights" });
        long weightBytes = artifact.Tensors.Where(t => t.Data is not null).Select(t => t.Data!).Distinct().Sum(d => (long)d.Length);
        Assert.True(weightBytes >= 4L << 20, $"{weightBytes} bytes of weights");

        var models = GeneratedModels.Build(artifact);
        Assert.Equal((int)weightBytes, models.Member(artifact, "WeightBytes"));
        // UTF-16 literals carry the bytes once; the rest of the assembly (kernels, harness) is small.
        Assert.InRange(models.AssemblyBytes, weightBytes, weightBytes + (1L << 20));
        output.WriteLine($"weights {weightBytes:N0} bytes; assembly {models.AssemblyBytes:N0} bytes (+{models.AssemblyBytes - weightBytes:N0}); generated source {models.Sources.Values.Sum(s => (long)s.Length):N0} chars");

        using var ort = new OnnxRuntimeOracle(path);
        for (int seed = 0; seed < 3; seed++)
        {
            var x = OnnxBuilder.Random(1024, 500 + seed);
            var y = new float[16];
            models.Run(artifact, [x], [y]);
            Tolerance.AssertClose(ort.Run(("x", x, [1, 1024]))[0], y, $"input {seed}");
        }
    }
}
