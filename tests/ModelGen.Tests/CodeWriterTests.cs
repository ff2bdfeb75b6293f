using ModelGen.Generator.Emit;

namespace ModelGen.Tests;

/// <summary>The helpers the emitters write code with: index expressions without no-op terms, blocks that close what they open.</summary>
public sealed class CodeWriterTests
{
    [Theory]
    [InlineData("x", "0", "x")]
    [InlineData("0", "x", "x")]
    [InlineData("2", "3", "5")]
    [InlineData("x", "-3", "x - 3")]
    [InlineData("a + b", "c", "a + b + c")]
    [InlineData("a ? b : c", "d", "(a ? b : c) + d")]
    [InlineData("a >> 2", "1", "(a >> 2) + 1")]
    public void PlusLeavesOutZerosAndKeepsPrecedence(string a, string b, string expected) => Assert.Equal(expected, Expr.Plus(a, b));

    [Theory]
    [InlineData("x", "1", "x")]
    [InlineData("1", "x", "x")]
    [InlineData("x", "0", "0")]
    [InlineData("4", "5", "20")]
    [InlineData("a + b", "3", "(a + b) * 3")]
    [InlineData("a * b", "3", "a * b * 3")]
    [InlineData("3", "a / b", "3 * (a / b)")]
    [InlineData("(int)index", "4", "(int)index * 4")]
    public void TimesLeavesOutOnesAndKeepsPrecedence(string a, string b, string expected) => Assert.Equal(expected, Expr.Times(a, b));

    [Theory]
    [InlineData("x", "0", "x")]
    [InlineData("x", "a + b", "x - (a + b)")]
    [InlineData("x", "-2", "x + 2")]
    [InlineData("7", "2", "5")]
    public void MinusLeavesOutZerosAndKeepsPrecedence(string a, string b, string expected) => Assert.Equal(expected, Expr.Minus(a, b));

    [Fact]
    public void AProductBeyondIntIsNotFolded() => Assert.Equal("65536 * 65536", Expr.Times("65536", "65536"));

    [Fact]
    public void BlocksCloseWhatTheyOpenAndALoopOfOneTripIsItsBody()
    {
        var w = new CodeWriter();
        using (w.Block("void F()"))
        {
            using (w.For("i", 3, out string i))
                w.Line($"a[{i}] = 0;");
            using (w.For("j", 1, out string j))
                w.Line($"b[{Expr.Plus("k", Expr.Times(j, 4))}] = 0;");
            using (var axes = w.Nest())
            {
                axes.For("p", 2, out _);
                axes.For("q", 1, out string q);
                w.Line($"c[{q}] = 0;");
            }
        }
        Assert.Equal("""
            void F()
            {
                for (int i = 0; i < 3; i++)
                {
                    a[i] = 0;
                }
                b[k] = 0;
                for (int p = 0; p < 2; p++)
                {
                    c[0] = 0;
                }
            }

            """.ReplaceLineEndings("\n"), w.ToString());
    }

    [Fact]
    public void LongCommentsAndCallsAreBrokenNeverInsideATag()
    {
        var w = new CodeWriter();
        string words = string.Join(" ", Enumerable.Repeat("word", 40));
        w.Line("// " + words);
        w.Line("/// <see cref=\"Run(global::System.ReadOnlySpan{float}, global::System.Span{float})\"/> " + words);
        w.Call("F(", Enumerable.Range(0, 30).Select(i => "argument" + i).ToList(), ");");
        var lines = w.ToString().TrimEnd('\n').Split('\n');
        Assert.All(lines, l => Assert.True(l.Length <= CodeWriter.Width, l));
        Assert.Contains(lines, l => l.StartsWith("/// <see cref=\"Run(global::System.ReadOnlySpan{float}, global::System.Span{float})\"/>"));
        Assert.Equal("F(", lines.First(l => l.StartsWith("F(")));
        Assert.EndsWith("argument29);", lines[^1]);
    }
}
