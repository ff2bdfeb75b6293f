using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>ConvTranspose over its attributes (pads, strides, dilations, groups, output_padding, output_shape, auto_pad; 1-D and 2-D).</summary>
public sealed class ConvTransposeConformanceTests : ConformanceTests
{
    static ConformanceCase Case(string name, int[] x, int[] w, bool bias, params (string, object)[] attrs)
    {
        var b = new OnnxBuilder().Input("x", [.. x.Select(d => (int?)d)]).Initializer("w", w, OnnxBuilder.Random(w.Aggregate(1, (p, q) => p * q), 2));
        if (bias) b.Initializer("b", [w[1] * (attrs.FirstOrDefault(a => a.Item1 == "group").Item2 as int? ?? 1)], OnnxBuilder.Random(w[1] * (attrs.FirstOrDefault(a => a.Item1 == "group").Item2 as int? ?? 1), 3));
        b.Node("ConvTranspose", bias ? ["x", "w", "b"] : ["x", "w"], ["y"], attrs).Output("y");
        return new ConformanceCase(name, b, [("x", x)]);
    }

    public static readonly ConformanceCase[] All =
    [
        Case("ConvTransposeBasic", [1, 2, 3, 3], [2, 3, 3, 3], true),
        Case("ConvTransposeNoBias", [1, 2, 3, 3], [2, 3, 2, 2], false),
        Case("ConvTransposeStrides", [1, 2, 3, 4], [2, 2, 3, 3], true, ("strides", new[] { 2, 3 })),
        Case("ConvTransposePads", [1, 1, 4, 4], [1, 2, 3, 3], true, ("strides", new[] { 2, 2 }), ("pads", new[] { 1, 0, 1, 2 })),
        Case("ConvTransposeOutputPadding", [1, 1, 3, 3], [1, 2, 3, 3], true, ("strides", new[] { 3, 2 }), ("output_padding", new[] { 1, 1 })),
        Case("ConvTransposeOutputShape", [1, 1, 3, 3], [1, 2, 3, 3], true, ("strides", new[] { 3, 2 }), ("output_shape", new[] { 10, 8 })),
        Case("ConvTransposeSameUpper", [1, 2, 3, 3], [2, 2, 3, 3], true, ("strides", new[] { 2, 2 }), ("auto_pad", "SAME_UPPER")),
        Case("ConvTransposeSameLower", [1, 2, 3, 3], [2, 2, 4, 4], true, ("strides", new[] { 2, 2 }), ("auto_pad", "SAME_LOWER")),
        Case("ConvTransposeDilations", [1, 1, 3, 3], [1, 1, 2, 2], true, ("dilations", new[] { 2, 2 })),
        Case("ConvTransposeGroups", [1, 4, 3, 3], [4, 3, 3, 3], true, ("group", 2)),
        Case("ConvTranspose1D", [1, 2, 5], [2, 3, 3], true, ("strides", new[] { 2 }), ("pads", new[] { 1, 0 })),
        Case("ConvTransposeBatch", [2, 2, 2, 2], [2, 1, 3, 3], true, ("strides", new[] { 2, 2 })),
    ];

    static readonly ConformanceSuite Cases = new(All);

    protected override ConformanceSuite Suite => Cases;

    public static TheoryData<string> Names => Cases.Names;
}
