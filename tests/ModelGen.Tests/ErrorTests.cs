using ModelGen.Compiler;
using ModelGen.Onnx;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>Every user-caused failure is a ModelGenException with its code, the file and, for a node, its name and operator.</summary>
public sealed class ErrorTests
{
    static ModelGenException Fails(string path, int batch = 1) =>
        Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = path, BatchSize = batch }));

    [Fact]
    public void MissingFileIsMG0001()
    {
        var e = Fails("/nonexistent/model.onnx");
        Assert.Equal(ErrorCodes.FileNotFound, e.Code);
        Assert.StartsWith("/nonexistent/model.onnx: error MG0001: ", e.Canonical);
    }

    [Fact]
    public void UnsupportedOperatorNamesNodeOperatorOpsetAndTheSupportedOnes()
    {
        string path = new OnnxBuilder().Input("x", 1, 4).Node("Einsum", ["x"], ["y"]).NamedLast("my_node").Output("y").Save();
        var e = Fails(path);
        Assert.Equal(ErrorCodes.UnsupportedOperator, e.Code);
        Assert.Contains("'my_node'", e.Message);
        Assert.Contains("Einsum", e.Message);
        Assert.Contains("opset 13", e.Message);
        Assert.Contains("supported operators: Abs, Add, ", e.Message);
        Assert.Contains(", Conv, ", e.Message);
        Assert.Equal(path, e.File);
    }

    [Fact]
    public void UnsupportedAttributeIsMG1003()
    {
        string path = new OnnxBuilder().Input("x", 1, 1, 4, 4).Node("MaxPool", ["x"], ["y"], ("kernel_shape", new[] { 2, 2 }), ("bogus", 1)).Output("y").Save();
        var e = Fails(path);
        Assert.Equal(ErrorCodes.UnsupportedAttribute, e.Code);
        Assert.Contains("bogus", e.Message);
    }

    [Fact]
    public void NonBatchSymbolicDimensionIsMG1004AndBatchSizeIsValidated()
    {
        string path = new OnnxBuilder().Input("x", 1, null).Node("Relu", ["x"], ["y"]).Output("y").Save();
        Assert.Equal(ErrorCodes.DynamicShape, Fails(path).Code);
        string ok = new OnnxBuilder().Input("x", null, 3).Node("Relu", ["x"], ["y"]).Output("y").Save();
        Assert.Equal(ErrorCodes.BadOption, Fails(ok, batch: 0).Code);
    }

    [Fact]
    public void TruncatedAndCorruptFilesAreMG0003NeverACrash()
    {
        byte[] model = File.ReadAllBytes(TestData.Mnist("lenet5.onnx"));
        string dir = Directory.CreateTempSubdirectory("modelgen-corrupt").FullName;
        var rng = new Random(42);
        int failures = 0;
        foreach (int length in new[] { 0, 1, 7, 100, 1000, model.Length / 2, model.Length - 1 })
        {
            string path = Path.Combine(dir, $"truncated-{length}.onnx");
            File.WriteAllBytes(path, model[..length]);
            var e = Fails(path);
            // An empty file cannot be told from a FIFO or device before it is opened: MG0008 says so.
            Assert.True(length == 0 ? e.Code == ErrorCodes.NotRegularFile : e.Code is ErrorCodes.NotOnnx or ErrorCodes.NoGraph or ErrorCodes.InvalidGraph, e.Canonical);
            failures++;
        }
        for (int i = 0; i < 40; i++)
        {
            var copy = (byte[])model.Clone();
            for (int k = 0; k < 8; k++) copy[rng.Next(Math.Min(copy.Length, 4096))] ^= (byte)rng.Next(1, 256);
            string path = Path.Combine(dir, $"flipped-{i}.onnx");
            File.WriteAllBytes(path, copy);
            try { ModelCompiler.Compile(new CompileOptions { ModelPath = path }); }
            catch (ModelGenException e) { Assert.StartsWith("MG", e.Code); failures++; }
        }
        Assert.True(failures >= 7);
    }

    [Fact]
    public void CyclesAndMissingInitializersAreMG1005()
    {
        string cycle = new OnnxBuilder().Input("x", 1, 2).Node("Add", ["x", "b"], ["a"]).Node("Relu", ["a"], ["b"]).Output("b").Save();
        var e = Fails(cycle);
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Contains("cycle", e.Message);
        string missing = new OnnxBuilder().Input("x", 1, 2).Node("Add", ["x", "weights"], ["y"]).Output("y").Save();
        e = Fails(missing);
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
        Assert.Contains("'weights'", e.Message);
    }

    [Fact]
    public void HugeDeclaredDimensionsAreRefusedBeforeAllocating()
    {
        string path = new OnnxBuilder().Input("x", 1_000_000, 1_000_000).Node("Relu", ["x"], ["y"]).Output("y").Save();
        Assert.Equal(ErrorCodes.TooLarge, Fails(path).Code);
        var b = new OnnxBuilder().Input("x", 1, 2);
        var t = new Onnx.Proto.TensorProto { Name = "w", DataType = 1 };
        t.Dims.Add(1L << 40);
        b.Model.Graph.Initializer.Add(t);
        string init = b.Node("Add", ["x", "w"], ["y"]).Output("y").Save();
        Assert.Equal(ErrorCodes.InvalidGraph, Fails(init).Code);
    }

    [Fact]
    public void ExternalDataOutsideTheModelFolderIsRefused()
    {
        var b = new OnnxBuilder().Input("x", 1, 2);
        var t = new Onnx.Proto.TensorProto { Name = "w", DataType = 1, DataLocation = Onnx.Proto.TensorProto.Types.DataLocation.External };
        t.Dims.Add(2);
        t.ExternalData.Add(new Onnx.Proto.StringStringEntryProto { Key = "location", Value = "../../../etc/passwd" });
        b.Model.Graph.Initializer.Add(t);
        string path = b.Node("Add", ["x", "w"], ["y"]).Output("y").Save();
        var e = Fails(path);
        Assert.Equal(ErrorCodes.ExternalDataOutsideFolder, e.Code);
    }

    [Fact]
    public void ExternalDataInsideTheFolderIsRead()
    {
        var b = new OnnxBuilder().Input("x", 1, 2);
        var t = new Onnx.Proto.TensorProto { Name = "w", DataType = 1, DataLocation = Onnx.Proto.TensorProto.Types.DataLocation.External };
        t.Dims.Add(2);
        t.ExternalData.Add(new Onnx.Proto.StringStringEntryProto { Key = "location", Value = "weights.bin" });
        t.ExternalData.Add(new Onnx.Proto.StringStringEntryProto { Key = "offset", Value = "4" });
        b.Model.Graph.Initializer.Add(t);
        string path = b.Node("Add", ["x", "w"], ["y"]).Output("y").Save();
        var bytes = new byte[12];
        BitConverter.GetBytes(1.5f).CopyTo(bytes, 4);
        BitConverter.GetBytes(-2f).CopyTo(bytes, 8);
        File.WriteAllBytes(Path.Combine(Path.GetDirectoryName(path)!, "weights.bin"), bytes);
        var graph = ModelCompiler.Import(path);
        Assert.Equal([1.5f, -2f], graph["w"].Constant!.Floats);
        File.Delete(Path.Combine(Path.GetDirectoryName(path)!, "weights.bin"));
        Assert.Equal(ErrorCodes.ExternalDataMissing, Fails(path).Code);
    }

    [Fact]
    public void NonFloatInputAndBadOptionsAreReported()
    {
        var b = new OnnxBuilder().Input("x", 1, 2);
        b.Model.Graph.Input[0].Type.TensorType.ElemType = 11; // double
        string path = b.Node("Relu", ["x"], ["y"]).Output("y").Save();
        var e = Fails(path);
        Assert.Equal(ErrorCodes.UnsupportedDataType, e.Code);
        Assert.Contains("double", e.Message);

        // int64 inputs are for indices; arithmetic on them is refused at the node.
        var ints = new OnnxBuilder().Input("x", 1, 2);
        ints.Model.Graph.Input[0].Type.TensorType.ElemType = 7;
        e = Fails(ints.Node("Relu", ["x"], ["y"]).NamedLast("relu_on_ints").Output("y").Save());
        Assert.Equal(ErrorCodes.UnsupportedDataType, e.Code);
        Assert.Contains("'relu_on_ints'", e.Message);

        string ok = new OnnxBuilder().Input("x", 1, 2).Node("Relu", ["x"], ["y"]).Output("y").Save();
        Assert.Equal(ErrorCodes.BadOption, Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = ok, Simd = "avx9000" })).Code);
        Assert.Equal(ErrorCodes.BadOption, Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = ok, ClassName = "class" })).Code);
    }
}

