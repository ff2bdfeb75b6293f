using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace ModelGen.Tests;

/// <summary>Issue 20's Done-when rules for the generated code, checked on its syntax tree.</summary>
public sealed class GeneratedCodeRulesTests
{
    public static TheoryData<string> Cases => GeneratedTextTests.Cases;

    /// <summary>
    /// Issue 20's rules for readable generated code, on LeNet-5 float32 and int8 (weights and all): no global:: inside a
    /// method or property body (the implementation's namespace has usings for that), no line over 160 characters but
    /// the weights' literals, no no-op arithmetic (+ 0, - 0, * 1) and no loop of one trip (the index is a constant).
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void LeNet5sGeneratedCodeFollowsTheReadabilityRules(string compression)
    {
        string source = GeneratedTextTests.Emit(compression);
        var root = CSharpSyntaxTree.ParseText(source).GetRoot();
        var problems = new List<string>();
        string Where(SyntaxNode n) => $"line {n.GetLocation().GetLineSpan().StartLinePosition.Line + 1}: {n.ToString().Split('\n')[0].Trim()}";

        foreach (var name in root.DescendantNodes().OfType<AliasQualifiedNameSyntax>())
            if (name.Ancestors().Any(a => a is BlockSyntax or ArrowExpressionClauseSyntax))
                problems.Add("global:: in a body, " + Where(name));

        string[] lines = GeneratedTextTests.WithoutWeights(source).Split('\n');
        for (int i = 0; i < lines.Length; i++)
            if (lines[i].Length > 160) problems.Add($"line {i + 1} has {lines[i].Length} characters: {lines[i].Trim()[..60]}…");

        static bool Is(ExpressionSyntax e, string literal) => e is LiteralExpressionSyntax { Token.Text: var t } && t == literal;
        foreach (var b in root.DescendantNodes().OfType<BinaryExpressionSyntax>())
        {
            bool noOp = b.Kind() switch
            {
                SyntaxKind.AddExpression => Is(b.Left, "0") || Is(b.Right, "0"),
                SyntaxKind.SubtractExpression => Is(b.Right, "0"),
                SyntaxKind.MultiplyExpression => Is(b.Left, "1") || Is(b.Right, "1"),
                _ => false,
            };
            if (noOp) problems.Add("no-op arithmetic, " + Where(b));
        }
        foreach (var loop in root.DescendantNodes().OfType<ForStatementSyntax>())
            if (loop.Declaration?.Variables is [{ Initializer.Value: var start }] && Is(start, "0")
                && loop.Condition is BinaryExpressionSyntax { RawKind: (int)SyntaxKind.LessThanExpression } condition && Is(condition.Right, "1"))
                problems.Add("a loop of one trip, " + Where(loop));

        Assert.True(problems.Count == 0, $"LeNet-5 {compression}: {problems.Count} places break the rules:\n" + string.Join("\n", problems.Take(40)));
    }
}
