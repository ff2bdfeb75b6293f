using System.Text.RegularExpressions;
using ModelGen.IntegrationTests.Support;
using Xunit.Abstractions;

namespace ModelGen.IntegrationTests;

/// <summary>How the ModelGen targets behave in a real `dotnet build`: incrementality and errors.</summary>
[Collection(PackageCollection.Name)]
public sealed class BuildBehaviourTests(PackageFixture package, ITestOutputHelper output)
{
    private const string CompileTarget = "_ModelGen_CompileModels";

    // The task's command line as MSBuild logs it at normal verbosity (quoted only with spaces).
    private static readonly Regex ToolInvocation = new(@"modelgen\.dll""? compile ");

    [Fact]
    public void RebuildWithoutChangesSkipsTheModelCompileAndChangesRerunIt()
    {
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("Consumer");
        string model = consumer.CopyModel("lenet5.onnx");
        consumer.WriteFile("Program.cs", "System.Console.WriteLine(Consumer.LeNet5.OutputLength);\n");
        consumer.WriteProject("""<CompressedModel Include="lenet5.onnx" ClassName="LeNet5" />""");
        string artifact = Path.Combine(consumer.ArtifactFolder, "Consumer.LeNet5.mgen");

        ProcessResult first = Build(consumer, "first build");
        Assert.Matches(ToolInvocation, first.Output);
        Assert.True(File.Exists(artifact), $"no artifact at {artifact}\n{first}");
        DateTime firstWrite = File.GetLastWriteTimeUtc(artifact);

        ProcessResult second = Build(consumer, "no change");
        Assert.True(second.Output.Contains($"Skipping target \"{CompileTarget}\" because all output files are up-to-date"), second.ToString());
        Assert.DoesNotMatch(ToolInvocation, second.Output);
        Assert.True(second.Output.Contains("Skipping target \"CoreCompile\""), "the C# compiler ran again:\n" + second);
        Assert.Equal(firstWrite, File.GetLastWriteTimeUtc(artifact));

        // Only C# changed: the model compile is skipped, yet the compiler still gets the artifact.
        consumer.WriteFile("Program.cs", "System.Console.WriteLine(Consumer.LeNet5.InputLength);\n");
        ProcessResult codeChanged = Build(consumer, "Program.cs changed");
        Assert.DoesNotMatch(ToolInvocation, codeChanged.Output);
        Assert.Contains("/additionalfile:", codeChanged.Output);
        Assert.Equal(firstWrite, File.GetLastWriteTimeUtc(artifact));

        // Metadata is an input through the options file: same artifact path, new content.
        consumer.WriteProject("""<CompressedModel Include="lenet5.onnx" ClassName="LeNet5" Simd="none" />""");
        ProcessResult metadataChanged = Build(consumer, "Simd changed");
        Assert.Matches(ToolInvocation, metadataChanged.Output);
        Assert.Contains("--simd none", metadataChanged.Output);
        DateTime thirdWrite = File.GetLastWriteTimeUtc(artifact);
        Assert.True(thirdWrite > firstWrite, metadataChanged.ToString());

        ProcessResult unchangedAgain = Build(consumer, "no change after the metadata change");
        Assert.DoesNotMatch(ToolInvocation, unchangedAgain.Output);

        File.SetLastWriteTimeUtc(model, DateTime.UtcNow);
        ProcessResult touched = Build(consumer, "model touched");
        Assert.Matches(ToolInvocation, touched.Output);
        Assert.True(File.GetLastWriteTimeUtc(artifact) > thirdWrite, touched.ToString());

        // A new class name is a new artifact; the old one no longer reaches the compiler.
        consumer.WriteFile("Program.cs", "System.Console.WriteLine(Consumer.Digits.OutputLength);\n");
        consumer.WriteProject("""<CompressedModel Include="lenet5.onnx" ClassName="Digits" />""");
        ProcessResult renamed = Build(consumer, "ClassName changed");
        Assert.Contains("--class Digits", renamed.Output);
        Assert.True(File.Exists(Path.Combine(consumer.ArtifactFolder, "Consumer.Digits.mgen")), renamed.ToString());
    }

    [Fact]
    public void AModelWithoutMetadataInAFolderWithASpaceGetsItsNamesFromTheFileAndProject()
    {
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("Consumer");
        Directory.CreateDirectory(Path.Combine(consumer.Directory, "Models dir"));
        File.Copy(Path.Combine(Repo.MnistData, "lenet300.onnx"), Path.Combine(consumer.Directory, "Models dir", "lenet300.onnx"));
        // Namespace: the project's RootNamespace; class: modelgen's PascalCase of the file name.
        consumer.WriteFile("Program.cs", "System.Console.WriteLine(\"digit \" + Consumer.Lenet300.Predict(new float[Consumer.Lenet300.InputLength]));\n");
        consumer.WriteProject("""<CompressedModel Include="Models dir/lenet300.onnx" />""");

        ProcessResult build = Build(consumer, "build");
        Assert.True(File.Exists(Path.Combine(consumer.ArtifactFolder, "Consumer.lenet300.mgen")), build.ToString());
        ProcessResult run = consumer.RunBuilt();
        Assert.True(run.ExitCode == 0 && Regex.IsMatch(run.Output, @"digit \d"), run.ToString());
    }

