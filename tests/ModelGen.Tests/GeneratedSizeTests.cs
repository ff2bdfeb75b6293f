using System.Globalization;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using ModelGen.Compiler;
using ModelGen.Generator.Emit;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// The volume of emitted C# (issue 19: compile time grows with it) and the weight literals' encoding, which carries
/// most of a float32 model's text. The outputs of the models themselves are checked against ONNX Runtime elsewhere
/// (MnistModelTests, the conformance suites); these check the text.
/// </summary>
public sealed class GeneratedSizeTests
{
    /// <summary>
    /// Every UTF-16 unit, and an odd trailing byte, come back from the literal exactly as Roslyn reads it, after a
    /// round trip through UTF-8 (the CLI writes the file, the compiler reads it). The characters written as themselves are
    /// none that could hide code or break a line: no control, format (bidirectional overrides), line or paragraph
    /// separator, surrogate or combining mark, and NFC normalization leaves the text as it is.
    /// </summary>
    [Fact]
    public void AWeightLiteralCarriesEveryTwoBytesExactly()
    {
        var data = new byte[65536 * 2 + 1];
        for (int c = 0; c < 65536; c++) { data[2 * c] = (byte)c; data[2 * c + 1] = (byte)(c >> 8); }
        data[^1] = 0xA7;
        string literal = ModelEmitter.WeightLiteral(data);

        string file = Encoding.UTF8.GetString(Encoding.UTF8.GetBytes("class C { const string S = " + literal + "; }\n"));
        var tree = CSharpSyntaxTree.ParseText(file);
        Assert.Empty(tree.GetDiagnostics());
        var token = tree.GetRoot().DescendantNodes().OfType<LiteralExpressionSyntax>().Single().Token;
        string value = token.ValueText;
        Assert.Equal(65537, value.Length);
        for (int c = 0; c < 65536; c++)
            if (value[c] != c) Assert.Fail($"unit {c:X4} read back as {(int)value[c]:X4}");
        Assert.Equal(0xA7, value[65536]); // the odd byte, zero-extended; the emitter slices it off

        int plain = 0;
        for (int i = 1; i < literal.Length - 1; i++)
        {
            if (literal[i] == '\\') { Assert.Equal('u', literal[i + 1]); i += 5; continue; }
            plain++;
            var category = CharUnicodeInfo.GetUnicodeCategory(literal[i]);
            Assert.False(category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator
                or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Surrogate or UnicodeCategory.NonSpacingMark
                or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark, $"U+{(int)literal[i]:X4} ({category}) written as itself");
        }
        Assert.Equal(Enumerable.Range(0, 65536).Count(ModelEmitter.IsPlainInWeightLiteral), plain);
        Assert.Equal(literal, literal.Normalize(NormalizationForm.FormC));
    }

    /// <summary>
    /// Size bounds with a margin of about 10% over what the emitter writes now, so growth is a decision, not an
    /// accident. LeNet-5 float32 was 5,392,084 bytes with every weight unit escaped (\uXXXX, 6 bytes for 2); its
    /// 1.7 MB of weights now take about 1.8 bytes of text a byte. docs/implementation-notes.md ("Compile time") has the
    /// figures for MobileNetV2-0.5 and what each part of the text costs the C# compiler.
    /// </summary>
    [Theory]
    [InlineData("none", 3_500_000)]
    [InlineData("int8", 1_420_000)]
    public void LeNet5sGeneratedSourceStaysUnderItsSizeBound(string compression, int maxBytes)
    {
        var artifact = ModelCompiler.Compile(new CompileOptions
        {
            ModelPath = TestData.Mnist("lenet5.onnx"), ClassName = "LeNet5", Namespace = "Size",
            Compression = compression, CalibrationPath = compression == "none" ? null : TestData.Mnist("calibration-256.npy"),
        });
        string source = ModelEmitter.Emit(artifact);
        int bytes = Encoding.UTF8.GetByteCount(source);
        Assert.True(bytes <= maxBytes, $"LeNet-5 ({compression}) emits {bytes:N0} bytes of C#, over its bound of {maxBytes:N0}");
    }
}
