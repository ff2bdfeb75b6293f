using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// A shape parameter (Reshape target, Squeeze/Unsqueeze/Reduce axes, Split sizes) that the model takes
/// as an input: the compiled code has one fixed shape, so the values given are checked against it
/// when the model runs, and a mismatch is an ArgumentException naming the parameter.
/// </summary>
internal sealed class CheckShapeKernel : IKernel
{
    public KernelKind Kernel => KernelKind.CheckShape;

    public string InputName(ArtifactNode node, int i) => "given";

    public void Emit(KernelContext k)
    {
        var w = k.W;
        var check = k.Node.CheckShape ?? throw new System.FormatException($"CheckShape '{k.Node.Name}' has no rule and shapes");
        string rule = check.Rule;
        int[] input = check.In, expected = check.Expected;
        string parameter = k.Model.Inputs.FirstOrDefault(b => b.Tensor == k.Node.Inputs[0])?.Parameter ?? "given";
        string In() => $"stackalloc int[] {{ {string.Join(", ", input)} }}";
        string Expected() => expected.Length == 0 ? "ReadOnlySpan<int>.Empty" : $"stackalloc int[] {{ {string.Join(", ", expected)} }}";
        w.Line($"// {CodeWriter.Comment(k.Node.OnnxOp)}: its {(rule == "reshape" ? "target shape" : rule == "split" ? "split sizes" : "axes")} arrive at run time in '{parameter}'; they must give {CodeWriter.Shape(expected)}, what this code was compiled for.");
        using (k.OpenMethod())
        switch (rule)
        {
            case "reshape":
                w.Line($"ShapeChecks.Reshape(given, {In()}, {Expected()}, {(check.AllowZero ? "true" : "false")}, \"{parameter}\");");
                break;
            case "split":
                w.Line($"ShapeChecks.Values(given, {Expected()}, \"{parameter}\");");
                break;
            default:
                bool keep = check.KeepDims, noop = check.Noop;
                w.Line($"ShapeChecks.Axes(given, ShapeChecks.Rule.{char.ToUpperInvariant(rule[0]) + rule.Substring(1)}, {In()}, {Expected()}, {(keep ? "true" : "false")}, {(noop ? "true" : "false")}, \"{parameter}\");");
                if (rule == "reduce")
                {
                    int[] axes = check.Axes!;
                    w.Line($"ShapeChecks.ReducedAxes(given, {In()}, {(axes.Length == 0 ? "ReadOnlySpan<int>.Empty" : $"stackalloc int[] {{ {string.Join(", ", axes)} }}")}, {(noop ? "true" : "false")}, {Expected()}, \"{parameter}\");");
                }
                break;
        }
        k.Helpers.Add("ShapeChecks");
    }

    public const string HelperSource = @"/// <summary>Checks that shape parameters given at run time produce the shapes this code was compiled for.</summary>
static class ShapeChecks
{
    public enum Rule { Squeeze, Unsqueeze, Reduce }

    public static void Reshape(ReadOnlySpan<long> target, ReadOnlySpan<int> input, ReadOnlySpan<int> expected, bool allowZero, string parameter)
    {
        long total = 1, known = 1;
        foreach (int d in input) total *= d;
        bool ok = target.Length == expected.Length;
        int inferred = -1;
        for (int i = 0; ok && i < target.Length; i++)
        {
            long d = target[i];
            if (d == -1)
            {
                ok = inferred < 0;
                inferred = i;
                continue;
            }
            if (d == 0 && !allowZero) d = i < input.Length ? input[i] : -1;
            ok = d >= 0 && d == expected[i];
            known *= d;
        }
        if (ok && inferred >= 0) ok = known != 0 && total % known == 0 && total / known == expected[inferred];
        if (!ok) Fail(parameter, expected);
    }

    public static void Axes(ReadOnlySpan<long> axes, Rule rule, ReadOnlySpan<int> input, ReadOnlySpan<int> expected, bool keepDims, bool noop, string parameter)
    {
        int rank = rule == Rule.Unsqueeze ? input.Length + axes.Length : input.Length;
        if (rank > 64) Fail(parameter, expected);
        Span<bool> marked = stackalloc bool[rank];
        foreach (long given in axes)
        {
            long a = given < 0 ? given + rank : given;
            if (a < 0 || a >= rank || marked[(int)a]) Fail(parameter, expected);
            marked[(int)a] = true;
        }
        Span<int> result = stackalloc int[rank];
        int n = 0, next = 0;
        for (int i = 0; i < rank; i++)
        {
            switch (rule)
            {
                case Rule.Unsqueeze:
                    result[n++] = marked[i] ? 1 : input[next++];
                    break;
                case Rule.Squeeze:
                    if (axes.Length == 0 ? input[i] == 1 : marked[i])
                    {
                        if (input[i] != 1) Fail(parameter, expected);
                    }
                    else result[n++] = input[i];
                    break;
                default:
                    if (axes.Length == 0 ? !noop : marked[i])
                    {
                        if (keepDims) result[n++] = 1;
                    }
                    else result[n++] = input[i];
                    break;
            }
        }
        if (!MemoryExtensions.SequenceEqual((ReadOnlySpan<int>)result.Slice(0, n), expected)) Fail(parameter, expected);
    }

    /// <summary>The axes reduced (those of size 1 aside, whose reduction changes nothing) must be the compiled ones.</summary>
    public static void ReducedAxes(ReadOnlySpan<long> axes, ReadOnlySpan<int> input, ReadOnlySpan<int> compiled, bool noop, ReadOnlySpan<int> expected, string parameter)
    {
        int rank = input.Length;
        if (rank > 64) Fail(parameter, expected);
        Span<bool> marked = stackalloc bool[rank];
        if (axes.Length == 0 && !noop) marked.Fill(true);
        foreach (long given in axes) marked[(int)(given < 0 ? given + rank : given)] = true;
        int count = 0;
        for (int i = 0; i < rank; i++)
        {
            if (!marked[i] || input[i] == 1) continue;
            if (MemoryExtensions.IndexOf(compiled, i) < 0) Fail(parameter, expected);
            count++;
        }
        if (count != compiled.Length) Fail(parameter, expected);
    }

    public static void Values(ReadOnlySpan<long> given, ReadOnlySpan<int> expected, string parameter)
    {
        bool ok = given.Length == expected.Length;
        for (int i = 0; ok && i < given.Length; i++) ok = given[i] == expected[i];
        if (!ok) Fail(parameter, expected);
    }

    static void Fail(string parameter, ReadOnlySpan<int> expected) =>
        throw new ArgumentException($""{parameter} does not give the shape this model was compiled for ([{string.Join("", "", expected.ToArray())}])."", parameter);
}";
}
