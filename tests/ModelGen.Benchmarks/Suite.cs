using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using ModelGen.Cli.Bench;
using ModelGen.Tests.Support;

/// <summary>
/// The performance suite: every model of the repository, and the third-party models of a shared data folder when
/// one is given, timed by <c>modelgen bench</c> against ONNX Runtime at each SIMD level this processor has, float32
/// and (where the model has data to calibrate on) int8, printed as one Markdown table.
/// The narrower levels run in a child process with the runtime's switches (DOTNET_EnableAVX512F=0, DOTNET_EnableAVX=0):
/// the generated code picks its path from Vector512/256.IsHardwareAccelerated, so they force the AVX2 and SSE paths.
/// </summary>
public static class Suite
{
    /// <summary>A model of the suite: its file, its data (null: pseudo-random inputs), its symbolic sizes fixed.</summary>
    public sealed record Entry(string Name, string Path, string? Data = null, string? InputShape = null, float Uint8Scale = 1);

    public static IReadOnlyList<Entry> Models(string? shared)
    {
        string images = TestData.Mnist("test-images.npy");
        var all = new List<Entry>
        {
            new("lenet5", TestData.Mnist("lenet5.onnx"), images),
            new("lenet300", TestData.Mnist("lenet300.onnx"), images),
            new("dwsep (test CNN)", BenchModels.Path("dwsep"), images),
            new("kws-cnn (tf2onnx shapes)", BenchModels.Path("kws"), RandomData("kws", [1, 76, 32])),
            new("vad", TestData.Audio("vad.onnx"), InputShape: "features:1x100x40"),
            new("mel", TestData.Audio("mel.onnx"), InputShape: "audio:1x16000"),
        };
        if (shared is null) return all;
        string Model(string folder) => System.IO.Path.Combine(shared, folder, "model.onnx");
        var third = new List<Entry>
        {
            // The zoo's mnist-8 was trained on raw 0..255 pixels (its test vectors say so): the digits unscaled.
            new("onnxzoo-mnist-8", Model("onnxzoo-mnist-8"), images),
            new("mobilenetv2-0.5-128", System.IO.Path.Combine(shared, "stm32-mobilenetv2-0.5-128-person", "model.onnx"),
                System.IO.Path.Combine(shared, "stm32-mobilenetv2-0.5-128-person", "random-inputs-50.npy")),
            new("super-resolution-10", Model("onnxzoo-super-resolution-10"), System.IO.Path.Combine(shared, "onnxzoo-super-resolution-10", "test_data_set_0")),
            new("genre-mlp", Model("velardo-genre-mlp")),
            new("onnx2c-mlp-bn", Model("onnx2c-mnist-mlp-bn")),
            new("sine", Model("tflm-hello-world-sine")),
        };
        return [.. all, .. third.Where(e => File.Exists(e.Path))];
    }

    /// <summary>The SIMD levels this processor runs, widest first, with the switches that force each.</summary>
    public static IReadOnlyList<(string Level, string[] Switches)> Levels()
    {
        var levels = new List<(string, string[])>();
        if (Vector512.IsHardwareAccelerated) levels.Add(("Vector512", []));
        if (Vector256.IsHardwareAccelerated) levels.Add(("Vector256", Vector512.IsHardwareAccelerated ? ["DOTNET_EnableAVX512F=0"] : []));
        levels.Add(("Vector128", Vector256.IsHardwareAccelerated ? ["DOTNET_EnableAVX512F=0", "DOTNET_EnableAVX=0"] : []));
        return levels;
    }

    public const string Header = """
        | model | SIMD | float32 (ours) | ONNX Runtime | ratio | largest conv, of peak | int8 (ours) | int8 vs our float32 |
        |---|---|---:|---:|---:|---:|---:|---:|
        """;

