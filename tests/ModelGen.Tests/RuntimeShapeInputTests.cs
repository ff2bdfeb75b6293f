using ModelGen.Compiler;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// Shape parameters that a model takes as int64 inputs (ONNX's own tests do this; some exporters too):
/// the model's declared output shape is compiled in, the parameters are checked (or, for Slice and
/// Pad, applied) when the model runs.
/// </summary>
public sealed class RuntimeShapeInputTests : ConformanceTests
{
    static ConformanceCase Case(string name, OnnxBuilder model, int[] x, params (string Name, long[] Values)[] ints) =>
        new(name, model, [("x", x)]) { IntInputs = ints };

    public static readonly ConformanceCase[] All =
    [
        Case("ReshapeRuntimeTarget", new OnnxBuilder().Input("x", 2, 3, 4).IntInput("shape", 3).Node("Reshape", ["x", "shape"], ["y"]).Output("y", 4, 3, 2), [2, 3, 4], ("shape", [4, -1, 2])),
        Case("ReshapeRuntimeZero", new OnnxBuilder().Input("x", 2, 3, 4).IntInput("shape", 2).Node("Reshape", ["x", "shape"], ["y"]).Output("y", 2, 12), [2, 3, 4], ("shape", [0, -1])),
        Case("SqueezeRuntimeAxes", new OnnxBuilder().Input("x", 1, 3, 1, 4).IntInput("axes", 1).Node("Squeeze", ["x", "axes"], ["y"]).Output("y", 3, 1, 4), [1, 3, 1, 4], ("axes", [0])),
        Case("UnsqueezeRuntimeAxes", new OnnxBuilder().Input("x", 3, 4).IntInput("axes", 2).Node("Unsqueeze", ["x", "axes"], ["y"]).Output("y", 3, 1, 4, 1), [3, 4], ("axes", [-1, 1])),
        Case("ReduceSumRuntimeAxesKeep", new OnnxBuilder().Input("x", 2, 3, 4).IntInput("axes", 1).Node("ReduceSum", ["x", "axes"], ["y"]).Output("y", 2, 1, 4), [2, 3, 4], ("axes", [1])),
        Case("ReduceMeanRuntimeAxesDrop", new OnnxBuilder(18).Input("x", 2, 3, 4).IntInput("axes", 2).Node("ReduceMean", ["x", "axes"], ["y"], ("keepdims", 0)).Output("y", 3), [2, 3, 4], ("axes", [0, -1])),
        // [3,2,2] → [3,2] is a reduction over axis 1 or over axis 2: the axes given decide, when the model runs.
        Case("ReduceSumRuntimeAxesAmbiguousFirst", new OnnxBuilder(18).Input("x", 3, 2, 2).IntInput("axes", 1).Node("ReduceSum", ["x", "axes"], ["y"], ("keepdims", 0)).Output("y", 3, 2), [3, 2, 2], ("axes", [1])),
        Case("ReduceSumRuntimeAxesAmbiguousSecond", new OnnxBuilder(18).Input("x", 3, 2, 2).IntInput("axes", 1).Node("ReduceSum", ["x", "axes"], ["y"], ("keepdims", 0)).Output("y", 3, 2), [3, 2, 2], ("axes", [2])),
        Case("ReduceMaxRuntimeAxesAmbiguous", new OnnxBuilder(18).Input("x", 2, 3, 3).IntInput("axes", 1).Node("ReduceMax", ["x", "axes"], ["y"], ("keepdims", 0)).Output("y", 2, 3), [2, 3, 3], ("axes", [-2])),
        Case("ReduceMeanRuntimeAxesEmptyMeansAll", new OnnxBuilder(18).Input("x", 2, 3).IntInput("axes", 0).Node("ReduceMean", ["x", "axes"], ["y"]).Output("y", 1, 1), [2, 3], ("axes", [])),
        // The ReduceSum's own output has no declared shape; the Log after it declares it (ReduceLogSum expanded).
        Case("ReduceSumRuntimeAxesShapeFromUnaryConsumer", new OnnxBuilder(18).Input("x", 3, 4, 5).IntInput("axes", 1).Node("ReduceSum", ["x", "axes"], ["s"])
            .Node("Log", ["s"], ["y"]).Output("y", 3, 1, 5), [3, 4, 5], ("axes", [1])),
        Case("SplitRuntimeSizes", new OnnxBuilder().Input("x", 2, 7).IntInput("split", 2).Node("Split", ["x", "split"], ["y0", "y1"], ("axis", 1)).Output("y0", 2, 3).Output("y1", 2, 4), [2, 7], ("split", [3, 4])),
        Case("SliceRuntimePositions", new OnnxBuilder().Input("x", 5, 6).IntInput("starts", 2).IntInput("ends", 2).IntInput("axes", 2).IntInput("steps", 2)
            .Node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"]).Output("y", 2, 3), [5, 6], ("starts", [4, 1]), ("ends", [0, 100]), ("axes", [0, 1]), ("steps", [-2, 2])),
        Case("PadRuntimeConstant", new OnnxBuilder().Input("x", 2, 3).IntInput("pads", 4).Initializer("v", [], [1.5f]).Node("Pad", ["x", "pads", "v"], ["y"]).Output("y", 3, 6), [2, 3], ("pads", [1, 2, 0, 1])),
        Case("PadRuntimeReflect", new OnnxBuilder().Input("x", 3, 4).IntInput("pads", 4).Node("Pad", ["x", "pads"], ["y"], ("mode", "reflect")).Output("y", 5, 6), [3, 4], ("pads", [1, 2, 1, 0])),
        new ConformanceCase("ClipRuntimeBounds", new OnnxBuilder().Input("x", 3, 4).Input("lo").Input("hi").Node("Clip", ["x", "lo", "hi"], ["y"]).Output("y"), [("x", [3, 4]), ("lo", []), ("hi", [])]),
    ];

    static readonly ConformanceSuite Cases = new(All);

    protected override ConformanceSuite Suite => Cases;

    public static TheoryData<string> Names => Cases.Names;

    [Fact]
    public void ParametersThatWouldGiveAnotherShapeAreRefusedWhenTheModelRuns()
    {
        var model = new OnnxBuilder().Input("x", 2, 3, 4).IntInput("shape", 2).Node("Reshape", ["x", "shape"], ["y"]).Output("y", 2, 12);
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = model.Save(), ClassName = "Reshaper", Namespace = "Runtime" });
        var models = GeneratedModels.Build(artifact);
        var x = new float[24];
        models.Run(artifact, [x, new long[] { 2, -1 }], [new float[24]]);
        var e = Assert.Throws<System.Reflection.TargetInvocationException>(() => models.Run(artifact, [x, new long[] { 3, -1 }], [new float[24]]));
        Assert.Equal("shape", Assert.IsType<ArgumentException>(e.InnerException).ParamName);