    public static TheoryData<string, string[]> BrokenProjects => new()
    {
        // Errors about the item's Include or metadata point at its line in the project and name it; the model's own at the model.
        { "missing", ["Broken\\.csproj\\(\\d+,\\d+\\)\\s*:\\s*error MG0100: CompressedModel 'missing\\.onnx'"] },
        { "corrupt", ["corrupt\\.onnx\\s*:\\s*error MG\\d{4}:"] },
        { "truncated", ["truncated\\.onnx\\s*:\\s*error MG\\d{4}:"] },
        { "metadata", ["Broken\\.csproj\\(\\d+,\\d+\\)\\s*:\\s*warning MG0111:.*'Compresion'.*did you mean 'Compression'", "Broken\\.csproj\\(\\d+,\\d+\\)\\s*:\\s*error MG0102: CompressedModel 'lenet5\\.onnx'", "Broken\\.csproj\\(\\d+,\\d+\\)\\s*:\\s*error MG0103:", "Broken\\.csproj\\(\\d+,\\d+\\)\\s*:\\s*error MG0104:", "Broken\\.csproj\\(\\d+,\\d+\\)\\s*:\\s*error MG0105:", "Broken\\.csproj\\(\\d+,\\d+\\)\\s*:\\s*error MG0112: CompressedModel 'lenet5\\.onnx': InputShape 'input:1x0'"] },
        { "duplicate", ["error MG0110:"] },
    };

    [Theory]
    [MemberData(nameof(BrokenProjects))]
    public void ABrokenModelFailsTheBuildWithACodeAndTheFile(string kind, string[] expectedErrors)
    {
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("Broken");
        consumer.WriteFile("Program.cs", "return 0;\n");
        switch (kind)
        {
            case "missing":
                consumer.WriteProject("""<CompressedModel Include="missing.onnx" />""");
                break;
            case "corrupt":
                consumer.WriteFile("corrupt.onnx", "this is not an ONNX model\n");
                consumer.WriteProject("""<CompressedModel Include="corrupt.onnx" />""");
                break;
            case "truncated":
                byte[] bytes = File.ReadAllBytes(Path.Combine(Repo.MnistData, "lenet5.onnx"));
                File.WriteAllBytes(Path.Combine(consumer.Directory, "truncated.onnx"), bytes[..(bytes.Length / 2)]);
                consumer.WriteProject("""<CompressedModel Include="truncated.onnx" />""");
                break;
            case "metadata":
                consumer.CopyModel("lenet5.onnx");
                consumer.WriteProject("""<CompressedModel Include="lenet5.onnx" ClassName="2fast" Namespace="My-App" BatchSize="0" Simd="avx9" Compresion="int8" InputShape="input:1x0" />""");
                break;
            case "duplicate":
                consumer.CopyModel("lenet5.onnx");
                consumer.CopyModel("lenet300.onnx");
                consumer.WriteProject("""
                    <CompressedModel Include="lenet5.onnx" ClassName="Net" />
                    <CompressedModel Include="lenet300.onnx" ClassName="Net" />
                    """);
                break;
        }

        ProcessResult build = consumer.Build();
        output.WriteLine(build.ToString());
        Assert.True(build.ExitCode != 0, "the build succeeded:\n" + build);
        foreach (string expected in expectedErrors)
        {
            Assert.True(Regex.IsMatch(build.Output, expected), $"expected /{expected}/ in:\n{build}");
        }

        // A clean failure: no task crash (MSB4018), no generic tool failure (MSB6006), no stack trace.
        Assert.DoesNotContain("MSB4018", build.Output);
        Assert.DoesNotContain("MSB6006", build.Output);
        Assert.DoesNotContain("Unhandled exception", build.Output);
        Assert.DoesNotContain("   at ", build.Output);
    }

