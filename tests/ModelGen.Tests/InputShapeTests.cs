using ModelGen.Compiler;
using ModelGen.Onnx;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// InputShape (--input-shape) fixes symbolic sizes beyond the batch (issue 19): audio models with [batch, samples] and
/// [batch, sequence, features] inputs compile and agree with ONNX Runtime; every misuse is a coded error naming the input.
/// </summary>
public sealed class InputShapeTests
{
    /// <summary>A 440 Hz tone, a 3 kHz one and seeded noise: energy in several mel bands, silence-level floors in others.</summary>
    static float[] Audio(int batch, int samples)
    {
        var noise = OnnxBuilder.Random(batch * samples, 19);
        var signal = new float[batch * samples];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < samples; t++)
                signal[b * samples + t] = (float)(0.5 * Math.Sin(2 * Math.PI * 440 * (b + 1) * t / 16000) + 0.2 * Math.Sin(2 * Math.PI * 3000 * t / 16000)) + 0.05f * noise[b * samples + t];
        return signal;
    }

    [Theory]
    [InlineData("audio:1x16000", 1, 16000)]
    [InlineData("audio:2x8000", 2, 8000)]
    [InlineData("1x4000", 1, 4000)] // the bare form: the model has one input
    public void MelSpectrogramWithItsSampleCountFixedMatchesOnnxRuntime(string inputShape, int batch, int samples)
    {
        string path = TestData.Audio("mel.onnx");
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "Mel", Namespace = "Audio", InputShape = inputShape });
        int frames = (samples - 128) / 64 + 1;
        Assert.Equal([batch, samples], artifact.Tensors[artifact.Inputs[0].Tensor].Shape);
        Assert.Equal([batch, frames, 40], artifact.Tensors[artifact.Outputs[0].Tensor].Shape);
        var models = GeneratedModels.Build(artifact);
        float[] signal = Audio(batch, samples);
        using var ort = new OnnxRuntimeOracle(path);
        float[] expected = ort.Run(("audio", signal, [batch, samples]))[0];
        Assert.Equal(batch * frames * 40, expected.Length);
        var actual = new float[expected.Length];
        models.Run(artifact, [signal], [actual]);
        // The log of a power summed over 128 taps: 1e-4 relative, as for every float32 model.
        Tolerance.AssertClose(expected, actual, $"mel {inputShape}");
        Assert.True(expected.Max() - expected.Min() > 10, "the test signal spans the mel bands' range"); // not a constant floor
    }

    [Theory]
    [InlineData("features:1x100x40", 1, 100)]
    [InlineData("features:3x7x40", 3, 7)]
    public void VoiceActivityHeadWithItsSequenceFixedMatchesOnnxRuntime(string inputShape, int batch, int sequence)
    {
        string path = TestData.Audio("vad.onnx");
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "Vad", Namespace = "Audio", InputShape = inputShape });
        var models = GeneratedModels.Build(artifact);
        float[] features = OnnxBuilder.Random(batch * sequence * 40, 7);
        using var ort = new OnnxRuntimeOracle(path);
        float[] expected = ort.Run(("features", features, [batch, sequence, 40]))[0];
        var actual = new float[batch * sequence];
        models.Run(artifact, [features], [actual]);
        Tolerance.AssertClose(expected, actual, $"vad {inputShape}");
    }

    [Fact]
    public void TheCliTakesInputShapeRepeatedOrSeparatedAndWritesTheSameCode()
    {
        string dir = Directory.CreateTempSubdirectory("modelgen-inputshape").FullName;
        // Two inputs sharing a symbolic 'sequence': naming one fixes the other's too.
        var b = new OnnxBuilder().Input("a", null, null, 4).Input("m", null, null, 4).Node("Add", ["a", "m"], ["y"]).Output("y");
        b.Model.Graph.Input[0].Type.TensorType.Shape.Dim[1].DimParam = "sequence";
        b.Model.Graph.Input[1].Type.TensorType.Shape.Dim[1].DimParam = "sequence";
        string path = b.Save();
        Assert.Equal(0, Cli.Program.Main(["compile", path, "--class", "Two", "--input-shape", "a:1x5x4", "--input-shape", "m:1x5x4", "--out", Path.Combine(dir, "repeated")]));
        Assert.Equal(0, Cli.Program.Main(["compile", path, "--class", "Two", "--input-shape", "a:1x5x4;m:1x5x4", "--out", Path.Combine(dir, "separated")]));
        Assert.Equal(0, Cli.Program.Main(["compile", path, "--class", "Two", "--input-shape", "a:1x5x4", "--out", Path.Combine(dir, "shared")]));
        string repeated = File.ReadAllText(Path.Combine(dir, "repeated", "Two.g.cs"));
        Assert.Equal(repeated, File.ReadAllText(Path.Combine(dir, "separated", "Two.g.cs")));
        Assert.Equal(repeated, File.ReadAllText(Path.Combine(dir, "shared", "Two.g.cs")));
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, InputShape = "a:1x5x4" });
        Assert.Equal([1, 5, 4], artifact.Tensors[artifact.Inputs[1].Tensor].Shape);
        // Two different sizes for one name is a contradiction the model forbids.
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = path, InputShape = "a:1x5x4;m:1x6x4" }));
        Assert.Equal(ErrorCodes.InputShapeMismatch, e.Code);
        Assert.Contains("'sequence'", e.Message);
    }

    [Fact]
    public void ASymbolicSizeBeyondTheBatchIsMG1004SayingHowToFixIt()
    {
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = TestData.Audio("mel.onnx") }));
        Assert.Equal(ErrorCodes.DynamicShape, e.Code);
        Assert.Equal(TestData.Audio("mel.onnx"), e.File);
        Assert.Contains("'audio' [batch, samples]", e.Message);
        Assert.Contains("InputShape=\"audio:1x<samples>\"", e.Message);
        Assert.Contains("--input-shape audio:1x<samples>", e.Message);
        // The batch size given goes into the suggestion, fixed sizes as declared.
        var vad = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = TestData.Audio("vad.onnx"), BatchSize = 8 }));
        Assert.Contains("InputShape=\"features:8x<sequence>x40\"", vad.Message);
    }

    [Theory]
    [InlineData("audio:1x0", "MG0007", "size 0 is out of range")]
    [InlineData("audio:1x-5", "MG0007", "'-5' is not a size")]
    [InlineData("audio:1x4294967297", "MG0007", "size 4294967297 is out of range")]
    [InlineData("audio:1x268435457", "MG0007", "out of range")]
    [InlineData("audio:1x16000.5", "MG0007", "is not a size")]
    [InlineData("audio:1,16000", "MG0007", "is not a size")]
    [InlineData("audio:", "MG0007", "gives no dimensions")]
    [InlineData(":1x16000", "MG0007", "has no input name")]
    [InlineData("audio:1x16000;audio:1x8000", "MG0007", "input 'audio' is given twice")]
    [InlineData("1x16000;audio:1x16000", "MG0007", "names no input")]
    [InlineData("voice:1x16000", "MG1008", "input 'voice', which the model does not have; its inputs: audio [batch, samples]")]
    [InlineData("audio:16000", "MG1008", "has 1 dimensions; the model declares 2: [batch, samples]")]
    [InlineData("audio:1x16000x1", "MG1008", "has 3 dimensions")]
    [InlineData("audio:65536x65536", "MG1007", "more than 268435456 elements")]
    public void ABadInputShapeIsACodedErrorNamingTheInput(string inputShape, string code, string text)
    {
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = TestData.Audio("mel.onnx"), InputShape = inputShape }));
        Assert.Equal(code, e.Code);
        Assert.Equal(TestData.Audio("mel.onnx"), e.File);
        Assert.Contains(text, e.Message);
    }

    [Fact]
    public void InputShapeCannotContradictAFixedSizeOrTheBatchSize()
    {
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = TestData.Audio("vad.onnx"), InputShape = "features:1x100x41" }));
        Assert.Equal(ErrorCodes.InputShapeMismatch, e.Code);
        Assert.Contains("gives dimension 2 as 41; the model fixes it at 40", e.Message);
        Assert.Contains("features:1x<sequence>x40", e.Message);
        var batch = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = TestData.Audio("vad.onnx"), InputShape = "features:4x100x40", BatchSize = 2 }));
        Assert.Equal(ErrorCodes.InputShapeMismatch, batch.Code);
        Assert.Contains("BatchSize (--batch-size) is 2", batch.Message);
        // Left at its default, BatchSize yields to InputShape; given and equal, it agrees.
        Assert.Equal([4, 100, 40], Input(new CompileOptions { ModelPath = TestData.Audio("vad.onnx"), InputShape = "features:4x100x40" }));
        Assert.Equal([4, 100, 40], Input(new CompileOptions { ModelPath = TestData.Audio("vad.onnx"), InputShape = "features:4x100x40", BatchSize = 4 }));
        // Two inputs: the bare form is ambiguous.
        string two = new OnnxBuilder().Input("a", 1, 4).Input("b", 1, 4).Node("Add", ["a", "b"], ["y"]).Output("y").Save();
        var bare = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = two, InputShape = "1x4" }));
        Assert.Equal(ErrorCodes.InputShapeMismatch, bare.Code);
        Assert.Contains("the model has 2 inputs (a [1, 4], b [1, 4])", bare.Message);

        static int[] Input(CompileOptions o) { var a = ModelCompiler.Compile(o); return a.Tensors[a.Inputs[0].Tensor].Shape; }
    }

    [Fact]
    public void InspectListsEveryBlockerWithWhatLiftsIt()
    {
        // A symbolic sequence, an int32 input, two unsupported operators (one twice), and a MatMul whose inner
        // dimensions differ: each is listed, not only the first.
        var b = new OnnxBuilder()
            .Input("audio", null, null)
            .Input("x", 1, 4)
            .Input("ids", 1, 3)
            .Initializer("w", [5, 2], new float[10])
            .Node("Einsum", ["audio"], ["e1"]).NamedLast("first_einsum")
            .Node("Einsum", ["e1"], ["e2"]).NamedLast("second_einsum")
            .Node("DFT", ["e2"], ["d"]).NamedLast("fourier")
            .Node("MatMul", ["x", "w"], ["m"]).NamedLast("bad_matmul")
            .Node("Relu", ["m"], ["r"])
            .Output("d").Output("r");
        b.Model.Graph.Input[0].Type.TensorType.Shape.Dim[1].DimParam = "samples";
        b.Model.Graph.Input[2].Type.TensorType.ElemType = (int)Onnx.Proto.TensorProto.Types.DataType.Int32;
        string path = b.Save();
        var r = ModelInspector.Inspect(path);
        var codes = r.Blockers.Select(x => x.Code).ToArray();
        Assert.Equal(["MG1004", "MG1002", "MG1001", "MG1001", "MG1006"], codes);
        Assert.Contains("InputShape=\"audio:1x<samples>\"", r.Blockers[0].Message);
        Assert.Contains("'ids' has element type int32", r.Blockers[1].Message);
        Assert.Contains("operator 'DFT'", r.Blockers[2].Message);
        Assert.Contains("'fourier'", r.Blockers[2].Message);
        Assert.Contains("operator 'Einsum'", r.Blockers[3].Message);
        Assert.Contains("2 nodes 'first_einsum', 'second_einsum'", r.Blockers[3].Message);
        Assert.Contains("'bad_matmul'", r.Blockers[4].Message);

        var stdout = new StringWriter();
        var old = Console.Out;
        Console.SetOut(stdout);
        int exit;
        try { exit = Cli.Program.Main(["inspect", path]); }
        finally { Console.SetOut(old); }
        Assert.Equal(2, exit);
        Assert.Contains("ModelGen cannot compile this model yet: 5 blockers", stdout.ToString());
        Assert.Contains("  MG1004 graph input 'audio'", stdout.ToString());
        Assert.Contains("input      audio [N, samples] (not fixed)", stdout.ToString());
        // Relu reads the failed MatMul: not checked, and said so (Einsum and DFT are blockers themselves).
        Assert.Equal(1, r.Unchecked);
        Assert.Contains("1 node reads what these leave unknown and was not checked", stdout.ToString());

        // With the sample count fixed, that blocker is lifted and the operators' remain.
        var fixedShape = ModelInspector.Inspect(path, inputShape: "audio:1x16000");
        Assert.Equal(["MG1002", "MG1001", "MG1001", "MG1006"], fixedShape.Blockers.Select(x => x.Code).ToArray());
        Assert.Equal([1, 16000], fixedShape.Inputs[0].Shape!);
        // The mel model: blocked by its sample count alone, compilable once it is fixed.
        Assert.Equal(["MG1004"], ModelInspector.Inspect(TestData.Audio("mel.onnx")).Blockers.Select(x => x.Code).ToArray());
        Assert.Equal(11, ModelInspector.Inspect(TestData.Audio("mel.onnx")).Unchecked);
        var mel = ModelInspector.Inspect(TestData.Audio("mel.onnx"), inputShape: "audio:1x16000");
        Assert.Empty(mel.Blockers);
        Assert.Equal(0, mel.Unchecked);
        Assert.Equal([1, 249, 40], mel.Outputs[0].Shape!);
    }

    [Fact]
    public void BenchTakesInputShape()
    {
        var result = Cli.Bench.BenchCommand.Run(new Cli.Bench.BenchCommand.BenchOptions(TestData.Audio("mel.onnx"), null, Uint8Scale: 1, BatchSize: 1, Simd: "auto", Seconds: 0.05, Samples: 1)
        { InputShape = "audio:1x4000" });
        Assert.Equal(0, result.Agreement.OutsideTolerance);
        Assert.True(result.OursSeconds > 0);
    }
}
