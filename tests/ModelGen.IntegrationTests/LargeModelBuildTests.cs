using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using ModelGen.IntegrationTests.Support;
using ModelGen.Tests.Support;
using Xunit.Abstractions;

namespace ModelGen.IntegrationTests;

/// <summary>
/// A consumer project with a model of over 4 MiB of weights: it builds, and the generated class gives
/// ONNX Runtime's outputs. The build's duration with and without the model is written to the test
/// output (a figure for the record, not an assertion: this machine is shared and noisy).
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class LargeModelBuildTests(PackageFixture package, ITestOutputHelper output)
{
    [Fact]
    public void AFourMegabyteModelBuildsAndMatchesOnnxRuntime()
    {
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("Large");
        string model = Path.Combine(consumer.Directory, "large.onnx");
        File.WriteAllBytes(model, SyntheticModels.LargeMlp(1024, 1024, 16).Bytes());
        consumer.WriteFile("Program.cs", """
            var x = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(args[0])).ToArray();
            var y = new float[16];
            #if WITH_MODEL
            Large.Models.Mlp.Run(x, y);
            #endif
            File.WriteAllBytes(args[1], System.Runtime.InteropServices.MemoryMarshal.AsBytes(y.AsSpan()).ToArray());
            """);

        // Without the model first (restore, first compile), then with it: the second build's extra time is the model's.
        consumer.WriteProject("");
        ProcessResult without = consumer.Build();
        Assert.True(without.ExitCode == 0, without.ToString());
        consumer.WriteProject("""<CompressedModel Include="large.onnx" ClassName="Mlp" Namespace="Large.Models" />""", "<DefineConstants>$(DefineConstants);WITH_MODEL</DefineConstants>");
        ProcessResult with = consumer.Build();
        Assert.True(with.ExitCode == 0, with.ToString());
        string assembly = Path.Combine(consumer.Directory, "bin", "Release", "net10.0", "Large.dll");
        output.WriteLine($"build without the model: {without.Elapsed.TotalSeconds:F1} s; rebuild with it: {with.Elapsed.TotalSeconds:F1} s; assembly {new FileInfo(assembly).Length:N0} bytes");

        var x = OnnxBuilder.Random(1024, 77);
        string input = Path.Combine(consumer.Directory, "x.bin"), result = Path.Combine(consumer.Directory, "y.bin");
        File.WriteAllBytes(input, MemoryMarshal.AsBytes(x.AsSpan()).ToArray());
        ProcessResult run = consumer.RunBuilt(input, result);
        Assert.True(run.ExitCode == 0, run.ToString());
        float[] actual = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(result)).ToArray();

        using var session = new InferenceSession(model);
        using var value = OrtValue.CreateTensorValueFromMemory(x, [1, 1024]);
        using var runOptions = new RunOptions(); // kept alive through Run: see OnnxRuntimeOracle
        using var outputs = session.Run(runOptions, ["x"], [value], ["y"]);
        float[] expected = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 + 1e-4 * Math.Abs(expected[i]), $"output {i}: {actual[i]} vs {expected[i]}");
    }
}
