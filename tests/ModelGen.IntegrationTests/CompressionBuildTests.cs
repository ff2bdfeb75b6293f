using System.Runtime.InteropServices;
using ModelGen.IntegrationTests.Support;
using Xunit.Abstractions;

namespace ModelGen.IntegrationTests;

/// <summary>The Compression item metadata through a real build: int8 weights keep LeNet-300-100's answers.</summary>
[Collection(PackageCollection.Name)]
public sealed class CompressionBuildTests(PackageFixture package, ITestOutputHelper output)
{
    [Fact]
    public void Int8WeightsThroughTheItemKeepTheOriginalsTopOne()
    {
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("Compressed");
        consumer.CopyModel("lenet300.onnx");
        consumer.WriteProject("""<CompressedModel Include="lenet300.onnx" ClassName="LeNet300" Compression="int8-weights" />""");
        consumer.WriteFile("Program.cs", """
            var images = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(args[0])).ToArray();
            int count = images.Length / Compressed.LeNet300.InputLength;
            var scores = new float[count * Compressed.LeNet300.OutputLength];
            for (int i = 0; i < count; i++)
                Compressed.LeNet300.Run(images.AsSpan(i * 784, 784), scores.AsSpan(i * 10, 10));
            File.WriteAllBytes(args[1], System.Runtime.InteropServices.MemoryMarshal.AsBytes(scores.AsSpan()).ToArray());
            Console.WriteLine($"weights {Compressed.LeNet300.WeightBytes} bytes");
            """);
        ProcessResult build = consumer.Build();
        Assert.True(build.ExitCode == 0, build.ToString());

        var (_, images) = Npy.ReadFloat32(Path.Combine(Repo.MnistData, "test-images.npy"));
        string input = Path.Combine(consumer.Directory, "images.bin"), result = Path.Combine(consumer.Directory, "scores.bin");
        File.WriteAllBytes(input, MemoryMarshal.AsBytes(images.AsSpan()).ToArray());
        ProcessResult run = consumer.RunBuilt(input, result);
        Assert.True(run.ExitCode == 0, run.ToString());
        output.WriteLine(run.Output.Trim());
        // float32: 1,066,440 bytes; int8 weights with float32 scales and biases: about a quarter.
        Assert.Contains("weights 269480 bytes", run.Output);

        float[] actual = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(result)).ToArray();
        float[] expected = OnnxReference.Run(Path.Combine(Repo.MnistData, "lenet300.onnx"), images, 2000, [1, 28, 28], 10);
        int same = 0;
        for (int d = 0; d < 2000; d++)
            if (ArgMax(actual.AsSpan(d * 10, 10)) == ArgMax(expected.AsSpan(d * 10, 10))) same++;
        output.WriteLine($"top-1 agreement with the float32 model in ONNX Runtime: {same} of 2000");
        Assert.True(same >= 1980, $"top-1 agrees on {same} of 2000");
    }

    [Fact]
    public void Int8ArithmeticThroughTheItemKeepsLeNet5sAccuracy()
    {
        // Compression int8 through a real build: calibration in the task, int8 convolutions and layers (int8
        // and int32 weights in the artifact) through the source generator, run by the consumer.
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("Int8");
        consumer.CopyModel("lenet5.onnx");
        consumer.CopyModel("calibration-256.npy");
        consumer.WriteProject("""<CompressedModel Include="lenet5.onnx" ClassName="LeNet5" Compression="int8" Calibration="calibration-256.npy" />""");
        consumer.WriteFile("Program.cs", """
            var images = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(args[0])).ToArray();
            int count = images.Length / Int8.LeNet5.InputLength;
            var scores = new float[count * Int8.LeNet5.OutputLength];
            for (int i = 0; i < count; i++)
                Int8.LeNet5.Run(images.AsSpan(i * 784, 784), scores.AsSpan(i * 10, 10));
            File.WriteAllBytes(args[1], System.Runtime.InteropServices.MemoryMarshal.AsBytes(scores.AsSpan()).ToArray());
            Console.WriteLine($"weights {Int8.LeNet5.WeightBytes} bytes");
            """);
        ProcessResult build = consumer.Build();
        Assert.True(build.ExitCode == 0, build.ToString());
        string reportFile = Directory.GetFiles(consumer.ArtifactFolder, "*.report.md").Single();
        Assert.Contains("int8 arithmetic", File.ReadAllText(reportFile));
        // The one-line summary, with the report's path, shows at the default verbosity.
        Assert.Contains($"modelgen: lenet5.onnx: compression int8: weights ", build.Output);
        Assert.Contains($"report: {reportFile}", build.Output);
        // Each model's code size beside its arena and weights (issue 19), at the default verbosity too.
        var codeLine = System.Text.RegularExpressions.Regex.Match(build.Output, @"modelgen: lenet5\.onnx: code [\d,]+ characters of C# \([\d,]+ lines, \d+ kernels, Simd auto; the weights' literals [\d,]+ characters more\); arena [\d,]+ bytes; weights ([\d,]+) bytes");
        Assert.True(codeLine.Success, build.ToString());

        var (_, images) = Npy.ReadFloat32(Path.Combine(Repo.MnistData, "test-images.npy"));
        var (_, labels) = Npy.ReadInt64(Path.Combine(Repo.MnistData, "test-labels.npy"));
        string input = Path.Combine(consumer.Directory, "images.bin"), result = Path.Combine(consumer.Directory, "scores.bin");
        File.WriteAllBytes(input, MemoryMarshal.AsBytes(images.AsSpan()).ToArray());
        ProcessResult run = consumer.RunBuilt(input, result);
        Assert.True(run.ExitCode == 0, run.ToString());
        output.WriteLine(run.Output.Trim());
        // float32: 1,724,320 bytes; int8 weights, an int32 bias and a float32 multiplier per channel: about a quarter.
        long weightBytes = long.Parse(System.Text.RegularExpressions.Regex.Match(run.Output, @"weights (\d+) bytes").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(weightBytes, 1_724_320 / 4, 1_724_320 * 27 / 100);
        Assert.Equal(weightBytes, long.Parse(codeLine.Groups[1].Value, System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture));

        float[] actual = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(result)).ToArray();
        float[] expected = OnnxReference.Run(Path.Combine(Repo.MnistData, "lenet5.onnx"), images, 2000, [1, 28, 28], 10);
        int right = 0, rightOriginal = 0;
        for (int d = 0; d < 2000; d++)
        {
            if (ArgMax(actual.AsSpan(d * 10, 10)) == labels[d]) right++;
            if (ArgMax(expected.AsSpan(d * 10, 10)) == labels[d]) rightOriginal++;
        }
        output.WriteLine($"int8: {right} of 2000 right; float32 in ONNX Runtime: {rightOriginal}");
        Assert.True(right >= rightOriginal - 6, $"int8 {right} vs float32 {rightOriginal} of 2000 (0.3 points is 6 digits)");

        // `dotnet clean` takes the reports with the artifact.
        ProcessResult clean = Dotnet.Run(["clean", consumer.ProjectPath, "-c", "Release", "-nodeReuse:false"], consumer.Directory, TimeSpan.FromMinutes(5));
        Assert.True(clean.ExitCode == 0, clean.ToString());
        Assert.Empty(Directory.Exists(consumer.ArtifactFolder) ? Directory.GetFiles(consumer.ArtifactFolder, "*.report.*") : []);
    }

    [Fact]
    public void AMissedAccuracyBudgetFailsTheBuildWithTheFigures()
    {
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("Budget");
        consumer.CopyModel("lenet300.onnx");
        consumer.CopyModel("calibration-256.npy");
        consumer.WriteFile("Program.cs", "System.Console.WriteLine(Budget.LeNet300.WeightBytes);");
        // A top-1 budget int8 weights meet: the build passes and the report lies beside the artifact.
        consumer.WriteProject("""<CompressedModel Include="lenet300.onnx" ClassName="LeNet300" Compression="int8-weights" Calibration="calibration-256.npy" AccuracyBudget="1%" />""");
        ProcessResult met = consumer.Build();
        Assert.True(met.ExitCode == 0, met.ToString());
        string report = Directory.GetFiles(consumer.ArtifactFolder, "*.report.md").Single();
        output.WriteLine(File.ReadAllText(report));
        Assert.Contains("budget 1%: met", File.ReadAllText(report));

        // An output error bound no int8 model meets: MG3001 names the model and gives the figures.
        consumer.WriteProject("""<CompressedModel Include="lenet300.onnx" ClassName="LeNet300" Compression="int8-weights" Calibration="calibration-256.npy" AccuracyBudget="0.000001" />""");
        ProcessResult missed = consumer.Build();
        Assert.NotEqual(0, missed.ExitCode);
        Assert.Matches(@"lenet300\.onnx.*error MG3001: the compressed model misses the accuracy budget 0\.000001: .*top-1 agrees with the original on \d+", missed.Output);
    }

    static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
