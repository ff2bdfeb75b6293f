using System.Runtime.InteropServices;
using ModelGen.IntegrationTests.Support;
using Xunit.Abstractions;

namespace ModelGen.IntegrationTests;

/// <summary>
/// A consumer project references the packed ModelGen package, adds both MNIST networks as
/// CompressedModel items and runs the generated classes on all 2,000 test digits; ONNX Runtime on
/// the original models is the reference.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class EndToEndTests(PackageFixture package, ITestOutputHelper output)
{
    private const int Digits = 2000;
    private const int Classes = 10;

    [Fact]
    public void GeneratedModelsMatchOnnxRuntimeOnEveryTestDigit()
    {
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("Consumer");
        consumer.CopyModel("lenet5.onnx");
        consumer.CopyModel("lenet300.onnx");
        consumer.WriteProject("""
            <CompressedModel Include="lenet5.onnx" ClassName="LeNet5" />
            <CompressedModel Include="lenet300.onnx" ClassName="LeNet300" />
            """);
        consumer.WriteFile("Program.cs", File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Consumers", "MnistOutputs.cs")));

        ProcessResult build = consumer.Build();
        output.WriteLine($"build: {build.Elapsed.TotalSeconds:F1} s");
        Assert.True(build.ExitCode == 0, build.ToString());

        string outputs = Path.Combine(consumer.Directory, "outputs");
        ProcessResult run = consumer.RunBuilt(Path.Combine(Repo.MnistData, "test-images.npy"), outputs);
        output.WriteLine($"run: {run.Elapsed.TotalSeconds:F1} s; {run.Output.Trim()}");
        Assert.True(run.ExitCode == 0, run.ToString());

        var (shape, images) = Npy.ReadFloat32(Path.Combine(Repo.MnistData, "test-images.npy"));
        var (_, labels) = Npy.ReadInt64(Path.Combine(Repo.MnistData, "test-labels.npy"));
        Assert.Equal([Digits, 1, 28, 28], shape);

        CompareWithOnnxRuntime("lenet5", images, labels, Path.Combine(outputs, "lenet5.bin"), expectedAccuracy: 0.9735);
        CompareWithOnnxRuntime("lenet300", images, labels, Path.Combine(outputs, "lenet300.bin"), expectedAccuracy: 0.9520);
    }

    private void CompareWithOnnxRuntime(string model, float[] images, long[] labels, string generatedOutputs, double expectedAccuracy)
    {
        float[] expected = OnnxReference.Run(Path.Combine(Repo.MnistData, model + ".onnx"), images, Digits, [1, 28, 28], Classes);
        float[] actual = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(generatedOutputs)).ToArray();
        Assert.Equal(expected.Length, actual.Length);

        int referenceCorrect = 0, generatedCorrect = 0;
        var topOneMismatches = new List<int>();
        double worstAbsolute = 0, worstRelative = 0;
        var outOfTolerance = new List<string>();
        for (int digit = 0; digit < Digits; digit++)
        {
            ReadOnlySpan<float> e = expected.AsSpan(digit * Classes, Classes);
            ReadOnlySpan<float> a = actual.AsSpan(digit * Classes, Classes);
            int expectedClass = OnnxReference.ArgMax(e), actualClass = OnnxReference.ArgMax(a);
            referenceCorrect += expectedClass == labels[digit] ? 1 : 0;
            generatedCorrect += actualClass == labels[digit] ? 1 : 0;
            if (expectedClass != actualClass)
            {
                topOneMismatches.Add(digit);
            }

            for (int k = 0; k < Classes; k++)
            {
                // DESIGN.md §6: within 1e-4 relative, or 1e-5 absolute near zero.
                double difference = Math.Abs((double)a[k] - e[k]);
                worstAbsolute = Math.Max(worstAbsolute, difference);
                worstRelative = Math.Max(worstRelative, difference / Math.Max(Math.Abs(e[k]), 1e-30));
                if (difference > Math.Max(1e-4 * Math.Abs(e[k]), 1e-5) && outOfTolerance.Count < 10)
                {
                    outOfTolerance.Add($"digit {digit} class {k}: generated {a[k]:R}, ONNX Runtime {e[k]:R}");
                }
            }
        }

        output.WriteLine($"{model}: ONNX Runtime accuracy {referenceCorrect / (double)Digits:P2}, generated {generatedCorrect / (double)Digits:P2}, " +
                         $"worst absolute error {worstAbsolute:G3}, worst relative {worstRelative:G3}");
        Assert.True(topOneMismatches.Count == 0, $"{model}: top-1 differs from ONNX Runtime on digits {string.Join(", ", topOneMismatches.Take(20))}");
        Assert.True(outOfTolerance.Count == 0, $"{model}: outputs out of tolerance:\n{string.Join("\n", outOfTolerance)}");
        Assert.Equal(expectedAccuracy, referenceCorrect / (double)Digits, 4);
        Assert.Equal(referenceCorrect, generatedCorrect);
    }
}