        var reduce = new OnnxBuilder().Input("x", 3, 3).IntInput("axes", 1).Node("ReduceSum", ["x", "axes"], ["y"], ("keepdims", 0)).Output("y", 3);
        var reduceArtifact = ModelCompiler.Compile(new CompileOptions { ModelPath = reduce.Save(), ClassName = "Reducer", Namespace = "Runtime" });
        var reducer = GeneratedModels.Build(reduceArtifact);
        // [3,3] → [3] is either axis: the kernel reduces the one given; axes giving another shape are refused.
        var x9 = Enumerable.Range(0, 9).Select(i => (float)i).ToArray();
        var rows = new float[3];
        reducer.Run(reduceArtifact, [x9, new long[] { 1 }], [rows]);
        Assert.Equal([3f, 12f, 21f], rows);
        var columns = new float[3];
        reducer.Run(reduceArtifact, [x9, new long[] { 0 }], [columns]);
        Assert.Equal([9f, 12f, 15f], columns);
        Assert.Throws<System.Reflection.TargetInvocationException>(() => reducer.Run(reduceArtifact, [x9, new long[] { 0, 1 }], [new float[3]]));
    }

    [Fact]
    public void WithoutADeclaredShapeARunTimeShapeParameterIsMG1004()
    {
        string path = new OnnxBuilder().Input("x", 2, 3).IntInput("shape", 1).Node("Reshape", ["x", "shape"], ["y"]).Output("y").Save();
        var e = Assert.Throws<Onnx.ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = path }));
        Assert.Equal(Onnx.ErrorCodes.DynamicShape, e.Code);
    }
}
