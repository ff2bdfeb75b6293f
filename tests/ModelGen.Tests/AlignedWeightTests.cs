using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using ModelGen.Compiler;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// The one-row fully connected kernel reads its weights in 64-byte-aligned loads, shifted into place by
/// the phase the generated class reads off its pinned literal. Where the runtime puts a literal is out of
/// the test's hands, so these tests place the same padded weights in a pinned buffer at each of the 16
/// possible phases (and -1, unknown) and call the kernel there: every placement must give ONNX Runtime's
/// outputs.
/// </summary>
public sealed class AlignedWeightTests
{
    [Theory]
    [InlineData(10, 100)]  // 10 rows: the last panel has 2; K = 6·16 + 4: the last 16 columns read xTail
    [InlineData(8, 64)]    // whole panels, whole chunks
    [InlineData(3, 20)]    // one partial panel only
    public void TheOneRowKernelGivesOnnxRuntimesOutputsAtEveryPhase(int n, int k)
    {
        var builder = new OnnxBuilder().Input("x", 1, k)
            .Initializer("w", [n, k], OnnxBuilder.Random(n * k, 11)).Initializer("b", [n], OnnxBuilder.Random(n, 12))
            .Node("Gemm", ["x", "w", "b"], ["y"], ("transB", 1)).Output("y");
        string path = builder.Save($"aligned-{n}x{k}.onnx");
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "Aligned", Namespace = $"Phase{n}x{k}" });
        var node = Assert.Single(artifact.Nodes);
        Assert.Equal("panels4", node.Attributes["layout"]);

        // The generated Run names the padded weights and the bias it passes: call the kernel the same way.
        string source = GeneratedModels.Build(artifact).Sources.Values.Single();
        var call = Regex.Match(source, @"Kernels\.(\w+)\(x, Weights\.(W\d+)Padded, Weights\.(W\d+), y, Weights\.W\d+Phase\)");
        Assert.True(call.Success, "the Run method calls the kernel with the padded weights and their phase");
        string extra = $$"""
            namespace Phase{{n}}x{{k}}
            {
                public static partial class Aligned
                {
                    public static float[] PaddedWeights() => ModelGenKernels.Aligned.Weights.{{call.Groups[2].Value}}Padded.ToArray();
                    public static void Kernel(float[] x, float[] buffer, int offset, int length, float[] y, int phase) =>
                        ModelGenKernels.Aligned.Kernels.{{call.Groups[1].Value}}(x, new global::System.ReadOnlySpan<float>(buffer, offset, length),
                            ModelGenKernels.Aligned.Weights.{{call.Groups[3].Value}}, y, phase);
                }
            }
            """;
        var models = GeneratedModels.BuildWith(extra, artifact);
        var type = models.ModelType(artifact);
        var padded = (float[])type.GetMethod("PaddedWeights")!.Invoke(null, [])!;
        var kernel = type.GetMethod("Kernel")!;

        using var ort = new OnnxRuntimeOracle(path);
        var x = OnnxBuilder.Random(k, 13);
        var expected = ort.Run(("x", x, [1, k]))[0];
        var buffer = GC.AllocateArray<float>(padded.Length + 16, pinned: true);
        long start = (long)Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0);
        Assert.Equal(0, start % 4);
        for (int phase = -1; phase < 16; phase++)
        {
            // The weights start 16 floats into the padded span: place them at this phase past a 64-byte boundary.
            int offset = phase < 0 ? 0 : (int)(((phase - 16 - start / 4) % 16 + 32) % 16);
            if (phase >= 0) Assert.Equal(phase, (start / 4 + offset + 16) % 16);
            Array.Clear(buffer);
            padded.CopyTo(buffer, offset);
            var y = new float[n];
            kernel.Invoke(null, [x, buffer, offset, padded.Length, y, phase]);
            Tolerance.AssertClose(expected, y, $"phase {phase}");
        }
    }
}
