using System.Diagnostics;
using ModelGen.Artifact;
using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;
using Xunit.Abstractions;

namespace ModelGen.Tests;

/// <summary>
/// The generated code on ARM64: the models compiled here (IL) run in the ARM64 runner (tests/ModelGen.Arm64Runner,
/// which eng/test.sh publishes self-contained for linux-arm64) under qemu-aarch64, so the JIT takes the ARM64 paths
/// (AdvSimd under Vector128 and the generic intrinsics, the int8 kernels' dot products) that x64 never runs.
/// int8 models must give the evaluator's very bits there too; float32 ones ONNX Runtime's outputs within 1e-4.
/// Needs qemu-aarch64 and an ARM64 C library (Debian: qemu-user, libc6-arm64-cross, libstdc++6-arm64-cross,
/// libgcc-s1-arm64-cross; .ci/run installs them).
/// </summary>
public sealed class Arm64Tests(ITestOutputHelper output)
{
    const int Digits = 20;

    [Fact]
    public void Int8AndFloat32ModelsGiveTheirBitsOnArm64()
    {
        // LeNet-5 (5x5 convolutions, max pooling, fully connected layers) and the depthwise-separable CNN (3x3 stem,
        // depthwise layers of stride 1 and 2, pointwise layers, average pooling), each in int8 and in float32.
        string dwsep = SyntheticModels.DepthwiseSeparableCnn().Save("dwsep-arm64.onnx");
        string lenet5 = TestData.Mnist("lenet5.onnx");
        var cases = new List<(string Path, ModelArtifact Artifact, Graph? Compressed)>();
        foreach (var (path, name) in new[] { (lenet5, "LeNet5"), (dwsep, "DwSep") })
        {
            var int8 = new CompileOptions { ModelPath = path, ClassName = name + "Int8", Namespace = "Arm64", Compression = "int8", CalibrationPath = TestData.Mnist("calibration-256.npy") };
            cases.Add((path, ModelCompiler.Compile(int8, out var compressed), compressed));
            cases.Add((path, ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = name + "Float", Namespace = "Arm64" }), null));
        }
        var models = GeneratedModels.Build([.. cases.Select(c => c.Artifact)]);
        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        var x = images[..(Digits * 784)];
        string dir = Path.Combine(Path.GetTempPath(), "modelgen-arm64-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string assembly = Path.Combine(dir, "models.dll"), inputs = Path.Combine(dir, "inputs.bin");
            File.WriteAllBytes(assembly, models.Image);
            File.WriteAllBytes(inputs, Bytes(x));
            // "max" has the dot product (the int8 kernels' sdot and udot paths); a Cortex-A72 (ARMv8.0) has not, so the
            // int8 models run their plain AdvSimd paths there too.
            foreach (var (path, artifact, compressed, cpu) in cases.Select(c => (c.Path, c.Artifact, c.Compressed, "max"))
                .Concat(cases.Where(c => c.Compressed is not null).Select(c => (c.Path, c.Artifact, c.Compressed, "cortex-a72"))))
            {
                string outputs = Path.Combine(dir, artifact.ClassName + ".bin");
                string simd = RunOnArm64(cpu, assembly, GeneratedModels.HarnessType(artifact), inputs, outputs);
                Assert.Contains("arch=Arm64", simd);
                Assert.Contains("AdvSimd=True", simd);
                Assert.Contains(cpu == "max" ? "Dp=True" : "Dp=False", simd);
                var y = Floats(File.ReadAllBytes(outputs));
                Assert.Equal(Digits * 10, y.Length);
                using var ort = new OnnxRuntimeOracle(path);
                int same = 0;
                for (int d = 0; d < Digits; d++)
                {
                    var digit = x[(d * 784)..((d + 1) * 784)];
                    var actual = y[(d * 10)..((d + 1) * 10)];
                    var reference = ort.Run(("image", digit, [1, 1, 28, 28]))[0];
                    if (Tolerance.ArgMax(actual) == Tolerance.ArgMax(reference)) same++;
                    if (compressed is null) Tolerance.AssertClose(reference, actual, $"{artifact.ClassName}, digit {d}");
                    else
                    {
                        var expected = ReferenceEvaluator.Run(compressed, new Dictionary<string, TensorData> { [compressed.Inputs[0]] = new([1, 1, 28, 28], digit) })[compressed.Outputs[0]].Floats;
                        for (int i = 0; i < 10; i++)
                            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]), $"{artifact.ClassName}, digit {d}, output {i}: evaluator {expected[i]:R}, ARM64 {actual[i]:R}");
                    }
                }
                output.WriteLine($"{artifact.ClassName} on ARM64 {cpu} ({simd}): top-1 as ONNX Runtime's float32 on {same} of {Digits}");
                Assert.True(same >= Digits - 1, $"{artifact.ClassName}: {same} of {Digits}");
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>Runs the runner under qemu-aarch64; returns its first line (the SIMD it has), or fails with what it printed.</summary>
    static string RunOnArm64(string cpu, string assembly, string harness, string inputs, string outputs)
    {
        string runner = Path.Combine(TestData.Root, "artifacts", "arm64-runner", "ModelGen.Arm64Runner");
        Assert.True(File.Exists(runner), $"{runner} is missing: eng/test.sh publishes it (dotnet publish tests/ModelGen.Arm64Runner -c Release -o artifacts/arm64-runner)");
        var start = new ProcessStartInfo("qemu-aarch64") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-cpu", cpu, "-L", "/usr/aarch64-linux-gnu", runner, assembly, harness, inputs, Digits.ToString(System.Globalization.CultureInfo.InvariantCulture), "10", outputs })
            start.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(start)!; }
        catch (System.ComponentModel.Win32Exception e) { throw new InvalidOperationException("qemu-aarch64 not found: install qemu-user and the ARM64 C library (see Arm64Tests)", e); }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromMinutes(5))) { process.Kill(entireProcessTree: true); Assert.Fail("the ARM64 runner took more than 5 minutes"); }
            Assert.True(process.ExitCode == 0, $"ARM64 runner exit {process.ExitCode}: {stdout.Result}\n{stderr.Result}");
            return stdout.Result.Split('\n')[0].Trim();
        }
    }

    static byte[] Bytes(float[] values)
    {
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return bytes;
    }

    static float[] Floats(byte[] bytes)
    {
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }
}
