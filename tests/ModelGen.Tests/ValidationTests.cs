using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Data;
using ModelGen.Onnx;
using ModelGen.Onnx.Proto;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// Values from outside are checked, each failure a coded error naming the file and leaving nothing
/// behind: calibration data, labels, budgets, namespaces; and names and text from a model stay
/// harmless in the generated code however long or strange they are.
/// </summary>
[Collection("Console")]
public sealed class ValidationTests
{
    static string Dir() => Directory.CreateTempSubdirectory("modelgen-valid").FullName;

    static string Write(string dir, string name, byte[] bytes)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Runs <c>modelgen</c>; its exit code and what it wrote on stderr.</summary>
    static (int Exit, string Stderr) Run(params string[] args)
    {
        var stderr = new StringWriter();
        var old = Console.Error;
        Console.SetError(stderr);
        try { return (Cli.Program.Main(args), stderr.ToString()); }
        finally { Console.SetError(old); }
    }

    /// <summary>lenet300 compiled in int8-weights with its report: the options the data checks run under.</summary>
    static string[] Compress(string dir, string calibration, params string[] more) =>
        ["compile", TestData.Mnist("lenet300.onnx"), "--compression", "int8-weights", "--calibration", calibration, "--artifact", Path.Combine(dir, "out", "m.mgen"), .. more];

