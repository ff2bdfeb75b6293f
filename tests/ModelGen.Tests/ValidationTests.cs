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
}
