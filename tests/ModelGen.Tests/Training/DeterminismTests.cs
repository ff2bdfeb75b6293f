using System.Diagnostics;
using System.Security.Cryptography;
using ModelGen.Compiler;
using ModelGen.Compiler.Data;
using ModelGen.Compiler.Training;
using ModelGen.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace ModelGen.Tests.Training;

/// <summary>
/// Training gives the same bits on every machine (issue 22): the SHA-256 of LeNet-5's weights after a short seeded
/// fine-tuning is the same here at every SIMD level eng/test.sh forces (AVX-512, AVX2, Vector128 only, scalar), on
/// the AMD and Intel machines CI runs on, and on ARM64 under qemu. The expected hash is the contract of
/// reproducible builds, not an oracle of correctness (the gradient checks are): a deliberate change to the training
/// arithmetic changes it, and then <see cref="ExpectedSha256"/> is updated with the reason in the commit.
/// </summary>
public sealed class DeterminismTests(ITestOutputHelper output)
{
    const string ExpectedSha256 = "fc0627761e7c47cb243a455a9fb44e29fe32006a1902c576c9a4835444d8e49d";

    [Fact]
    public void TheTrainedWeightsAreTheSameBitsOnEveryMachine()
    {
        string hash = DeterminismProbe.TrainedWeightsHash(TestData.Root, 7);
        output.WriteLine($"SHA-256 {hash} (Vector<float>.Count {System.Numerics.Vector<float>.Count})");
        Assert.Equal(hash, DeterminismProbe.TrainedWeightsHash(TestData.Root, 7));
        Assert.NotEqual(hash, DeterminismProbe.TrainedWeightsHash(TestData.Root, 8));
        Assert.Equal(ExpectedSha256, hash);
    }

    [Fact]
    public async Task TheTrainedWeightsAreTheSameBitsOnArm64()
    {
        string runner = Path.Combine(TestData.Root, "artifacts", "arm64-runner", "ModelGen.Arm64Runner");
        Assert.True(File.Exists(runner), $"{runner} is missing: eng/test.sh publishes it (dotnet publish tests/ModelGen.Arm64Runner -c Release -o artifacts/arm64-runner)");
        // The runner writes the weights and the hash is taken here: .NET's SHA-256 needs OpenSSL, which the ARM64 sysroot lacks.
        string weights = Path.Combine(Path.GetTempPath(), $"modelgen-trained-{Guid.NewGuid():N}.bin");
        var start = new ProcessStartInfo("qemu-aarch64") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-cpu", "max", "-L", "/usr/aarch64-linux-gnu", runner, "invoke", typeof(DeterminismProbe).Assembly.Location,
            typeof(DeterminismProbe).FullName!, nameof(DeterminismProbe.WriteTrainedWeights), TestData.Root, "7", weights })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        try { await process.WaitForExitAsync(limit.Token); }
        catch (OperationCanceledException) { process.Kill(entireProcessTree: true); Assert.Fail("the ARM64 runner took more than 10 minutes"); }
        string text = await stdout, errors = await stderr;
        Assert.True(process.ExitCode == 0, $"ARM64 runner exit {process.ExitCode}: {text}\n{errors}");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        output.WriteLine(string.Join("\n", lines));
        Assert.Contains("arch=Arm64", lines[0]);
        try { Assert.Equal(ExpectedSha256, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(weights)))); }
        finally { File.Delete(weights); }
    }
}

/// <summary>What the determinism tests run, here and in the ARM64 runner (which calls it by reflection).</summary>
public static class DeterminismProbe
{
    /// <summary>The trained weights' SHA-256.</summary>
    public static string TrainedWeightsHash(string root, int seed) => Convert.ToHexStringLower(SHA256.HashData(TrainedWeights(root, seed)));

    /// <summary>Writes the trained weights to <paramref name="path"/> (what the ARM64 runner calls).</summary>
    public static string WriteTrainedWeights(string root, string seed, string path)
    {
        File.WriteAllBytes(path, TrainedWeights(root, int.Parse(seed, System.Globalization.CultureInfo.InvariantCulture)));
        return path;
    }

    /// <summary>LeNet-5 fine-tuned one epoch on 320 training digits (batch 64, Adam, a fifth held out), quantization-aware for int4: every parameter's bytes in order.</summary>
    public static byte[] TrainedWeights(string root, int seed)
    {
        string mnist = Path.Combine(root, "data", "mnist");
        var graph = ModelCompiler.Import(Path.Combine(mnist, "lenet5.onnx"));
        Compiler.Normalize.Passes.Run(graph);
        var model = TrainableModel.Build(graph);
        QuantizationAwareTraining.Attach(model, new Compiler.Compress.CompressionPlan { Kind = "int4-weights" });
        var data = TrainingSet.Load(Path.Combine(mnist, "train-images-u8.npy"), Path.Combine(mnist, "train-labels.npy"),
            [new DataInput(graph.Inputs[0], graph[graph.Inputs[0]].Shape!)], 10, 255f).Take(320);
        Trainer.Fit(model, data, new TrainingOptions { Epochs = 1, BatchSize = 64, Seed = (ulong)seed, HeldOutFraction = 0.2, LearningRate = 1e-3 });
        return [.. model.Parameters.SelectMany(p => System.Runtime.InteropServices.MemoryMarshal.AsBytes(p.Values.AsSpan()).ToArray())];
    }
}
