using MathNet.Numerics.LinearAlgebra;
using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Tests.Support;
using Xunit;

namespace ModelGen.Tests.LowRank;

/// <summary>The compression report of a factorized model: a row per original layer with both halves' bytes, and the layers that stay.</summary>
public class LowRankReportTests
{
    /// <summary>
    /// LeNet-300-100 at rank:95: the first layer (784 → 300) takes 95·(784 + 300) weights against 784·300; the second
    /// (300 → 100) would take 95·400 = 38,000 against 30,000 and the third (100 → 10, rank 10 at most) 10·110 = 1,100
    /// against 1,000: they stay, and the report says why. The factorized row's SQNR is the kept energy over the discarded.
    /// </summary>
    [Fact]
    public void TheReportGivesAFactorizedLayerOneRowWithBothHalvesBytesAndSaysWhichStay()
    {
        string calibration = TestData.Mnist("calibration-256.npy");
        var plain = new CompileOptions { ModelPath = TestData.Mnist("lenet300.onnx"), CalibrationUint8Scale = 255, CalibrationPath = calibration };
        var original = ModelCompiler.Prepare(plain);
        var layers = original.Nodes.Where(n => n.OpType == "Dense").ToList();
        Assert.Equal(3, layers.Count);
        var options = plain with { LowRank = "rank:95" };
        var compiled = ModelCompiler.Compile(options, null, out var prepared);
        var report = CompressionReport.Create(options, compiled, calibration, null, null, prepared);

        Assert.Equal(layers.Select(l => l.Name), report.Layers.Select(l => l.Node));
        var first = report.Layers[0];
        Assert.Equal(784 * 300 * 4L, first.BytesBefore);
        Assert.Equal(95 * (784 + 300) * 4L, first.BytesAfter);
        Assert.StartsWith("low rank: 784→300 rank 95, float32", first.Precision);
        var w = original[layers[0].Inputs[1]].Constant!.Floats;
        var singular = Matrix<double>.Build.Dense(300, 784, (i, j) => w[i * 784 + j]).Svd(false).S.ToArray();
        double sqnr = 10 * Math.Log10(singular.Sum(s => s * s) / singular.Skip(95).Sum(s => s * s));
        Assert.True(Math.Abs(first.SqnrDb - sqnr) < 0.05, $"SQNR {first.SqnrDb} dB against {sqnr} dB from the spectrum");
        Assert.Equal("float32 (low rank: stays whole, rank 95 takes 38,000 weights against 30,000)", report.Layers[1].Precision);
        Assert.Equal("float32 (low rank: stays whole, rank 10 takes 1,100 weights against 1,000)", report.Layers[2].Precision);
        Assert.Equal(report.Layers[1].BytesBefore, report.Layers[1].BytesAfter);
        Assert.Contains($"compression none, low rank rank 95: {layers[0].Name} rank 95 (2 layers stay whole): weights", report.Summary());
        Assert.Contains($"| {layers[0].Name} | Gemm | low rank: 784→300 rank 95, float32 | 940,800 | 411,920 |", report.Markdown());
        Assert.Contains("\"lowRank\": \"rank 95:", report.Json());
    }
}
