using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>What the compression report tells the user beside its figures: suspicious data, limits that applied.</summary>
public sealed class ReportTests
{
    /// <summary>The first <paramref name="count"/> MNIST test digits as uint8 0..255, as the training digits are stored.</summary>
    static string Uint8Digits(int count)
    {
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        byte[] pixels = [.. images.Take(count * 784).Select(v => (byte)Math.Round(v * 255))];
        string path = Path.Combine(Directory.CreateTempSubdirectory("modelgen-report").FullName, "digits-u8.npy");
        File.WriteAllBytes(path, NpyReaderTests.Npy("|u1", $"({count}, 1, 28, 28)", pixels));
        return path;
    }

    [Fact]
    public void Uint8DataTakenAs0To255IsAWarningUntilAScaleIsGiven()
    {
        string model = TestData.Mnist("lenet5.onnx"), data = Uint8Digits(32);
        var options = new CompileOptions { ModelPath = model, Compression = "int8-weights" };
        var artifact = ModelCompiler.Compile(options);

        var raw = CompressionReport.Create(options, artifact, data, null, null);
        string warning = Assert.Single(raw.Warnings);
        Assert.Contains("'image'", warning, StringComparison.Ordinal);
        Assert.Contains("CalibrationScale=\"255\"", warning, StringComparison.Ordinal);
        Assert.Contains(warning, raw.Markdown(), StringComparison.Ordinal);

        var scaled = CompressionReport.Create(options with { CalibrationUint8Scale = 255 }, artifact, data, null, null);
        Assert.Empty(scaled.Warnings);
        // Float data is the model's own business: no warning either.
        Assert.Empty(CompressionReport.Create(options, artifact, TestData.Mnist("calibration-256.npy"), null, null).Warnings);
    }

    [Fact]
    public void TheSampleCapIsStatedWhenItApplies()
    {
        string model = TestData.Mnist("lenet300.onnx");
        var options = new CompileOptions { ModelPath = model, Compression = "int8-weights" };
        var artifact = ModelCompiler.Compile(options);
        var capped = CompressionReport.Create(options, artifact, TestData.Mnist("test-images.npy"), null, null);
        Assert.Equal(CompressionReport.MaxSamples, capped.Samples);
        Assert.Contains("first 1,000 of the 2,000 calibration samples", Assert.Single(capped.Notes), StringComparison.Ordinal);
        Assert.Empty(CompressionReport.Create(options, artifact, TestData.Mnist("calibration-256.npy"), null, null).Notes);
    }
}
