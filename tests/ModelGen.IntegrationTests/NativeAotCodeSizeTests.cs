using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using ModelGen.IntegrationTests.Support;
using Xunit.Abstractions;

namespace ModelGen.IntegrationTests;

/// <summary>
/// Issue 19, item 10: the code a model adds to a NativeAOT binary, measured as a user would: the same console
/// app published with and without the model, the difference less the embedded weights.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class NativeAotCodeSizeTests(PackageFixture package, ITestOutputHelper output)
{
    /// <summary>
    /// The target: with Simd naming one level, MobileNetV2-0.5 int8 adds no more code than its weights' bytes
    /// (binary delta − weight bytes ≤ weight bytes). Before kernels were shared across nodes, on linux-x64
    /// (ILCompiler 10.0.12, AMD EPYC, AVX2) the empty app was 1,159,720 B and the one with the model 1,795,160 B:
    /// 635,440 B more, of which 215,304 B weights and 420,136 B code (each of the 62 kernels specialised to its
    /// node's shapes, 4-8 KB of machine code each). With one Simd level the int8 kernels of one structure are one
    /// method taking the shapes as arguments (KernelSharing in the generator): measured so on the user's model,
    /// 1,159,728 B and 1,557,072 B, 215,304 B of weights and 182,040 B of code. This test builds the published
    /// architecture with seeded weights (MobileNetV2Builder: 502,536 B of int8 weights, as it keeps every block at
    /// full depth) and measured 144,664 B of code.
    /// </summary>
    [Fact]
    public void MobileNetV2Int8AtOneSimdLevelAddsNoMoreCodeThanItsWeightsToANativeAotBinary()
    {
        package.AssertPacked();
        string rid = RuntimeInformation.RuntimeIdentifier;

        using var empty = ConsumerProject.Create("EmptyApp", spaceInPath: false);
        empty.WriteProject("", "<PublishAot>true</PublishAot><InvariantGlobalization>true</InvariantGlobalization>");
        // The same program with a constant in place of the model's output: both keep Console and float formatting.
        empty.WriteFile("Program.cs", "float[] x = new float[args.Length + 49152];\nfloat[] y = new float[args.Length + 2];\ny[0] = x[0] + x.Length;\nSystem.Console.WriteLine(y[0] + \" \" + y.Length + \" none weights 0\");\n");

        using var model = ConsumerProject.Create("ModelApp", spaceInPath: false);
        // MobileNetV2-0.5 at 128x128 with two classes, the published architecture with seeded weights (the person
        // model users brought has these shapes; it is held-out evaluation data, not copied into the repository).
        string onnx = Path.Combine(model.Directory, "mobilenetv2.onnx"), data = Path.Combine(model.Directory, "calibration.npy");
        // Calibration: 4 images of pseudo-random pixels in [0, 1), the same every run (a fixed seed). The code
        // depends on the shapes more than on the scales calibration picks (those are numbers a shared kernel takes).
        var random = new Random(19);
        var pixels = new float[4 * 3 * 128 * 128];
        for (int i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (float)random.NextDouble();
        }

        Npy.WriteFloat32(data, [4, 3, 128, 128], pixels);
        File.WriteAllBytes(onnx, ModelGen.Tests.Support.MobileNetV2Builder.Build().Bytes());
        model.WriteProject(
            $"""<CompressedModel Include="{onnx}" ClassName="Person" Compression="int8" Calibration="{data}" Simd="vector128" />""",
            "<PublishAot>true</PublishAot><InvariantGlobalization>true</InvariantGlobalization>");
        model.WriteFile("Program.cs", "float[] x = new float[ModelApp.Person.InputLength];\nfloat[] y = new float[ModelApp.Person.OutputLength];\nModelApp.Person.Run(x, y);\nSystem.Console.WriteLine(y[0] + \" \" + y.Length + \" \" + ModelApp.Person.SimdLevel + \" weights \" + ModelApp.Person.WeightBytes);\n");

        long emptyBytes = Publish(empty, rid, out _);
        long modelBytes = Publish(model, rid, out string run);
        Match printed = Regex.Match(run, @"(vector128|none) weights (\d+)");
        Assert.True(printed.Success, run);
        long weights = long.Parse(printed.Groups[2].Value, CultureInfo.InvariantCulture);
        long code = modelBytes - emptyBytes - weights;
        output.WriteLine($"| {rid} | empty app | with MobileNetV2-0.5 int8, Simd=vector128 | difference | weights | code (difference − weights) |\n|---|---|---|---|---|---|\n| bytes | {emptyBytes:N0} | {modelBytes:N0} | {modelBytes - emptyBytes:N0} | {weights:N0} | {code:N0} |");
        Assert.True(code <= weights, $"the model adds {code:N0} bytes of code beside {weights:N0} bytes of weights");
    }

    long Publish(ConsumerProject project, string rid, out string run)
    {
        string folder = Path.Combine(project.Directory, "native");
        ProcessResult publish = Dotnet.Run(
            ["publish", project.ProjectPath, "-c", "Release", "-r", rid, "-nodeReuse:false", "-p:UseSharedCompilation=false", "-o", folder],
            project.Directory, TimeSpan.FromMinutes(20));
        Assert.True(publish.ExitCode == 0, publish.ToString());
        string binary = Path.Combine(folder, project.Name + (OperatingSystem.IsWindows() ? ".exe" : ""));
        ProcessResult result = Dotnet.Exec(binary, [], folder, TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, result.ToString());
        run = result.Output;
        return new FileInfo(binary).Length;
    }
}
