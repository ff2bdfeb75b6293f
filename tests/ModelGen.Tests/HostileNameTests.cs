using ModelGen.Compiler;
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
}