    [Fact]
    public void InputShapeFixesAnAudioModelsSampleCountAndAMismatchPointsAtTheItem()
    {
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("Audio");
        File.Copy(Path.Combine(Repo.Root, "data", "audio", "mel.onnx"), Path.Combine(consumer.Directory, "mel.onnx"));
        // The consumer runs the generated class on the test's signal; ONNX Runtime runs the original model on it here.
        var signal = new float[16000];
        for (int t = 0; t < signal.Length; t++) signal[t] = (float)(0.5 * Math.Sin(2 * Math.PI * 440 * t / 16000) + 0.2 * Math.Sin(2 * Math.PI * 3000 * t / 16000));
        File.WriteAllBytes(Path.Combine(consumer.Directory, "audio.bin"), System.Runtime.InteropServices.MemoryMarshal.AsBytes(signal.AsSpan()).ToArray());
        consumer.WriteFile("Program.cs", """
            using System.Runtime.InteropServices;
            var audio = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes("audio.bin")).ToArray();
            var logmel = new float[Audio.Mel.OutputLength];
            Audio.Mel.Run(audio, logmel);
            File.WriteAllBytes("logmel.bin", MemoryMarshal.AsBytes(logmel.AsSpan()).ToArray());
            Console.WriteLine($"mel {Audio.Mel.InputLength} {Audio.Mel.OutputLength}");
            """);
        consumer.WriteProject("""<CompressedModel Include="mel.onnx" ClassName="Mel" InputShape="audio:1x16000" />""");
        ProcessResult build = Build(consumer, "InputShape audio:1x16000");
        Assert.Contains("--input-shape audio:1x16000", build.Output);
        // 16,000 samples, (16000 - 128) / 64 + 1 = 249 frames of 40 mel bands, as ONNX Runtime computes them.
        ProcessResult run = consumer.RunBuilt();
        Assert.True(run.ExitCode == 0 && run.Output.Contains("mel 16000 9960"), run.ToString());
        float[] actual = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(consumer.Directory, "logmel.bin"))).ToArray();
        float[] expected = OnnxReference.Run(Path.Combine(Repo.Root, "data", "audio", "mel.onnx"), signal, 1, [16000], 9960);
        ModelGen.Tests.Support.Tolerance.AssertClose(expected, actual, "mel built with InputShape");

        consumer.WriteProject("""<CompressedModel Include="mel.onnx" ClassName="Mel" InputShape="voice:1x16000" />""");
        ProcessResult mismatch = consumer.Build();
        output.WriteLine(mismatch.ToString());
        Assert.True(mismatch.ExitCode != 0, mismatch.ToString());
        Assert.Matches(@"Audio\.csproj\(\d+,\d+\)\s*:\s*error MG1008: CompressedModel 'mel\.onnx': InputShape names input 'voice', which the model does not have; its inputs: audio \[batch, samples\]", mismatch.Output);
    }

    /// <summary>
    /// Fine-tuning in a real build: it runs in modelgen (out of MSBuild's process), its progress and summary show at
    /// normal verbosity, a build without changes trains nothing, and a changed training file trains again.
    /// </summary>
    [Fact]
    public void FineTuningTrainsOnceAndANoChangeRebuildTrainsNothing()
    {
        package.AssertPacked();
        using var consumer = ConsumerProject.Create("Tuned");
        consumer.CopyModel("lenet300.onnx");
        string data = consumer.CopyModel("train-images-u8.npy");
        consumer.CopyModel("train-labels.npy");
        consumer.WriteFile("Program.cs", "System.Console.WriteLine(Tuned.Lenet300.OutputLength);\n");
        consumer.WriteProject("""
            <CompressedModel Include="lenet300.onnx" Compression="int4-weights" FineTune="true" TrainingData="train-images-u8.npy"
                             TrainingLabels="train-labels.npy" CalibrationScale="255" Epochs="2" Seed="3" />
            """);
        string artifact = Path.Combine(consumer.ArtifactFolder, "Tuned.lenet300.mgen");

        ProcessResult first = Build(consumer, "first build");
        Assert.Matches(ToolInvocation, first.Output);
        Assert.Contains("--fine-tune", first.Output);
        Assert.Matches(@"modelgen: lenet300\.onnx: fine-tuned: 2 epochs on 7,200 samples", first.Output);
        Assert.True(File.Exists(artifact), first.ToString());
        DateTime written = File.GetLastWriteTimeUtc(artifact);

        ProcessResult second = Build(consumer, "no change");
        Assert.Contains($"Skipping target \"{CompileTarget}\" because all output files are up-to-date", second.Output);
        Assert.DoesNotContain("fine-tuned", second.Output);
        Assert.Equal(written, File.GetLastWriteTimeUtc(artifact));

        File.SetLastWriteTimeUtc(data, DateTime.UtcNow);
        ProcessResult touched = Build(consumer, "training data touched");
        Assert.Contains("fine-tuned: 2 epochs", touched.Output);
    }

    private ProcessResult Build(ConsumerProject consumer, string step)
    {
        ProcessResult result = consumer.Build("-v:n");
        output.WriteLine($"{step}: {result.Elapsed.TotalSeconds:F1} s");
        Assert.True(result.ExitCode == 0, $"{step} failed:\n{result}");
        return result;
    }
}
