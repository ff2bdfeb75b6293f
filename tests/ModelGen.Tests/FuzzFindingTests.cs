using System.Buffers.Binary;
using System.IO.Compression;
using Google.Protobuf;
using ModelGen.Compiler;
using ModelGen.Compiler.Data;
using ModelGen.Compiler.Import;
using ModelGen.Compiler.Normalize;
using ModelGen.Onnx;
using ModelGen.Onnx.Proto;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>
/// Inputs the fuzzer (tests/ModelGen.Fuzz, docs/fuzzing.md) found ending in an exception other than a
/// coded error or in an allocation out of proportion to the input, each rebuilt by hand: each ends in
/// its MGnnnn now, cheaply.
/// </summary>
public sealed class FuzzFindingTests
{
    const string Path = "fuzz.onnx";

    static ModelGenException Refuse(OnnxBuilder model, string code = ErrorCodes.InvalidGraph)
    {
        var e = Assert.Throws<ModelGenException>(() => ShapeInference.Run(OnnxImporter.Import(OnnxModelLoader.Parse(model.Bytes(), Path), Path)));
        Assert.Equal(code, e.Code);
        return e;
    }

    /// <summary>Less than 64 MB allocated by <paramref name="action"/>, which must end in <paramref name="code"/>.</summary>
    static void RefuseCheaply(Action action, string code)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(code, Assert.Throws<ModelGenException>(action).Code);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 20, "allocated 64 MB or more");
    }

    // KeyNotFoundException (Conv, ConvTranspose, MatMul, Add: ShapeOf on an empty name).
    [Theory]
    [InlineData("Conv")]
    [InlineData("ConvTranspose")]
    [InlineData("MatMul")]
    [InlineData("Add")]
    public void ARequiredInputWithAnEmptyNameIsMissing(string op)
    {
        var e = Refuse(new OnnxBuilder().Input("x", 1, 1, 4, 4).Initializer("w", [1, 1, 3, 3], new float[9])
            .Node(op, ["", "w"], ["y"]).Output("y"));
        Assert.Contains("input 0 is missing", e.Message);
    }

    // ArgumentOutOfRangeException (Shape and Split read input 0; Pow read input 1 before counting them).
    [Theory]
    [InlineData("Shape")]
    [InlineData("Split")]
    [InlineData("Pow")]
    public void ANodeWithTooFewInputsIsAnInvalidGraph(string op)
    {
        var inputs = op == "Pow" ? new[] { "x" } : [];
        Refuse(new OnnxBuilder().Input("x", 1, 4).Node(op, inputs, ["y"]).Output("y"));
    }

    // ArgumentOutOfRangeException in SetOutput (an Add with no outputs).
    [Fact]
    public void ANodeWithoutOutputsIsAnInvalidGraph()
    {
        var e = Refuse(new OnnxBuilder().Input("x", 1, 4).Node("Add", ["x", "x"], []).Node("Relu", ["x"], ["y"]).Output("y"));
        Assert.Contains("has no outputs", e.Message);
    }

    // ArgumentOutOfRangeException (Cast read input 0 of a node without inputs), caught with any such
    // node by shape inference as MG1005.
    [Fact]
    public void ACastWithoutInputsIsAnInvalidGraph()
    {
        var e = Refuse(new OnnxBuilder().Input("x", 1, 4).Node("Cast", [], ["c"], ("to", 1)).Node("Add", ["x", "c"], ["y"]).Output("y"));
        Assert.Contains("lacks an input", e.Message);
    }

    // DivideByZeroException while folding an integer Div of constants (and OverflowException for
    // long.MinValue / -1).
    [Theory]
    [InlineData(6L, 0L)]
    [InlineData(long.MinValue, -1L)]
    public void AnIntegerDivisionThatFailsInConstantsIsAnInvalidGraph(long a, long b)
    {
        var e = Refuse(new OnnxBuilder().Input("x", 1, 4).Initializer("a", [a]).Initializer("b", [b])
            .Node("Div", ["a", "b"], ["q"]).Node("Reshape", ["x", "q"], ["y"]).Output("y"));
        Assert.Contains("constant inputs cannot be computed", e.Message);
    }

    // Google.Protobuf's parser throws ArgumentOutOfRangeException (an unknown group in a TensorProto)
    // and IndexOutOfRangeException (a varint at the end of a TypeProto) on these mutated models.
    [Theory]
    [InlineData("CAgSDk1vZGVsR2VuLlRlc3RzOsgBChsKAXgKAXcSAW0aCE1hdE11bF8wIgZNYXRNdWwKFQoBbQoBYhIBYRoFQWRkXzEiA0FkZAoXCgFhEgF5GglTaWdtb2lkXzIiBExvb3ASBHRlc3Qq0P///wcQAUIBd0owIZ59P+aHpb6vMDC//9NCv2CrfT50n2i/8YHevjQMmoCAAis/KhYKAQMQAUIBYkoMs2/TvrtSyj6I3zo/WhMKAXgSDgoMCAESCAoCCAEKAggKYgkKAXkSBAoCCAFCAhAL")]
    [InlineData("CIABEg5Nb2RlbEdlbi5UZXN0czriAQo7CgF4CgF3CgFyEgNzZXESAWgaBUdSVV8wIgNHUlUqHAoLaGlkZGVuX3NpemUYAiIICOo3E5tpKsigAQISBHRlc3QqVAoDAQYDEAFCAXdKSON9Pb8pYk2/UsyZvpMAAL6lPKu+gQTYvictcT+2TWG9SFIXv/uLUj8HUdk9cUUlPZSHfL8JECs/aDUnPiy86b7JvxG+73cwvyo8CgMBBgIQAUIBckowIZ59P+aHpb6vMDC//9NCv2CrfT50n2i/8YHevjQMmr1wCJu9onzLUlYSPL+E+Ss/YgkKAWgS/////wc=")]
    public void ProtobufParserExceptionsAreNotOnnx(string model) =>
        Assert.Equal(ErrorCodes.NotOnnx, Assert.Throws<ModelGenException>(() => OnnxModelLoader.Parse(Convert.FromBase64String(model), Path)).Code);

    // Google.Protobuf allocated 2 GB for a packed double_data declaring 0x7FFFFFD0 bytes (in a 226-byte
    // model) before failing; the wire format is checked first now.
    [Fact]
    public void ALengthPrefixNearTwoGibibytesAllocatesNothing() =>
        RefuseCheaply(() => OnnxModelLoader.Parse(Convert.FromBase64String(
            "CAgSDk1vZGVsR2VuLlRlc3RzOs8BCjoKAXgKAXcSAWMaD0NvbnZUcmFuc3Bvc2VfMCINQ29udlRyaQAAAAhzZSoPCgdzdHJpZGVzQgECoAEHCiQKAWMSAWESAWIaB1NwbGl0XzEiA1BhZCoLCgRheGlzGAGgAQIKFQoBYQoBYhIBeRoFTXVsXzIiA011bBIEdGVzdComCgMBAgIQAUIBd0oQe8MhP1Rkez8kBQM+hFw0vlLQ////BwoBeBIWChQIARIQCgIIAQoCCAEKAggDCgIIAmIJCgF5EgQKAggBQgIQDQ=="), Path),
            ErrorCodes.NotOnnx);

    [Fact]
    public void APbLengthPrefixNearTwoGibibytesAllocatesNothing() =>
        RefuseCheaply(() => CalibrationData.ReadPb([0x08, 0x01, 0x10, 0x0B, 0x52, 0xD0, 0xFF, 0xFF, 0xFF, 0x07, 0, 0, 0, 0, 0, 0, 0, 0], "data.pb"), ErrorCodes.DataFileInvalid);

    // NullReferenceException planning the arena: a Sigmoid naming a second output, the graph's output.
    [Fact]
    public void AnOutputTheOperatorDoesNotHaveIsAnInvalidGraph()
    {
        string path = new OnnxBuilder().Input("x", 1, 4).Node("Sigmoid", ["x"], ["s", "y"]).Output("y").Save();
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = path }));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Contains("'y' has no shape", e.Message);
    }

    // InvalidOperationException: a Shape of a constant naming a second output was folded, and Shape's
    // Evaluate throws (its value is set during shape inference).
    [Fact]
    public void AShapeWithTwoOutputsIsAnInvalidGraph()
    {
        var e = Refuse(new OnnxBuilder().Input("x", 1, 4).Initializer("w", [2, 3], new float[6])
            .Node("Shape", ["w"], ["s", "t"]).Node("Reshape", ["x", "s"], ["y"]).Output("y"));
        Assert.Contains("Shape has one", e.Message);
    }

    // KeyNotFoundException: folding a Split of a constant looked up its unnamed second output.
    [Fact]
    public void FoldingSkipsAnUnnamedOutput()
    {
        var model = new OnnxBuilder().Input("x", 1, 4).Initializer("w", [4], [1, 2, 3, 4])
            .Node("Split", ["w"], ["a", ""], ("axis", 0)).Node("Add", ["x", "a"], ["y"]).Output("y");
        var e = Refuse(model, ErrorCodes.ShapeMismatch); // x [1,4] + a [2] do not broadcast: the fold itself went through
        Assert.Contains("do not broadcast", e.Message);
    }

    // NullReferenceException: a Slice (opset 10+) whose starts input has an empty name.
    [Fact]
    public void ASliceWithoutStartsIsAnInvalidGraph()
    {
        var e = Refuse(new OnnxBuilder().Input("x", 1, 4).Initializer("ends", [2L])
            .Node("Slice", ["x", "", "ends"], ["y"]).Output("y"));
        Assert.Contains("starts is required", e.Message);
    }

    /// <summary>A float tensor of 2^28 elements (the most allowed) holding one value: 1 GB was allocated before the count was checked.</summary>
    static TensorProto Hollow()
    {
        var t = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 1 << 14, 1 << 14 } };
        t.FloatData.Add(1f);
        return t;
    }

    [Fact]
    public void AnInitializerDeclaringMoreValuesThanItHoldsAllocatesNothing()
    {
        var model = new OnnxBuilder().Input("x", 1, 4).Node("Relu", ["x"], ["y"]).Output("y");
        model.Model.Graph.Initializer.Add(Hollow());
        RefuseCheaply(() => OnnxImporter.Import(OnnxModelLoader.Parse(model.Bytes(), Path), Path), ErrorCodes.InvalidGraph);
    }

    [Fact]
    public void APbTensorDeclaringMoreValuesThanItHoldsAllocatesNothing() =>
        RefuseCheaply(() => CalibrationData.ReadPb(Hollow().ToByteArray(), "data.pb"), ErrorCodes.DataFileInvalid);

    static byte[] Npz()
    {
        var memory = new MemoryStream();
        using (var zip = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
        using (var s = zip.CreateEntry("x.npy", CompressionLevel.NoCompression).Open())
            s.Write(NpyReaderTests.Npy("<f4", "(1, 2)", NpyReaderTests.Floats(1, 2)));
        return memory.ToArray();
    }

    static ModelGenException RefuseNpz(byte[] npz)
    {
        var e = Assert.Throws<ModelGenException>(() => CalibrationData.FromNpz(new MemoryStream(npz), "data.npz", [new DataInput("x", [1, 2])], 1f));
        Assert.Equal(ErrorCodes.DataFileInvalid, e.Code);
        return e;
    }

    // InvalidDataException: the zip's entry count was read (lazily) outside the handler.
    [Fact]
    public void AnNpzWhoseEntryCountDisagreesWithItsDirectoryIsACodedError()
    {
        var npz = Npz();
        int end = npz.Length - 22; // the end-of-central-directory record: its entry counts at +8 and +10
        BinaryPrimitives.WriteUInt16LittleEndian(npz.AsSpan(end + 8), 2);
        BinaryPrimitives.WriteUInt16LittleEndian(npz.AsSpan(end + 10), 2);
        Assert.Contains("not a readable .npz", RefuseNpz(npz).Message);
    }

    // OverflowException: an entry declaring exactly 2 GiB passed the size check and failed new byte[].
    [Fact]
    public void AnNpzEntryDeclaringTwoGibibytesIsACodedError()
    {
        var npz = Npz();
        int directory = npz.AsSpan().LastIndexOf("PK\u0001\u0002"u8); // the central directory entry: its size at +24
        BinaryPrimitives.WriteUInt32LittleEndian(npz.AsSpan(directory + 24), 1u << 31);
        Assert.Contains("2,147,483,648 bytes", RefuseNpz(npz).Message);
    }
}
