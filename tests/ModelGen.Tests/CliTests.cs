using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>`modelgen compile` writes exactly what the source generator emits for the same options.</summary>
[Collection("Console")] // Console.SetError is process-wide: no two classes that capture stderr at once
public sealed class CliTests
{
    [Fact]
    public void CompileWritesSourceByteIdenticalToTheGenerators()
    {
        string dir = Directory.CreateTempSubdirectory("modelgen-cli").FullName;
        string model = TestData.Mnist("lenet5.onnx");
        int exit = Cli.Program.Main(["compile", model, "--class", "LeNet5", "--namespace", "Demo.Models", "--out", dir, "--artifact", Path.Combine(dir, "obj", "lenet5.mgen")]);
        Assert.Equal(0, exit);
        byte[] cli = File.ReadAllBytes(Path.Combine(dir, "LeNet5.g.cs"));

        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = model, ClassName = "LeNet5", Namespace = "Demo.Models" });
        var generated = GeneratedModels.Build(artifact).Sources["Demo.Models.LeNet5.g.cs"];
        Assert.Equal(new System.Text.UTF8Encoding(false).GetBytes(generated), cli);
        Assert.Equal(ArtifactText.Write(artifact), File.ReadAllText(Path.Combine(dir, "obj", "lenet5.mgen")));
    }

    [Fact]
    public void ErrorsGoToStderrInMSBuildFormatWithExitCode1()
    {
        var (exit, stderr) = Modelgen("compile", "/no/such/model.onnx", "--out", Path.GetTempPath());
        Assert.Equal(1, exit);
        Assert.Contains("/no/such/model.onnx: error MG0001: ", stderr);
    }

    [Fact]
    public void InspectListsOperatorsSupportParametersAndShapes()
    {
        var r = ModelInspector.Inspect(TestData.Mnist("lenet300.onnx"));
        Assert.Equal(266_610, r.Parameters);
        Assert.Equal([1, 1, 28, 28], r.Inputs.Single().Shape!);
        Assert.Equal([1, 10], r.Outputs.Single().Shape!);
        Assert.All(r.Operators, o => Assert.True(o.Supported));
        Assert.Null(r.Problem);

        string path = new OnnxBuilder().Input("x", null, 4).Node("Einsum", ["x"], ["s"]).Node("Relu", ["s"], ["y"]).Output("y").Save();
        var bad = ModelInspector.Inspect(path, batchSize: 2);
        Assert.Equal([2, 4], bad.Inputs.Single().Shape!);
        Assert.Contains(bad.Operators, o => o.OpType == "Einsum" && !o.Supported);
        Assert.Contains(bad.Operators, o => o.OpType == "Relu" && o.Supported);
        Assert.StartsWith("MG1001", bad.Problem);
        Assert.Equal(2, Cli.Program.Main(["inspect", path]));
    }

    [Fact]
    public void BenchComparesWithOnnxRuntimeAndReportsThePlan()
    {
        var result = Cli.Bench.BenchCommand.Run(new Cli.Bench.BenchCommand.BenchOptions(
            TestData.Mnist("lenet300.onnx"), TestData.Mnist("test-images.npy"), Uint8Scale: 1, BatchSize: 1, Simd: "auto", Seconds: 0.2, Samples: 200));
        // Same answers as ONNX Runtime on the 200 digits, no allocation per run.
        Assert.Equal(200, result.Agreement.Compared);
        Assert.Equal(200, result.Agreement.SameTop1);
        Assert.Equal(0, result.Agreement.OutsideTolerance);
        Assert.Equal(0, result.OursAllocated);
        // Known sizes of LeNet-300-100: 784·300 + 300·100 + 100·10 multiply-adds; its 266,610 float32 parameters,
        // and the zeros that fill the 4-row, 16-column panels of f2 (W [100, 300] as [100, 304]) and f3 ([10, 100] as [12, 112]).
        Assert.Equal(784 * 300 + 300 * 100 + 100 * 10, result.MultiplyAdds);
        Assert.Equal((266_610 + 100 * 4 + (12 * 112 - 10 * 100)) * 4, result.WeightBytes);
        Assert.Equal(3, result.Kernels.Count);
        Assert.InRange(result.Plan.ArenaBytes, result.Plan.LowerBound, result.Plan.TensorBytes + 64 * 3);
        Assert.True(result.OursSeconds > 0 && result.OrtSeconds > 0 && result.Peak.Gflops > 0);
        // The stream bound reads a buffer of the weights' size (whole 256-byte steps of it).
        var stream = Assert.IsType<Cli.Bench.StreamRate>(result.Stream);
        Assert.InRange(stream.Bytes, result.WeightBytes - 256, result.WeightBytes);
        Assert.True(stream.AlignedGBs > 0 && stream.MisalignedGBs > 0);
        string table = result.Format();
        Assert.Contains("ONNX Runtime", table);
        Assert.Contains("weight stream", table);
        Assert.Contains("per kernel", table);
        // Uncompressed: no second model of ours to time.
        Assert.Null(result.Float32Seconds);
        Assert.DoesNotContain("same rounds", table);
    }

    [Fact]
    public void BenchCountsTheMultiplyAddsOfInt8ConvolutionsAsTheirFloat32Ones()
    {
        // LeNet-5: c1 20·24·24 outputs of 25 taps, c2 50·8·8 of 20·25, f1 500 of 800, f2 10 of 500, whatever
        // the int8 kernels pad their weight rows to.
        var result = Cli.Bench.BenchCommand.Run(new Cli.Bench.BenchCommand.BenchOptions(
            TestData.Mnist("lenet5.onnx"), TestData.Mnist("test-images.npy"), Uint8Scale: 1, BatchSize: 1, Simd: "auto", Seconds: 0.1, Samples: 50) { Compression = "int8" });
        Assert.Equal(20L * 24 * 24 * 25 + 50L * 8 * 8 * 500 + 500 * 800 + 10 * 500, result.MultiplyAdds);
        Assert.Equal(0, result.OursAllocated);
        // Our float32 model timed in the same rounds, and its row in the table.
        Assert.True(result.Float32Seconds > 0);
        Assert.Contains("ModelGen float32, same rounds", result.Format());
    }

    [Fact]
    public void BenchTimesAPrunedModelBesideOurDenseOne()
    {
        // The pruned model (one-shot, 92% of the weights, refit on --data as calibration) is what compile --pruning 0.92
        // emits; our dense float32 model runs in the same rounds. Its fully connected layers are stored sparse, so
        // the multiply-adds counted are the stored entries: about the 8% kept, well under the dense 266,200.
        var result = Cli.Bench.BenchCommand.Run(new Cli.Bench.BenchCommand.BenchOptions(
            TestData.Mnist("lenet300.onnx"), TestData.Mnist("test-images.npy"), Uint8Scale: 1, BatchSize: 1, Simd: "auto", Seconds: 0.1, Samples: 200)
        { Training = o => o with { Pruning = 0.92 } });
        Assert.True(result.Float32Seconds > 0);
        Assert.InRange(result.Agreement.SameTop1, 170, 200);
        Assert.True(result.Agreement.OutsideTolerance > 0, "the pruned model's outputs differ from the original's");
        Assert.InRange(result.MultiplyAdds, 266_200 / 20, 266_200 / 5);
        Assert.Contains("compression pruned 92%", result.Format());
        // The CLI takes the same switches as compile, checked before any work.
        var (exit, stderr) = Modelgen("bench", TestData.Mnist("lenet300.onnx"), "--pruning", "1.5");
        Assert.Equal(1, exit);
        Assert.Contains("error MG0007: Pruning (--pruning) is the share of weights removed", stderr);
    }

    [Fact]
    public void BenchRefusesDataThatDoesNotFitTheInput()
    {
        string bad = Path.Combine(Directory.CreateTempSubdirectory("modelgen-bench").FullName, "bad.npy");
        File.WriteAllBytes(bad, [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 4, 0, (byte)'{', (byte)'}', (byte)' ', (byte)'\n']);
        var (exit, stderr) = Modelgen("bench", TestData.Mnist("lenet300.onnx"), "--data", bad);
        Assert.Equal(1, exit);
        Assert.Contains("bad.npy: error MG0201: ", stderr);
    }

    [Fact]
    public void CompressionWritesAReportAndAMissedBudgetIsMG3001WithoutAnArtifact()
    {
        string dir = Directory.CreateTempSubdirectory("modelgen-report").FullName;
        string artifact = Path.Combine(dir, "lenet300.mgen");
        string[] common = ["compile", TestData.Mnist("lenet300.onnx"), "--compression", "int8-weights", "--calibration", TestData.Mnist("calibration-256.npy"), "--artifact", artifact];
        Assert.Equal(0, Cli.Program.Main([.. common, "--accuracy-budget", "1%"]));
        Assert.True(File.Exists(artifact));
        string json = File.ReadAllText(artifact + ".report.json");
        using var report = System.Text.Json.JsonDocument.Parse(json);
        var root = report.RootElement;
        Assert.Equal(256, root.GetProperty("samples").GetInt32());
        Assert.True(root.GetProperty("top1Agreement").GetDouble() >= 0.99);
        Assert.True(root.GetProperty("budgetMet").GetBoolean());
        // Three fully connected layers in int8: about a quarter of the float32 bytes.
        Assert.Equal(3, root.GetProperty("layers").EnumerateArray().Count(l => l.GetProperty("precision").GetString()!.StartsWith("int8")));
        Assert.InRange(root.GetProperty("weightBytesAfter").GetInt64() * 100 / root.GetProperty("weightBytesBefore").GetInt64(), 25, 27);
        Assert.Contains("| /f1/Gemm |", File.ReadAllText(artifact + ".report.md"));
        // The generated class's documentation states the compression and what was measured (the artifact carries both).
        var compiled = ArtifactText.Read(File.ReadAllText(artifact));
        Assert.Equal("int8-weights", compiled.Compression);
        // The report gives the emitted code's size (issue 19): the C# the generator writes for this artifact, exactly.
        var code = root.GetProperty("code");
        string source = Generator.Emit.ModelEmitter.Emit(compiled);
        // Code and the weights' literals apart; together the whole file.
        Assert.Equal(source.Length, code.GetProperty("csharpCharacters").GetInt64() + code.GetProperty("weightLiteralCharacters").GetInt64());
        Assert.InRange(code.GetProperty("weightLiteralCharacters").GetInt64(), root.GetProperty("weightBytesAfter").GetInt64() / 2, source.Length);
        Assert.Equal(compiled.Nodes.Count, code.GetProperty("kernels").GetInt32());
        Assert.Equal("auto", code.GetProperty("simd").GetString());
        Assert.Contains(FormattableString.Invariant($"Emitted code: {code.GetProperty("csharpCharacters").GetInt64():N0} characters of C#"), File.ReadAllText(artifact + ".report.md"));
        string summary = DocSentence(Generator.Emit.ModelEmitter.Emit(compiled), "/// The ONNX model");
        Assert.Contains("compression int8-weights", summary);
        string measured = DocSentence(Generator.Emit.ModelEmitter.Emit(compiled), "/// Measured at build time");
        Assert.Contains("against the original model: lenet300.onnx: compression int8-weights: weights ", measured);
        Assert.Contains("top-1 agrees with the original on 256", measured);

        // An output error bound no int8 model meets: the build's error, with the figures, and no artifact to ship.
        var (exit, stderr) = Modelgen([.. common, "--accuracy-budget", "0.000001"]);
        Assert.Equal(1, exit);
        Assert.Contains("error MG3001: ", stderr);
        Assert.Contains("misses the accuracy budget 0.000001", stderr);
        Assert.False(File.Exists(artifact));
    }

    [Fact]
    public void MixedWeightsChoosesEachLayersPrecisionAgainstTheBudget()
    {
        string dir = Directory.CreateTempSubdirectory("modelgen-mixed").FullName;
        string[] Args(string budget, string name) => ["compile", TestData.Mnist("lenet300.onnx"), "--compression", "mixed-weights", "--calibration", TestData.Mnist("calibration-256.npy"),
            "--accuracy-budget", budget, "--artifact", Path.Combine(dir, name + ".mgen")];
        (long Bytes, string[] Precisions) Read(string name)
        {
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, name + ".mgen.report.json")));
            Assert.True(json.RootElement.GetProperty("budgetMet").GetBoolean());
            return (json.RootElement.GetProperty("weightBytesAfter").GetInt64(), [.. json.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("precision").GetString()!.Split(' ')[0])]);
        }
        // A loose top-1 budget: every layer int4. A tight output-error budget: some layers stay wider.
        Assert.Equal(0, Cli.Program.Main(Args("1%", "loose")));
        var loose = Read("loose");
        Assert.All(loose.Precisions, p => Assert.Equal("int4", p));
        Assert.Equal(0, Cli.Program.Main(Args("0.05", "tight")));
        var tight = Read("tight");
        Assert.Contains(tight.Precisions, p => p != "int4");
        Assert.True(tight.Bytes > loose.Bytes && tight.Bytes < 1_066_440, $"{tight.Bytes} bytes");

        var (exit, stderr) = Modelgen("compile", TestData.Mnist("lenet300.onnx"), "--compression", "mixed-weights", "--artifact", Path.Combine(dir, "none.mgen"));
        Assert.Equal(1, exit);
        Assert.Contains("error MG0007: Compression mixed-weights needs Calibration and AccuracyBudget", stderr);
    }
    /// <summary>Runs a command with stderr captured.</summary>
    static (int Exit, string Stderr) Captured(Func<int> run)
    {
        var stderr = new StringWriter();
        var old = Console.Error;
        Console.SetError(stderr);
        try { return (run(), stderr.ToString()); }
        finally { Console.SetError(old); }
    }

    static (int Exit, string Stderr) Modelgen(params string[] args) => Captured(() => Cli.Program.Main(args));

    /// <summary>The error contract of every command: exit code 1 and one canonical line with the code, no stack trace.</summary>
    static void FailsWith(string code, (int Exit, string Stderr) run)
    {
        Assert.Equal(1, run.Exit);
        Assert.Contains($": error {code}: ", run.Stderr);
        Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("   at ", run.Stderr);
    }

    [Theory]
    [InlineData("a NUL in the location")]
    [InlineData("an offset of 2^63 - 1")]
    public void BadExternalDataIsMG0006InInspectAsInCompile(string fault)
    {
        var b = new OnnxBuilder().Input("x", 1, 2);
        var t = new Onnx.Proto.TensorProto { Name = "w", DataType = 1, DataLocation = Onnx.Proto.TensorProto.Types.DataLocation.External };
        t.Dims.Add(2);
        t.ExternalData.Add(new Onnx.Proto.StringStringEntryProto { Key = "location", Value = fault.Contains("NUL") ? "weights\0.bin" : "weights.bin" });
        if (fault.Contains("offset")) t.ExternalData.Add(new Onnx.Proto.StringStringEntryProto { Key = "offset", Value = long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        b.Model.Graph.Initializer.Add(t);
        string path = b.Node("Add", ["x", "w"], ["y"]).Output("y").Save();
        File.WriteAllBytes(Path.Combine(Path.GetDirectoryName(path)!, "weights.bin"), new byte[8]);
        FailsWith("MG0006", Modelgen("inspect", path));
        FailsWith("MG0006", Modelgen("compile", path, "--artifact", Path.Combine(Path.GetDirectoryName(path)!, "model.mgen")));
        Assert.Equal(Onnx.ErrorCodes.ExternalDataMissing, Assert.Throws<Onnx.ModelGenException>(() => ModelInspector.Inspect(path)).Code);
    }

    [Theory]
    [InlineData("--samples", "-1")]
    [InlineData("--samples", "0")]
    [InlineData("--samples", "many")]
    [InlineData("--samples", "3000000000")]
    [InlineData("--seconds", "0")]
    [InlineData("--seconds", "-1")]
    [InlineData("--seconds", "601")]
    [InlineData("--seconds", "NaN")]
    [InlineData("--seconds", "Infinity")]
    [InlineData("--seconds", "1e400")]
    [InlineData("--uint8-scale", "0")]
    [InlineData("--uint8-scale", "-255")]
    [InlineData("--uint8-scale", "NaN")]
    [InlineData("--uint8-scale", "Infinity")]
    [InlineData("--uint8-scale", "1e40")]
    [InlineData("--batch-size", "0")]
    [InlineData("--batch-size", "-1")]
    [InlineData("--batch-size", "2000000")]
    public void BenchRefusesEveryNumericOptionOutOfRangeAsMG0007(string option, string value) =>
        FailsWith("MG0007", Modelgen("bench", TestData.Mnist("lenet300.onnx"), "--seconds", "0.1", option, value));

    [Theory]
    [InlineData("0")]
    [InlineData("NaN")]
    [InlineData("-Infinity")]
    public void CompileRefusesADivisorOfUint8DataOutOfRangeAsMG0007(string scale) =>
        FailsWith("MG0007", Modelgen("compile", TestData.Mnist("lenet300.onnx"), "--calibration-scale", scale, "--out", Path.GetTempPath()));

    [Fact]
    public void BenchOnAModelWithoutInputsIsMG1005()
    {
        string path = new OnnxBuilder().Initializer("w", [2], [1f, -2f]).Node("Relu", ["w"], ["y"]).Output("y", 2).Save();
        FailsWith("MG1005", Modelgen("bench", path, "--seconds", "0.1"));
    }

    [Fact]
    public void AnyOtherExceptionIsMG9000WithTheStackTraceOnlyWithVerbose()
    {
        static int Fails() => throw new InvalidOperationException("a defect");
        var quiet = Captured(() => Cli.Program.Guarded("model.onnx", verbose: false, Fails));
        FailsWith("MG9000", quiet);
        Assert.StartsWith("model.onnx: error MG9000: ", quiet.Stderr);
        Assert.Contains("InvalidOperationException: a defect", quiet.Stderr);
        var verbose = Captured(() => Cli.Program.Guarded("model.onnx", verbose: true, Fails));
        Assert.Equal(1, verbose.Exit);
        Assert.Contains("   at ", verbose.Stderr);
        // Every command takes --verbose (not an unknown option, MG0007): each reports the missing model.
        foreach (string command in new[] { "compile", "inspect", "bench" })
            FailsWith("MG0001", Modelgen(command, "/no/such/model.onnx", "--verbose"));
    }

    [Fact]
    public void AFailedWriteDeletesItsTemporaryFileAndIsMG1101()
    {
        string dir = Directory.CreateTempSubdirectory("modelgen-write").FullName;
        string lenet300 = TestData.Mnist("lenet300.onnx");
        // The generated file's name taken by a folder: the temporary file is written, then the rename fails.
        string taken = Directory.CreateDirectory(Path.Combine(dir, "Net.g.cs")).FullName;
        FailsWith("MG1101", Modelgen("compile", lenet300, "--class", "Net", "--out", dir));
        Assert.Equal([taken], Directory.GetFileSystemEntries(dir));
        Assert.Empty(Directory.GetFileSystemEntries(taken));
        if (!File.Exists("/dev/full")) return;
        // A device as the output: refused before any work, neither read (it never ends) nor renamed over (as root, that
        // would replace the device), and no report or temporary file beside it.
        foreach (string[] outputs in new[] { new[] { "--artifact", "/dev/full" }, ["--out", dir, "--emit-onnx", "/dev/full"] })
        {
            FailsWith("MG1101", Modelgen(["compile", lenet300, "--class", "Net", .. outputs]));
            Assert.Equal(0, new FileInfo("/dev/full").Length);
            Assert.False(File.Exists("/dev/full.tmp"));
        }
    }

    /// <summary>The doc comment text from the line starting with <paramref name="start"/> to the end of its sentence, its lines joined (the emitter wraps long lines).</summary>
    static string DocSentence(string source, string start)
    {
        var lines = source.Split('\n').SkipWhile(l => !l.Contains(start)).Select(l => l.Trim().TrimStart('/').Trim());
        var sentence = new List<string>();
        foreach (var line in lines)
        {
            sentence.Add(line);
            if (line.EndsWith('.') || line.EndsWith("</summary>")) break;
        }
        return "/// " + string.Join(" ", sentence);
    }
}
