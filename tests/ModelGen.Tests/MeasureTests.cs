using ModelGen.Compiler;
using ModelGen.Compiler.Compress;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// Measures that fit the output (issue 19): a single sigmoid output is judged by its decisions at a threshold, a
/// regression output by its error. The oracle: ONNX Runtime on the original model, and the int8-weights model's
/// weights computed here from the rule (per output channel, max |w| / 127, round half to even).
/// </summary>
public sealed class MeasureTests
{
    const int K = 16, Samples = 200;

    static float[] Int8Weights(float[] w, int n, int k)
    {
        var q = new float[w.Length];
        for (int j = 0; j < n; j++)
        {
            float max = 0;
            for (int i = 0; i < k; i++) max = Math.Max(max, Math.Abs(w[j * k + i]));
            float scale = max / 127f;
            for (int i = 0; i < k; i++) q[j * k + i] = Math.Clamp(MathF.Round(w[j * k + i] / scale, MidpointRounding.ToEven), -127, 127) * scale;
        }
        return q;
    }

    static string Save(float[] data, int samples, int width)
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("modelgen-measure").FullName, "data.npy");
        File.WriteAllBytes(path, NpyReaderTests.Npy("<f4", $"({samples}, {width})", [.. data.SelectMany(BitConverter.GetBytes)]));
        return path;
    }

    static string SaveLabels(long[] labels)
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("modelgen-measure").FullName, "labels.npy");
        File.WriteAllBytes(path, NpyReaderTests.Npy("<i8", $"({labels.Length},)", [.. labels.SelectMany(BitConverter.GetBytes)]));
        return path;
    }

    /// <summary>x[1, 16] · W[16, 1] + b → Sigmoid: a wake-word-like head with one probability.</summary>
    static (string Model, float[] W, float B) BinaryModel()
    {
        var w = OnnxBuilder.Random(K, 19).Select((v, i) => v * (1 + i % 5)).ToArray(); // uneven magnitudes: int8 rounding moves the logit
        const float b = 0.1f;
        string model = new OnnxBuilder()
            .Input("x", 1, K).Output("y", 1, 1)
            .Initializer("W", [K, 1], w).Initializer("B", [1], [b])
            .Node("MatMul", ["x", "W"], ["xw"]).Node("Add", ["xw", "B"], ["logit"]).Node("Sigmoid", ["logit"], ["y"])
            .Save();
        return (model, w, b);
    }

    /// <summary>Random samples, and 6 placed between the original's and the int8 model's decision boundaries: each flips at 0.5.</summary>
    static float[] BinaryData(float[] w, float b)
    {
        var q = Int8Weights(w, 1, K); // W is [K, 1]: one output channel
        var x = OnnxBuilder.Random(Samples * K, 7);
        for (int s = 0; s < 6; s++)
        {
            // (w + q)/2 · x + b = 0 puts the original logit at d/2 and the int8 one at −d/2, d = (w − q)·x.
            double rest = b;
            for (int i = 1; i < K; i++) rest += (w[i] + q[i]) / 2.0 * x[s * K + i];
            x[s * K] = (float)(-rest / ((w[0] + q[0]) / 2.0));
        }
        return x;
    }

    static (int[] Original, int[] Int8) Decisions(string model, float[] w, float b, float[] x, double threshold)
    {
        using var ort = new OnnxRuntimeOracle(model);
        var q = Int8Weights(w, 1, K);
        var original = new int[Samples];
        var int8 = new int[Samples];
        for (int s = 0; s < Samples; s++)
        {
            original[s] = ort.Run(("x", x[(s * K)..((s + 1) * K)], [1, K]))[0][0] > threshold ? 1 : 0;
            double logit = b;
            for (int i = 0; i < K; i++) logit += (double)q[i] * x[s * K + i];
            int8[s] = 1 / (1 + Math.Exp(-logit)) > threshold ? 1 : 0;
        }
        return (original, int8);
    }

    [Fact]
    public void ASigmoidOutputIsMeasuredByItsDecisionsAndAZeroBudgetFailsWhenOneFlips()
    {
        var (model, w, b) = BinaryModel();
        var x = BinaryData(w, b);
        string data = Save(x, Samples, K);
        var (original, int8) = Decisions(model, w, b, x, 0.5);
        int flips = original.Zip(int8).Count(p => p.First != p.Second);
        Assert.True(flips >= 6, $"{flips} flips: the data should place 6 samples between the boundaries");

        var options = new CompileOptions { ModelPath = model, Compression = "int8-weights" };
        var artifact = ModelCompiler.Compile(options);
        var report = CompressionReport.Create(options, artifact, data, null, "0%");
        Assert.Equal(OutputMeasure.Binary, report.Measure.Kind);
        Assert.Equal(Samples, report.Samples);
        Assert.Equal(flips, report.Samples - report.SameTop1);
        Assert.False(report.BudgetMet);
        Assert.Contains($"{flips} of {Samples} decisions flip", report.Summary(), StringComparison.Ordinal);
        Assert.Contains("threshold 0.5", report.Summary(), StringComparison.Ordinal);
        // The flip rate itself is a budget that holds.
        Assert.True(CompressionReport.Create(options, artifact, data, null, FormattableString.Invariant($"{100.0 * flips / Samples + 0.01}%")).BudgetMet);

        // The build's error: MG3001 and no artifact.
        string dir = Directory.CreateTempSubdirectory("modelgen-measure").FullName;
        string mgen = Path.Combine(dir, "binary.mgen");
        var stderr = new StringWriter();
        var old = Console.Error;
        Console.SetError(stderr);
        int exit;
        try { exit = Cli.Program.Main(["compile", model, "--compression", "int8-weights", "--calibration", data, "--accuracy-budget", "0%", "--artifact", mgen]); }
        finally { Console.SetError(old); }
        Assert.Equal(1, exit);
        Assert.Contains("error MG3001: ", stderr.ToString(), StringComparison.Ordinal);
        Assert.Contains("decisions flip", stderr.ToString(), StringComparison.Ordinal);
        Assert.False(File.Exists(mgen));
    }

    [Fact]
    public void BinaryLabelsGiveAccuracyAndTheThresholdIsOverridable()
    {
        var (model, w, b) = BinaryModel();
        var x = BinaryData(w, b);
        string data = Save(x, Samples, K);
        var (original, int8) = Decisions(model, w, b, x, 0.5);
        // Labels: the original's decisions, but the first 20 wrong.
        long[] labels = [.. original.Select((d, s) => (long)(s < 20 ? 1 - d : d))];
        var options = new CompileOptions { ModelPath = model, Compression = "int8-weights" };
        var artifact = ModelCompiler.Compile(options);
        var report = CompressionReport.Create(options, artifact, data, SaveLabels(labels), null);
        Assert.Equal(labels.Zip(original).Count(p => p.First == p.Second), report.CorrectOriginal);
        Assert.Equal(labels.Zip(int8).Count(p => p.First == p.Second), report.CorrectCompressed);
        Assert.Contains("accuracy ", report.Summary(), StringComparison.Ordinal);

        // A label that is not 0 or 1 is MG0201.
        var bad = Assert.Throws<ModelGen.Onnx.ModelGenException>(() => CompressionReport.Create(options, artifact, data, SaveLabels([.. labels.Select((l, s) => s == 3 ? 2L : l)]), null));
        Assert.Equal("MG0201", bad.Code);

        // Another threshold: the decisions at 0.7, by the oracle.
        var (original7, int87) = Decisions(model, w, b, x, 0.7);
        var at7 = CompressionReport.Create(options with { Measure = "binary:0.7" }, artifact, data, null, null);
        Assert.Equal(0.7, at7.Measure.Threshold);
        Assert.Equal(original7.Zip(int87).Count(p => p.First != p.Second), at7.Samples - at7.SameTop1);
        Assert.Contains("threshold 0.7", at7.Summary(), StringComparison.Ordinal);

        // Classification forced on one value: top-1 of one class always agrees (what the report said before).
        Assert.Equal(at7.Samples, CompressionReport.Create(options with { Measure = "classification" }, artifact, data, null, null).SameTop1);
        var unknown = Assert.Throws<ModelGen.Onnx.ModelGenException>(() => OutputMeasure.Parse("binary:x", model));
        Assert.Equal("MG0007", unknown.Code);
    }

    [Fact]
    public void ALinearOutputIsMeasuredAsRegressionAgainstTheOutputsRange()
    {
        // 1 → 16 → 16 → 1 with ReLU, as the TFLite Micro sine model: no Sigmoid, so regression.
        var w1 = OnnxBuilder.Random(16, 3); var b1 = OnnxBuilder.Random(16, 4);
        var w2 = OnnxBuilder.Random(256, 5); var b2 = OnnxBuilder.Random(16, 6);
        var w3 = OnnxBuilder.Random(16, 8); float[] b3 = [0.25f];
        string Build(float[] a, float[] c, float[] e) => new OnnxBuilder()
            .Input("x", 1, 1).Output("y", 1, 1)
            .Initializer("W1", [1, 16], a).Initializer("B1", [16], b1).Initializer("W2", [16, 16], c).Initializer("B2", [16], b2)
            .Initializer("W3", [16, 1], e).Initializer("B3", [1], b3)
            .Node("MatMul", ["x", "W1"], ["h1"]).Node("Add", ["h1", "B1"], ["a1"]).Node("Relu", ["a1"], ["r1"])
            .Node("MatMul", ["r1", "W2"], ["h2"]).Node("Add", ["h2", "B2"], ["a2"]).Node("Relu", ["a2"], ["r2"])
            .Node("MatMul", ["r2", "W3"], ["h3"]).Node("Add", ["h3", "B3"], ["y"])
            .Save();
        // ONNX stores MatMul weights [in, out]; the per-output-channel rule applies to W transposed.
        static float[] T(float[] m, int rows, int cols) { var t = new float[m.Length]; for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c]; return t; }
        static float[] Q(float[] m, int rows, int cols) => T(Int8Weights(T(m, rows, cols), cols, rows), cols, rows);
        string model = Build(w1, w2, w3), quantized = Build(Q(w1, 1, 16), Q(w2, 16, 16), Q(w3, 16, 1));
        var x = Enumerable.Range(0, Samples).Select(i => (float)(2 * Math.PI * i / Samples)).ToArray();
        string data = Save(x, Samples, 1);

        using var a = new OnnxRuntimeOracle(model);
        using var bq = new OnnxRuntimeOracle(quantized);
        double worst = 0, sumSquares = 0, min = double.MaxValue, max = double.MinValue;
        foreach (float v in x)
        {
            double ya = a.Run(("x", [v], [1, 1]))[0][0], yb = bq.Run(("x", [v], [1, 1]))[0][0];
            worst = Math.Max(worst, Math.Abs(ya - yb));
            sumSquares += (ya - yb) * (ya - yb);
            (min, max) = (Math.Min(min, ya), Math.Max(max, ya));
        }
        Assert.True(worst > 0);

        var options = new CompileOptions { ModelPath = model, Compression = "int8-weights" };
        var artifact = ModelCompiler.Compile(options);
        var report = CompressionReport.Create(options, artifact, data, null, null);
        Assert.Equal(OutputMeasure.Regression, report.Measure.Kind);
        Assert.Equal(Samples, report.EvaluatedSamples);
        Assert.Equal(worst, report.WorstOutputError, 1e-5);
        Assert.Equal(max - min, report.OutputRange, 1e-5);
        Assert.Equal(Math.Sqrt(sumSquares / Samples), report.Rmse, 1e-5);
        Assert.Contains("(regression) worst output error", report.Summary(), StringComparison.Ordinal);
        Assert.DoesNotContain("top-1", report.Summary(), StringComparison.Ordinal);
        // A budget in percent bounds the worst error relative to the range.
        double relative = 100 * worst / (max - min);
        Assert.True(CompressionReport.Create(options, artifact, data, null, FormattableString.Invariant($"{relative * 1.01}%")).BudgetMet);
        Assert.False(CompressionReport.Create(options, artifact, data, null, FormattableString.Invariant($"{relative * 0.99}%")).BudgetMet);
        // Labels make no sense for a regression: MG0007 naming the file.
        var error = Assert.Throws<ModelGen.Onnx.ModelGenException>(() => CompressionReport.Create(options, artifact, data, SaveLabels([.. Enumerable.Repeat(0L, Samples)]), null));
        Assert.Equal("MG0007", error.Code);
    }
}