    static void AssertNothingWritten(string dir) => Assert.False(Directory.Exists(Path.Combine(dir, "out")) && Directory.EnumerateFileSystemEntries(Path.Combine(dir, "out")).Any(),
        "no artifact or report may be left behind");

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.PositiveInfinity, "Infinity")]
    [InlineData(float.NegativeInfinity, "-Infinity")]
    public void NonFiniteCalibrationValuesAreMG0201NamingTheFileInputSampleAndValue(float value, string shown)
    {
        string dir = Dir();
        var pixels = new float[3 * 4];
        pixels[4 + 2] = value; // sample 1, element 2
        string path = Write(dir, "data.npy", NpyReaderTests.Npy("<f4", "(3, 1, 2, 2)", NpyReaderTests.Floats(pixels)));
        var e = Assert.Throws<ModelGenException>(() => CalibrationData.Load(path, [new DataInput("image", [1, 1, 2, 2])]));
        Assert.Equal(ErrorCodes.DataFileInvalid, e.Code);
        Assert.Equal(path, e.File);
        Assert.Contains($"input 'image' sample 1 holds {shown} (element 2", e.Message);

        // In a build: the error before any report or artifact, for int4 (GPTQ) and for the report's figures alike.
        var mnist = new float[2 * 784];
        mnist[784 + 100] = value;
        string calibration = Write(dir, "mnist.npy", NpyReaderTests.Npy("<f4", "(2, 1, 28, 28)", NpyReaderTests.Floats(mnist)));
        foreach (string compression in new[] { "int4-weights", "int8-weights" })
        {
            var (exit, stderr) = Run(["compile", TestData.Mnist("lenet300.onnx"), "--compression", compression, "--calibration", calibration, "--artifact", Path.Combine(dir, "out", "m.mgen")]);
            Assert.Equal(1, exit);
            Assert.Contains($"{calibration}: error MG0201: input 'image' sample 1 holds {shown}", stderr);
            AssertNothingWritten(dir);
        }
    }

    [Theory]
    [InlineData("<i8", 99L)]
    [InlineData("<i8", -1L)]
    [InlineData("<i8", 1L << 62)]
    [InlineData("<f8", double.NaN)]
    [InlineData("<f8", 2.5)]
    [InlineData("<f8", double.PositiveInfinity)]
    public void LabelsMustBeClassIndicesOfTheModel(string dtype, object bad)
    {
        string dir = Dir();
        var values = Enumerable.Range(0, 256).Select(i => (double)(i % 10)).ToArray();
        byte[] Bytes(int i) => i == 7
            ? dtype == "<i8" ? BitConverter.GetBytes(Convert.ToInt64(bad, CultureInfo.InvariantCulture)) : BitConverter.GetBytes(Convert.ToDouble(bad, CultureInfo.InvariantCulture))
            : dtype == "<i8" ? BitConverter.GetBytes((long)values[i]) : BitConverter.GetBytes(values[i]);
        string labels = Write(dir, "labels.npy", NpyReaderTests.Npy(dtype, "(256,)", [.. Enumerable.Range(0, 256).SelectMany(Bytes)]));

        var (exit, stderr) = Run(Compress(dir, TestData.Mnist("calibration-256.npy"), "--labels", labels));
        Assert.Equal(1, exit);
        Assert.Contains($"{labels}: error MG0201: label 7 is ", stderr);
        Assert.Contains("a whole number from 0 to 9 (the model's output has 10 classes)", stderr);
        AssertNothingWritten(dir);
    }

    [Fact]
    public void LabelsCountMustBeTheSampleCount()
    {
        // 2,000 test labels for the 256 calibration digits: an error, not an accuracy of 11.72%.
        string dir = Dir();
        var (exit, stderr) = Run(Compress(dir, TestData.Mnist("calibration-256.npy"), "--labels", TestData.Mnist("test-labels.npy")));
        Assert.Equal(1, exit);
        Assert.Contains($"{TestData.Mnist("test-labels.npy")}: error MG0201: 2000 labels for 256 calibration samples", stderr);
        AssertNothingWritten(dir);

        // Over the evaluator's 1,000 samples: labels and samples are cut alike, so 2,000 of each is right.
        var e = Assert.Throws<ModelGenException>(() => CalibrationData.LoadLabels(TestData.Mnist("test-labels.npy"), 1999, 10));
        Assert.Contains("2000 labels for 1999 calibration samples", e.Message);
        Assert.Equal(2000, CalibrationData.LoadLabels(TestData.Mnist("test-labels.npy"), 2000, 10).Length);
    }

    [Theory]
    [InlineData("200%")]
    [InlineData("100.5%")]
    [InlineData("Infinity")]
    [InlineData("NaN")]
    [InlineData("NaN%")]
    [InlineData("1e400")]
    [InlineData("1e400%")]
    [InlineData("-1")]
    [InlineData("-0.5%")]
    [InlineData("half")]
    public void BudgetsOutOfRangeAreMG0007WithTheValidRange(string budget)
    {
        string dir = Dir();
        foreach (string compression in new[] { "int8-weights", "mixed-weights" })
        {
            var (exit, stderr) = Run(["compile", TestData.Mnist("lenet300.onnx"), "--compression", compression, "--calibration", TestData.Mnist("calibration-256.npy"),
                "--artifact", Path.Combine(dir, "out", "m.mgen"), "--accuracy-budget", budget]);
            Assert.Equal(1, exit);
            Assert.Contains($"{TestData.Mnist("lenet300.onnx")}: error MG0007: AccuracyBudget '{budget}' is out of range: give a top-1 drop in percent from 0% to 100%", stderr);
            Assert.Contains("an output error bound, a finite number from 0", stderr);
            AssertNothingWritten(dir);
        }
        Assert.Equal((true, 0.005), Compiler.Compress.CompressionReport.ParseBudget("0.5%", "m"));
        Assert.Equal((true, 1.0), Compiler.Compress.CompressionReport.ParseBudget("100%", "m"));
        Assert.Equal((false, 0.0), Compiler.Compress.CompressionReport.ParseBudget("0", "m"));
    }

    [Theory]
    [InlineData("class.Foo")]
    [InlineData("My.class")]
    [InlineData("My..Models")]
    [InlineData(".My")]
    [InlineData("My.")]
    [InlineData("9lives")]
    [InlineData("My-Models")]
    [InlineData("My.Mod\u202Eels")]
    [InlineData("global.My")]
    [InlineData("@")]
    [InlineData("My.@9")]
    public void InvalidNamespacesAreRefusedNotRewritten(string ns)
    {
        string dir = Dir();
        string model = new OnnxBuilder().Input("x", 1, 4).Node("Relu", ["x"], ["y"]).Output("y").Save();
        var (exit, stderr) = Run(["compile", model, "--namespace", ns, "--out", Path.Combine(dir, "out"), "--artifact", Path.Combine(dir, "out", "m.mgen")]);
        Assert.Equal(1, exit);
        Assert.Contains($"{model}: error MG0007: namespace '{ns}' is not a C# namespace", stderr);
        AssertNothingWritten(dir);
    }

    [Fact]
    public void KeywordsAreNamespacePartsWithAnAtAndLettersOfAnyScriptAreTaken()
    {
        string model = new OnnxBuilder().Input("x", 1, 4).Node("Relu", ["x"], ["y"]).Output("y").Save();
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = model, ClassName = "Net", Namespace = "My.@class.record.@global" });
        Assert.Equal("My.@class.record.@global", artifact.Namespace);
        // Letters of any script, as a project's RootNamespace may have them.
        var unicode = ModelCompiler.Compile(new CompileOptions { ModelPath = model, ClassName = "Net", Namespace = "Mod\u00e8les.\u00dcberweisung_1" });
        var models = GeneratedModels.Build(artifact, unicode); // compiles without warnings
        Assert.Equal("My.class.record.global", models.ModelType(artifact).Namespace);
        Assert.Equal("Mod\u00e8les.\u00dcberweisung_1", models.ModelType(unicode).Namespace);
    }

    [Fact]
    public void LongNamesAreCappedAndStayDistinct()
    {
        // Two 100,000-character names that differ only in their last character.
        string a = new('a', 100_000), b = new string('a', 99_999) + "b";
        string model = new OnnxBuilder().Input(a, 1, 3).Node("Relu", [a], [b + "x"]).Node("Neg", [a], [b]).Output(b + "x").Output(b).Save(new string('m', 200) + ".onnx");
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = model });
        var names = artifact.Inputs.Concat(artifact.Outputs).Select(p => p.Parameter).Append(artifact.ClassName).ToList();
        Assert.All(names, n => Assert.InRange(n.Length, 1, Identifiers.MaxLength + 1));
        Assert.Equal(names.Count, names.Distinct().Count());
        var models = GeneratedModels.Build(artifact); // CS7013 (names over 512 characters) if not capped
        var y1 = new float[3];
        var y2 = new float[3];
        models.Run(artifact, [new[] { -1f, 2f, -3f }], [y1, y2]);
        Assert.Equal([0f, 2f, 0f], y1);
        Assert.Equal([1f, -2f, 3f], y2);
        // The same name gives the same identifier on every run and machine.
        Assert.Equal(Identifiers.Camel(a), Identifiers.Camel(new string('a', 100_000)));
        Assert.NotEqual(Identifiers.Pascal(a), Identifiers.Pascal(b));
    }

    [Fact]
    public void BidiAndOtherControlCharactersReachTheGeneratedCodeOnlyEscaped()
    {
        const string rlo = "\u202E", isolate = "\u2066", zeroWidth = "\u200B";
        string input = "x" + rlo + "gnp.exe", output = "y" + isolate + "\u0007";
        var b = new OnnxBuilder().Input(input, 1, 3).Node("Relu", [input], [output]).NamedLast("node" + rlo + zeroWidth).Output(output);
        b.Model.ProducerName = "tool" + rlo;
        b.Model.DocString = "doc" + rlo;
        string model = b.Save("bidi" + rlo + ".onnx");
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = model, ClassName = "Bidi", Namespace = "Escaped" });
        var models = GeneratedModels.Build(artifact);
        string source = models.Sources["Escaped.Bidi.g.cs"];
        Assert.DoesNotContain(source, c => char.GetUnicodeCategory(c) is UnicodeCategory.Format or UnicodeCategory.Surrogate
            || char.IsControl(c) && c != '\n');
        Assert.Contains("x\\u202Egnp.exe", source);
        Assert.Contains("y\\u2066\\u0007", source);
        Assert.Contains("node\\u202E\\u200B", source);
        Assert.Contains("tool\\u202E", source);
    }

    [Fact]
    public void AFloat64InitializerAddedToAFloat32InputIsMG1002AsInOnnxRuntime()
    {
        var b = new OnnxBuilder().Input("x", 1, 3).Node("Add", ["x", "w"], ["y"]).NamedLast("add_w").Output("y");
        var w = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Double };
        w.Dims.Add(3);
        w.DoubleData.AddRange([1, 2, 3]);
        b.Model.Graph.Initializer.Add(w);
        string model = b.Save();
        Assert.ThrowsAny<OnnxRuntimeException>(() => new OnnxRuntimeOracle(model).Dispose());
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = model }));
        Assert.Equal(ErrorCodes.UnsupportedDataType, e.Code);
        Assert.Equal(model, e.File);
        Assert.Contains("node 'add_w' (Add) takes inputs of different element types ('x' float, 'w' double)", e.Message);

        // Carried through a node that keeps its input's type: Relu(w) is float64 too.
        var c = new OnnxBuilder().Input("x", 1, 3).Node("Relu", ["w"], ["r"]).Node("Mul", ["r", "x"], ["y"]).NamedLast("mul_r").Output("y");
        c.Model.Graph.Initializer.Add(w);
        e = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = c.Save() }));
        Assert.Contains("node 'mul_r' (Mul)", e.Message);
    }

    [Fact]
    public void TwoGraphInputsWithOneNameAreMG1005AsInOnnxRuntime()
    {
        string model = new OnnxBuilder().Input("x", 1, 3).Input("x", 1, 3).Node("Relu", ["x"], ["y"]).Output("y").Save();
        Assert.ThrowsAny<OnnxRuntimeException>(() => new OnnxRuntimeOracle(model).Dispose());
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = model }));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Equal(model, e.File);
        Assert.Contains("graph input 'x' is listed twice", e.Message);
    }
}
