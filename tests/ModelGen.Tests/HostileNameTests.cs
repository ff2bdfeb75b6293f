using ModelGen.Compiler;
using ModelGen.Compiler.Evaluate;
using ModelGen.Compiler.Ir;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>Names from a model never reach emitted code unescaped: such models compile and compute what they say.</summary>
public sealed class HostileNameTests
{
    [Fact]
    public void KeywordsQuotesNewlinesCommentEndsAndDuplicatesCompileAndRun()
    {
        const string evilInput = "class";
        const string evilOutput = "y\"; } static void Pwn() { } /* */ \n#error injected\r\n// \u2028 ünïcödé";
        const string twin = "y\"; } static void Pwn() { } /* */ \n#error injected\r\n// \u2028 ünïcödé!"; // sanitizes to the same identifier
        var b = new OnnxBuilder()
            .Input(evilInput, 1, 3)
            .Initializer("*/ #if X \n weights\"", [3], [1f, 2f, 3f])
            .Node("Add", [evilInput, "*/ #if X \n weights\""], [evilOutput]).NamedLast("node */ \n #pragma warning disable \" \\")
            .Node("Relu", [evilOutput], [twin]).NamedLast("\u2029<summary>&amp;")
            .Output(evilOutput).Output(twin);
        b.Model.DocString = "*/ </summary> \n #error doc";
        b.Model.ProducerName = "\"; #error producer";
        string path = b.Save("weird name \" #.onnx");

        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, Namespace = "Hostile.@class.Lives9" });
        Assert.Equal("WeirdName", artifact.ClassName);
        var models = GeneratedModels.Build(artifact); // no warnings, no errors, no injected members

        var parameters = artifact.Inputs.Concat(artifact.Outputs).Select(p => p.Parameter).ToList();
        Assert.Equal(parameters.Count, parameters.Distinct().Count());
        Assert.DoesNotContain(models.ModelType(artifact).GetMethods(), m => m.Name == "Pwn");

        var x = new[] { -5f, 0.5f, -1f };
        var y1 = new float[3];
        var y2 = new float[3];
        models.Run(artifact, [x], [y1, y2]);
        Assert.Equal([-4f, 2.5f, 2f], y1);
        Assert.Equal([0f, 2.5f, 2f], y2);
        using var ort = new OnnxRuntimeOracle(path);
        var expected = ort.Run((evilInput, x, [1, 3]));
        Tolerance.AssertClose(expected[0], y1, "y1");
        Tolerance.AssertClose(expected[1], y2, "y2");
    }

    /// <summary>
    /// The kernels name types by their short names (Vector256, Unsafe, MemoryMarshal, Span…) under using directives in
    /// ModelGen's own namespace, which C# consults before the user's namespace: user types of those names beside the
    /// model class, and a model class named Math (whose implementation namespace then ends in Math), change nothing.
    /// </summary>
    [Fact]
    public void UserTypesNamedAsTheTypesTheKernelsUseDoNotCaptureThem()
    {
        const string userTypes = """
            namespace Collide
            {
                public static class Vector512 { }
                public static class Vector256 { }
                public static class Vector128 { }
                public static class Unsafe { }
                public static class MemoryMarshal { }
                public static class MathF { }
                public static class BitConverter { }
                public static class Avx2 { }
                public static class Avx512F { }
                public static class AdvSimd { }
                public readonly struct Span<T> { }
                public readonly struct ReadOnlySpan<T> { }
                public sealed class ArgumentException { }
                public sealed class MethodImplAttribute : global::System.Attribute { }
                public static class Implementation { }
                public static class Kernels { }
                public static class Weights { }
            }
            namespace Collide.System
            {
                public static class Math { }
            }
            """;
        string lenet = TestData.Mnist("lenet5.onnx");
        var float32 = ModelCompiler.Compile(new CompileOptions { ModelPath = lenet, ClassName = "Math", Namespace = "Collide" });
        var int8 = ModelCompiler.Compile(new CompileOptions
        {
            ModelPath = lenet, ClassName = "Quantized", Namespace = "Collide", Compression = "int8", CalibrationPath = TestData.Mnist("calibration-256.npy"),
        }, out var compressed);
        var models = GeneratedModels.BuildWith(userTypes, float32, int8); // no warnings, no errors

        var (images, _) = TestData.ReadNpy(TestData.Mnist("test-images.npy"));
        var x = images[..784];
        using var ort = new OnnxRuntimeOracle(lenet);
        var y = new float[10];
        models.Run(float32, [x], [y]);
        Tolerance.AssertClose(ort.Run(("image", x, [1, 1, 28, 28]))[0], y, "float32");
        models.Run(int8, [x], [y]);
        var expected = ReferenceEvaluator.Run(compressed, new Dictionary<string, TensorData> { ["image"] = new([1, 1, 28, 28], x) })[compressed.Outputs[0]].Floats;
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), y.Select(BitConverter.SingleToInt32Bits));
    }
}