/// <summary>Progress of the long steps: reported by the compressor, shown throttled in the build log.</summary>
public sealed class ProgressTests
{
    sealed class Recorder : IProgress<CompileProgress>
    {
        public readonly List<CompileProgress> Reports = [];
        public void Report(CompileProgress value) { lock (Reports) Reports.Add(value); }
    }

    [Fact]
    public void Int4ReportsItsActivationsAndEachLayersReconstruction()
    {
        var recorder = new Recorder();
        ModelCompiler.Prepare(new CompileOptions
        {
            ModelPath = TestData.Mnist("lenet300.onnx"), Compression = "int4-weights", CalibrationPath = TestData.Mnist("calibration-256.npy"), Progress = recorder,
        });
        var gptq = recorder.Reports.Where(r => r.Phase == "int4 GPTQ").ToList();
        Assert.Equal([1, 2, 3], gptq.Select(r => r.Done));
        Assert.All(gptq, r => Assert.Equal(3, r.Total));
        Assert.Equal(["/f1/Gemm", "/f2/Gemm", "/f3/Gemm"], gptq.Select(r => r.Item));
        var activations = recorder.Reports.Where(r => r.Phase == "int4 activations").ToList();
        Assert.Equal(256, activations.Count);
        Assert.Equal(256, activations[^1].Done);
    }