/// <summary>Hostile shapes of graphs: very many nodes, deep chains in reverse file order, padding that explodes.</summary>
public sealed class HostileGraphTests
{
    [Fact]
    public void TooManyNodesIsRefusedUpFront()
    {
        var b = new OnnxBuilder().Input("x", 1, 2);
        string prev = "x";
        for (int i = 0; i < Compiler.Import.OnnxImporter.MaxNodes + 1; i++) { b.Node("Relu", [prev], ["v" + i]); prev = "v" + i; }
        string path = b.Output(prev).Save();
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = path }));
        Assert.Equal(ErrorCodes.TooLarge, e.Code);
    }

    [Fact]
    public void ALongChainInReverseFileOrderCompilesInLinearTime()
    {
        // 20,000 nodes listed last-first: a quadratic topological sort would take minutes.
        var b = new OnnxBuilder().Input("x", 1, 2);
        const int count = 20_000;
        for (int i = count - 1; i >= 0; i--) b.Node(i % 2 == 0 ? "Relu" : "Neg", [i == 0 ? "x" : "v" + (i - 1)], ["v" + i]);
        string path = b.Output("v" + (count - 1)).Save();
        var graph = ModelCompiler.Import(path);
        Assert.Equal(count, graph.Nodes.Count);
        Assert.Equal("x", graph.Nodes[0].Inputs[0]);
    }

    [Fact]
    public void PaddingToAGiganticTensorIsRefused()
    {
        string path = new OnnxBuilder().Input("x", 1, 2).Initializer("p", [0, 0, 0, 1 << 29]).Node("Pad", ["x", "p"], ["y"]).Output("y").Save();
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = path }));
        Assert.True(e.Code is ErrorCodes.TooLarge or ErrorCodes.ShapeMismatch, e.Canonical);
    }

    [Fact]
    public void ClassNamesOverAHundredCharactersAreMG0007()
    {
        string path = new OnnxBuilder().Input("x", 1, 2).Node("Relu", ["x"], ["y"]).Output("y").Save();
        Assert.Equal("A100", ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "A100" }).ClassName);
        var e = Assert.Throws<ModelGenException>(() => ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = new string('A', 100_000) }));
        Assert.Equal(ErrorCodes.BadOption, e.Code);
        Assert.True(e.Message.Length < 1000, "the message quotes the name cut short");
    }

    [Fact]
    public void ConstantFoldingStopsAtABudgetTiedToTheFileSize()
    {
        // A few hundred bytes that would fold into 2 M floats (0.4 M, 0.8 M, 0.8 M) against a budget of 1 M
        // (the smallest): the first Pad folds, the second would pass the budget and is left to run time.
        long step = ModelGen.Compiler.Normalize.ShapeInference.MinFoldingBudget * 2 / 5;
        string path = new OnnxBuilder().Input("x", 1, 1)
            .Node("Constant", [], ["c"], ("value", OnnxBuilder.Tensor("c", [1, 1], [1f])))
            .Initializer("p1", [0, 0, 0, step - 1]).Node("Pad", ["c", "p1"], ["a"])
            .Initializer("p2", [0, 0, 0, step]).Node("Pad", ["a", "p2"], ["b"])
            .Initializer("p3", [0, 0, 0, step]).Node("Pad", ["b", "p3"], ["d"])
            .Node("ReduceSum", ["d"], ["s"]).Node("Add", ["x", "s"], ["y"]).Output("y").Save();
        var graph = ModelCompiler.Import(path);
        Assert.True(new FileInfo(path).Length < 1000);
        Assert.Contains(graph.Nodes, n => n.OpType == "Pad");
        Assert.Equal(1, graph.Values.Values.Count(v => v.Constant is { Count: > 300_000 }));
    }
}