    /// <summary>Runs every level (each in a child process) and prints the table.</summary>
    public static void Run()
    {
        Console.WriteLine($"performance suite: one thread, batch 1, {Environment.ProcessorCount} processors, {CpuName()}, .NET {Environment.Version}");
        Console.WriteLine();
        Console.WriteLine(Header);
        var ratios = new List<double>();
        foreach (var (level, switches) in Levels())
        {
            var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
            // `dotnet ModelGen.Benchmarks.dll` or the apphost: the child is started the same way.
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") start.ArgumentList.Add(Environment.GetCommandLineArgs()[0]);
            start.ArgumentList.Add("suite-level");
            foreach (string a in Environment.GetCommandLineArgs().Skip(1).Where(a => a != "suite")) start.ArgumentList.Add(a);
            foreach (string s in switches) start.Environment[s.Split('=')[0]] = s.Split('=')[1];
            using var child = Process.Start(start)!;
            string? line;
            while ((line = child.StandardOutput.ReadLine()) is not null)
            {
                Console.WriteLine(line);
                if (line.StartsWith("| ", StringComparison.Ordinal) && line.Split('|') is { Length: > 5 } cells
                    && double.TryParse(cells[5].Trim().TrimEnd('x'), NumberStyles.Float, CultureInfo.InvariantCulture, out double r))
                    ratios.Add(r);
            }
            child.WaitForExit();
            if (child.ExitCode != 0) Console.WriteLine($"(the {level} run failed with exit code {child.ExitCode})");
        }
        if (ratios.Count > 0)
        {
            var sorted = ratios.Order().ToList();
            Console.WriteLine();
            Console.WriteLine($"float32 against ONNX Runtime, over {sorted.Count} rows: median {sorted[sorted.Count / 2]:F2}x, slowest {sorted[0]:F2}x (above 1: ModelGen faster)");
        }
    }

    /// <summary>One level, in this process: a row per model.</summary>
    public static void RunLevel(string[] args)
    {
        string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        string? shared = Option("--shared") ?? Environment.GetEnvironmentVariable("MODELGEN_SHARED_MODELS");
        string defaultShared = System.IO.Path.Combine(TestData.Root, "..", "shared", "data", "models");
        if (shared is null && Directory.Exists(defaultShared)) shared = defaultShared;
        double seconds = double.Parse(Option("--seconds") ?? "1", CultureInfo.InvariantCulture);
        string? only = Option("--only");
        string level = Vector512.IsHardwareAccelerated ? "Vector512" : Vector256.IsHardwareAccelerated ? "Vector256" : Vector128.IsHardwareAccelerated ? "Vector128" : "scalar";
        foreach (var e in Models(shared).Where(e => only is null || e.Name.Contains(only, StringComparison.OrdinalIgnoreCase)))
        {
            try
            {
                var o = new BenchCommand.BenchOptions(e.Path, e.Data, e.Uint8Scale, 1, "auto", seconds, 200) { InputShape = e.InputShape };
                var f32 = BenchCommand.Run(o);
                var convs = f32.Kernels.Where(k => k.Kernel.StartsWith("Conv", StringComparison.Ordinal) && k.Seconds > 0).ToList();
                string largest = convs.Count == 0 ? "" : PeakShare(convs.MaxBy(k => k.MultiplyAdds)!, f32.Peak);
                string int8 = "", int8Ratio = "";
                if (e.Data is not null)
                {
                    var q = BenchCommand.Run(o with { Compression = "int8" });
                    int8 = Time(q.OursSeconds);
                    int8Ratio = q.Float32Seconds is double plain ? $"{plain / q.OursSeconds:F2}x" : "";
                }
                Console.WriteLine($"| {e.Name} | {level} | {Time(f32.OursSeconds)} | {Time(f32.OrtSeconds)} | {f32.OrtSeconds / f32.OursSeconds:F2}x | {largest} | {int8} | {int8Ratio} |");
            }
            catch (Exception x)
            {
                Console.WriteLine($"| {e.Name} | {level} | failed: {x.Message.Split('\n')[0]} | | | | | |");
            }
        }
    }

    /// <summary>Pseudo-random samples in [0, 1) saved as .npy: calibration data for a model the repository has none for.</summary>
    static string RandomData(string name, int[] sampleShape, int samples = 64)
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"modelgen-suite-{name}.npy");
        int length = sampleShape.Aggregate(1, (a, d) => a * d);
        var random = new Random(7);
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({samples}, {string.Join(", ", sampleShape)}), }}";
        header = header.PadRight(((header.Length + 11) / 64 + 1) * 64 - 11) + "\n";
        using var file = File.Create(path);
        using var writer = new BinaryWriter(file);
        writer.Write(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 });
        writer.Write((ushort)header.Length);
        writer.Write(System.Text.Encoding.ASCII.GetBytes(header));
        for (long i = 0; i < (long)samples * length; i++) writer.Write(random.NextSingle());
        return path;
    }

    static string PeakShare(KernelTime k, Peak peak) =>
        $"{k.Node} {100 * (2.0 * k.MultiplyAdds / k.Seconds / 1e9) / peak.Gflops:F0}%";

    static string Time(double s) => s < 1e-3 ? $"{s * 1e6:F1} µs" : $"{s * 1e3:F2} ms";

    static string CpuName()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown processor";
        }
        catch (IOException)
        {
            return "unknown processor";
        }
    }
}
