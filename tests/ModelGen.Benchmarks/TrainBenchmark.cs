using System.Diagnostics;
using System.Globalization;
using ModelGen.Compiler.Training;
using ModelGen.Onnx;
using ModelGen.Tests.Support;
using ModelGen.Tests.Training;

/// <summary>
/// Issue 22's training benchmark: one epoch over the 8,000 training digits, batch 64, Adam, for LeNet-5 and
/// LeNet-300-100, ours beside PyTorch's (pytorch_epoch.py, run by /usr/bin/python3 when it has torch) with the
/// same number of threads. Ours uses every processor the runtime sees: DOTNET_PROCESSOR_COUNT=1 makes both one thread.
/// `--no-pytorch` times ours alone; the weights' hash printed beside it is the same at every SIMD level.
/// A model the engine cannot train yet (a missing gradient rule, MG4001) is named with the engine's reason.
/// </summary>
public static class TrainBenchmark
{
    const string Python = "/usr/bin/python3";

    public static void Run(string[] args)
    {
        int threads = Environment.ProcessorCount;
        bool withPyTorch = !args.Contains("--no-pytorch");
        string[] models = args.Skip(1).Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray() is { Length: > 0 } named ? named : ["lenet5", "lenet300"];
        Console.WriteLine($"one epoch, 8,000 digits, batch 64, Adam; {threads} thread(s), {Environment.ProcessorCount} processors, .NET {Environment.Version}");
        Console.WriteLine();
        Console.WriteLine($"SIMD: Vector<float> of {System.Numerics.Vector<float>.Count}, Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}, Vector256 {System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated}, FMA {System.Runtime.Intrinsics.X86.Fma.IsSupported}");
        Console.WriteLine();
        Console.WriteLine("| model | ModelGen | PyTorch | ratio | trained weights' SHA-256 (ours) |");
        Console.WriteLine("|---|---:|---:|---:|---|");
        foreach (string name in models)
        {
            string ours = Ours(name, out double? oursSeconds, out string hash);
            string torchText = "";
            double? torch = withPyTorch ? PyTorch(name, threads, out torchText) : null;
            string ratio = oursSeconds is { } o && torch is { } t ? (o / t).ToString("0.00", CultureInfo.InvariantCulture) + "x" : "";
            Console.WriteLine($"| {name} | {ours} | {torchText} | {ratio} | {hash} |");
        }
    }

    static string Ours(string name, out double? seconds, out string hash)
    {
        seconds = null;
        hash = "";
        TrainableModel model;
        try { model = MnistTraining.Model(name + ".onnx"); }
        catch (ModelGenException e) when (e.Code == ErrorCodes.NotTrainable)
        {
            return $"not trainable yet ({e.Code}: {e.Message.Split(", so ")[0]})";
        }
        var options = new TrainingOptions { Epochs = 1, BatchSize = 64, Optimizer = OptimizerKind.Adam, HeldOutFraction = 0 };
        // A few batches first: the JIT's tiers, and the thread pool warmed up, as PyTorch's script does.
        Trainer.Fit(model, MnistTraining.TrainingDigits(model, 5 * 64), options);
        var clock = Stopwatch.StartNew();
        Trainer.Fit(model, MnistTraining.TrainingDigits(model), options);
        seconds = clock.Elapsed.TotalSeconds;
        // The same on every SIMD level and processor (issue 22 item 3): compare runs with DOTNET_EnableAVX2=0 and the like.
        using (var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256))
        {
            foreach (var p in model.Parameters) sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(p.Values.AsSpan()));
            hash = Convert.ToHexString(sha.GetHashAndReset())[..16];
        }
        return seconds.Value.ToString("0.00", CultureInfo.InvariantCulture) + " s";
    }

    static double? PyTorch(string name, int threads, out string text)
    {
        if (!File.Exists(Python)) { text = $"({Python} not found)"; return null; }
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])[Path.Combine(TestData.Root, "tests", "ModelGen.Benchmarks", "pytorch_epoch.py"),
                     "--model", name, "--threads", threads.ToString(CultureInfo.InvariantCulture), "--data", Path.Combine(TestData.Root, "data", "mnist")])
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        string? line = output.Split('\n').FirstOrDefault(l => l.StartsWith("seconds: ", StringComparison.Ordinal));
        if (process.ExitCode != 0 || line is null)
        {
            text = error.Result.Contains("No module named 'torch'", StringComparison.Ordinal) ? "(no torch for /usr/bin/python3)" : $"(failed: {error.Result.Trim().Split('\n')[^1]})";
            return null;
        }
        double seconds = double.Parse(line["seconds: ".Length..], CultureInfo.InvariantCulture);
        string? blas = output.Split('\n').FirstOrDefault(l => l.StartsWith("blas: ", StringComparison.Ordinal));
        text = seconds.ToString("0.00", CultureInfo.InvariantCulture) + " s" + (blas is null ? "" : $" (BLAS {blas["blas: ".Length..].Trim()})");
        return seconds;
    }
}
