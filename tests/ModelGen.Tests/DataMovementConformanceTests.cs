using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>Transpose, Slice, Squeeze, Unsqueeze, Gather, Concat, Split, Pad, Dropout, Cast and the Shape arithmetic exporters write.</summary>
public sealed class DataMovementConformanceTests : ConformanceTests
{
    static ConformanceCase Unary(string name, string op, int[] x, long opset = 13, params (string, object)[] attrs) =>
        new(name, new OnnxBuilder(opset).Input("x", [.. x.Select(d => (int?)d)]).Node(op, ["x"], ["y"], attrs).Output("y"), [("x", x)]);

    static ConformanceCase WithInts(string name, string op, int[] x, long opset, long[][] ints, params (string, object)[] attrs)
    {
        var b = new OnnxBuilder(opset).Input("x", [.. x.Select(d => (int?)d)]);
        var names = new List<string> { "x" };
        for (int i = 0; i < ints.Length; i++)
        {
            if (ints[i].Length == 0 && i < ints.Length - 1) { names.Add(""); continue; }
            b.Initializer("c" + i, ints[i]);
            names.Add("c" + i);
        }
        return new ConformanceCase(name, b.Node(op, [.. names], ["y"], attrs).Output("y"), [("x", x)]);
    }

    public static readonly ConformanceCase[] All =
    [
        Unary("TransposeDefault", "Transpose", [2, 3, 4]),
        Unary("TransposePerm", "Transpose", [2, 3, 4], 13, ("perm", new[] { 1, 0, 2 })),
        Unary("TransposeNhwc", "Transpose", [1, 3, 4, 5], 13, ("perm", new[] { 0, 2, 3, 1 })),
        Unary("TransposeIdentityLastAxis", "Transpose", [3, 2, 5], 13, ("perm", new[] { 1, 0, 2 })),
        WithInts("SliceStartsEnds", "Slice", [4, 6], 13, [[1, 2], [3, 5]]),
        WithInts("SliceAxesSteps", "Slice", [4, 6, 5], 13, [[0, 4], [100, 1], [2, 1], [2, -2]]),
        WithInts("SliceNegative", "Slice", [5, 7], 13, [[-3], [-1], [1]]),
        WithInts("SliceReverse", "Slice", [5, 7], 13, [[-1], [-100], [0], [-1]]),
        Unary("SliceOpset9Attributes", "Slice", [4, 6], 9, ("starts", new[] { 1, 0 }), ("ends", new[] { 3, 4 }), ("axes", new[] { 0, 1 })),
        Unary("SqueezeAll", "Squeeze", [1, 3, 1, 4], 11),
        Unary("SqueezeAxesAttribute", "Squeeze", [1, 3, 1, 4], 11, ("axes", new[] { 0 })),
        WithInts("SqueezeAxesInput", "Squeeze", [1, 3, 1, 4], 13, [[-2]]),
        Unary("UnsqueezeAttribute", "Unsqueeze", [3, 4], 11, ("axes", new[] { 0, 3 })),
        WithInts("UnsqueezeInput", "Unsqueeze", [3, 4], 13, [[1, -1]]),
        GatherCase("GatherScalar", [4, 3], 0, [], [2]),
        GatherCase("GatherVectorAxis1", [2, 5, 3], 1, [3], [4, -1, 0]),
        GatherCase("GatherMatrixIndices", [6, 2], 0, [2, 2], [5, 0, 1, 1]),
        new("ConcatThree", new OnnxBuilder().Input("a", 2, 3).Input("b", 2, 1).Initializer("c", [2, 2], OnnxBuilder.Random(4, 3))
            .Node("Concat", ["a", "b", "c"], ["y"], ("axis", 1)).Output("y"), [("a", [2, 3]), ("b", [2, 1])]),
        new("ConcatNegativeAxis", new OnnxBuilder().Input("a", 2, 3, 2).Input("b", 2, 3, 1)
            .Node("Concat", ["a", "b"], ["y"], ("axis", -1)).Output("y"), [("a", [2, 3, 2]), ("b", [2, 3, 1])]),
        new("ConcatAxis0IntoRelu", new OnnxBuilder().Input("a", 1, 4).Input("b", 2, 4)
            .Node("Concat", ["a", "b"], ["c"], ("axis", 0)).Node("Relu", ["c"], ["y"]).Output("y"), [("a", [1, 4]), ("b", [2, 4])]),
        new("SplitEqual", new OnnxBuilder().Input("x", 2, 6).Node("Split", ["x"], ["y0", "y1", "y2"], ("axis", 1)).Output("y0").Output("y1").Output("y2"), [("x", [2, 6])]),
        new("SplitAttribute", new OnnxBuilder(11).Input("x", 5, 2).Node("Split", ["x"], ["y0", "y1"], ("split", new[] { 2, 3 })).Output("y0").Output("y1"), [("x", [5, 2])]),
        new("SplitInput", new OnnxBuilder().Input("x", 2, 7).Initializer("s", [4, 3]).Node("Split", ["x", "s"], ["y0", "y1"], ("axis", -1)).Output("y0").Output("y1"), [("x", [2, 7])]),
        new("PadConstantValue", new OnnxBuilder().Input("x", 1, 2, 3, 3).Initializer("p", [0, 0, 1, 2, 0, 0, 2, 1]).Initializer("v", [], [0.5f])
            .Node("Pad", ["x", "p", "v"], ["y"]).Output("y"), [("x", [1, 2, 3, 3])]),
        WithInts("PadReflect", "Pad", [1, 2, 4, 4], 13, [[0, 0, 2, 1, 0, 0, 1, 3]], ("mode", "reflect")),
        WithInts("PadEdge", "Pad", [2, 5], 13, [[1, 2, 3, 1]], ("mode", "edge")),
        WithInts("PadNegativeCrops", "Pad", [4, 5], 13, [[-1, 1, 0, -2]]),
        Unary("PadOpset7Attributes", "Pad", [2, 3], 7, ("pads", new[] { 1, 0, 0, 2 }), ("value", -1f)),
        Unary("DropoutOpset7", "Dropout", [2, 3], 7, ("ratio", 0.3f)),
        new("DropoutOpset13Ratio", new OnnxBuilder().Input("x", 2, 3).Initializer("r", [], [0.2f]).Node("Dropout", ["x", "r"], ["d"]).Node("Relu", ["d"], ["y"]).Output("y"), [("x", [2, 3])]),
        Unary("CastToFloat", "Cast", [2, 3], 13, ("to", 1)),
        new("ShapeGatherUnsqueezeConcatReshape", new OnnxBuilder().Input("x", 2, 3, 4)
            .Node("Shape", ["x"], ["s"]).ScalarInitializer("zero", 0).Node("Gather", ["s", "zero"], ["n"], ("axis", 0))
            .Initializer("axes", [0]).Node("Unsqueeze", ["n", "axes"], ["n1"]).Initializer("minus1", [-1])
            .Node("Concat", ["n1", "minus1"], ["shape"], ("axis", 0)).Node("Reshape", ["x", "shape"], ["r"])
            .Node("Relu", ["r"], ["y"]).Output("y"), [("x", [2, 3, 4])]),
        new("ShapeSliceCastChain", new OnnxBuilder().Input("x", 2, 3, 4)
            .Node("Shape", ["x"], ["s"]).Initializer("st", [1]).Initializer("en", [3]).Node("Slice", ["s", "st", "en"], ["hw"])
            .Node("Cast", ["hw"], ["hwf"], ("to", 1)).Node("Cast", ["hwf"], ["hwi"], ("to", 7))
            .Initializer("one", [-1]).Node("Concat", ["one", "hwi"], ["shape"], ("axis", 0))
            .Node("Reshape", ["x", "shape"], ["r"]).Node("Neg", ["r"], ["y"]).Output("y"), [("x", [2, 3, 4])]),
    ];

    static ConformanceCase GatherCase(string name, int[] x, int axis, int[] indexShape, long[] indices)
    {
        var b = new OnnxBuilder().Input("x", [.. x.Select(d => (int?)d)]);
        var t = new Onnx.Proto.TensorProto { Name = "idx", DataType = 7 };
        t.Dims.AddRange(indexShape.Select(d => (long)d));
        t.Int64Data.AddRange(indices);
        b.Model.Graph.Initializer.Add(t);
        return new ConformanceCase(name, b.Node("Gather", ["x", "idx"], ["y"], ("axis", axis)).Output("y"), [("x", x)]);
    }

    static readonly ConformanceSuite Cases = new(All);

    protected override ConformanceSuite Suite => Cases;

    public static TheoryData<string> Names => Cases.Names;
}
