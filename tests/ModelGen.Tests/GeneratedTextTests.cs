using System.Text.RegularExpressions;
using ModelGen.Compiler;
using ModelGen.Generator.Emit;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// The generated text of LeNet-5, float32 and int8, with the weights' literals left out, compared exactly with a
/// checked-in baseline (tests/ModelGen.Tests/Baselines), as the .NET Regex generator's output tests do: a change to
/// the emitted code shows in review as a diff of those files. These tests see the text; whether it computes the right
/// numbers is the conformance tests' part (against ONNX Runtime and the evaluator).
/// After a change to the emitted code, rewrite the baselines and review their diff:
/// <code>MODELGEN_UPDATE_BASELINES=1 dotnet test tests/ModelGen.Tests -c Release --filter FullyQualifiedName~GeneratedTextTests</code>
/// </summary>
public sealed partial class GeneratedTextTests
{
    public static TheoryData<string> Cases => new() { "float32", "int8" };

    [Theory]
    [MemberData(nameof(Cases))]
    public void LeNet5sGeneratedTextIsItsBaseline(string compression)
    {
        string text = WithoutWeights(Emit(compression));
        string path = Path.Combine(TestData.Root, "tests", "ModelGen.Tests", "Baselines", $"LeNet5.{compression}.cs.txt");
        if (Environment.GetEnvironmentVariable("MODELGEN_UPDATE_BASELINES") == "1")
        {
            File.WriteAllText(path, text);
            return;
        }
        Assert.True(File.Exists(path), $"no baseline {path}: run with MODELGEN_UPDATE_BASELINES=1 to write it");
        string expected = File.ReadAllText(path).ReplaceLineEndings("\n");
        if (expected == text) return;
        // The first line that differs, with its number: the whole text is too long for an assertion message.
        var (a, b) = (expected.Split('\n'), text.Split('\n'));
        int line = 0;
        while (line < a.Length && line < b.Length && a[line] == b[line]) line++;
        Assert.Fail($"LeNet-5 {compression} differs from {path} at line {line + 1}:\n" +
            $"expected: {(line < a.Length ? a[line] : "(end)")}\nactual:   {(line < b.Length ? b[line] : "(end)")}\n" +
            "If the change is intended, set MODELGEN_UPDATE_BASELINES=1, run this test and review the baseline's diff.");
    }

    /// <summary>LeNet-5 as the CLI and the generator emit it: Simd auto, every path.</summary>
    internal static string Emit(string compression) => ModelEmitter.Emit(ModelCompiler.Compile(new CompileOptions
    {
        ModelPath = TestData.Mnist("lenet5.onnx"), ClassName = "LeNet5", Namespace = "Baselines",
        Compression = compression == "int8" ? "int8" : "none",
        CalibrationPath = compression == "int8" ? TestData.Mnist("calibration-256.npy") : null,
    }));

    /// <summary>The text with each weight's literal (the Weights class's W… and s_W… members) written as "…".</summary>
    internal static string WithoutWeights(string source) => WeightLiteral().Replace(source, m => m.Groups["head"].Value + "\"…\"");

    [GeneratedRegex(@"^(?<head>[^""\n]*\b(?:W\d+ =>|s_W\d+ =)[^""\n]*)""(?:[^""\\\n]|\\.)*""", RegexOptions.Multiline)]
    private static partial Regex WeightLiteral();
}
