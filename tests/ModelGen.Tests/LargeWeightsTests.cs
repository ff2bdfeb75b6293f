using ModelGen.Compiler;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// Weights that scale: a model with over 4 MiB of weights through the real generator and the C#
/// compiler, its outputs against ONNX Runtime, and the assembly growing by about the weight bytes.
/// (How long that takes is measured by tests/ModelGen.Benchmarks, not asserted here.)
/// </summary>
public sealed class LargeWeightsTests
{
    [Fact]
    public void AModelWithFourMegabytesOfWeightsCompilesAndMatchesOnnxRuntime()
    {
        var model = SyntheticModels.LargeMlp(1024, 1024, 16);
        string path = model.Save("large.onnx");
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "Large", Namespace = "Weights" });
        long weightBytes = artifact.Tensors.Where(t => t.Data is not null).Select(t => t.Data!).Distinct().Sum(d => (long)d.Length);
        Assert.True(weightBytes >= 4L << 20, $"{weightBytes} bytes of weights");

        var models = GeneratedModels.Build(artifact);
        // UTF-16 literals carry the bytes once; the rest of the assembly is small.
        Assert.InRange(models.AssemblyBytes, weightBytes, weightBytes + (1L << 20));

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