    [Fact]
    public void PlainLinesAreThrottledToOneEveryTwoSecondsAndQuickPhasesStaySilent()
    {
        var now = TimeSpan.Zero;
        var output = new StringWriter();
        var progress = new Cli.ConsoleProgress(output, live: false, () => now);
        // A phase over within two seconds: nothing.
        for (int i = 1; i <= 10; i++) { now += TimeSpan.FromMilliseconds(150); progress.Report(new CompileProgress("quick", i, 10)); }
        Assert.Equal("", output.ToString());
        // A long one, a step every 0.5 s for 10 s: a line at 2, 4, 6, 8 s and the last.
        for (int i = 1; i <= 20; i++) { now += TimeSpan.FromMilliseconds(500); progress.Report(new CompileProgress("int4 GPTQ", i, 20, $"layer{i}")); }
        string[] lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["modelgen: int4 GPTQ: 5 of 20 (layer5), 2 s", "modelgen: int4 GPTQ: 9 of 20 (layer9), 4 s", "modelgen: int4 GPTQ: 13 of 20 (layer13), 6 s",
            "modelgen: int4 GPTQ: 17 of 20 (layer17), 8 s", "modelgen: int4 GPTQ: 20 of 20 (layer20), 10 s"], lines.Select(l => l.TrimEnd('\r')));
    }

    [Fact]
    public void OnATerminalOneLineIsRewrittenAndAFinishedLongPhaseStays()
    {
        var now = TimeSpan.Zero;
        var output = new StringWriter();
        var progress = new Cli.ConsoleProgress(output, live: true, () => now);
        for (int i = 1; i <= 30; i++) { now += TimeSpan.FromMilliseconds(100); progress.Report(new CompileProgress("report", i, 30)); }
        string text = output.ToString();
        Assert.Equal(30, text.Count(c => c == '\r')); // one rewrite per update, ten a second
        Assert.EndsWith("modelgen: report: 30 of 30, 3 s" + Environment.NewLine, text, StringComparison.Ordinal);
    }
}
