using Microsoft.ML.OnnxRuntime;
using ModelGen.Compiler;
using ModelGen.Tests.Support;

namespace ModelGen.Tests;

/// <summary>int64 inputs (token ids) into a Gather: the embedding lookup of small transformers and keyword models.</summary>
public sealed class EmbeddingTests
{
    internal static OnnxBuilder Model()
    {
        var b = new OnnxBuilder().Input("x", 1, 2).Initializer("table", [10, 4], OnnxBuilder.Random(40, 1))
            .Initializer("w", [4, 3], OnnxBuilder.Random(12, 2));
        // ids: int64 [1, 5]
        var ids = new Onnx.Proto.ValueInfoProto { Name = "token_ids", Type = new Onnx.Proto.TypeProto { TensorType = new Onnx.Proto.TypeProto.Types.Tensor { ElemType = 7, Shape = new Onnx.Proto.TensorShapeProto() } } };
        ids.Type.TensorType.Shape.Dim.Add(new Onnx.Proto.TensorShapeProto.Types.Dimension { DimValue = 1 });
        ids.Type.TensorType.Shape.Dim.Add(new Onnx.Proto.TensorShapeProto.Types.Dimension { DimValue = 5 });
        b.Model.Graph.Input.Clear();
        b.Model.Graph.Input.Add(ids);
        return b.Node("Gather", ["table", "token_ids"], ["emb"], ("axis", 0))
            .Node("ReduceMean", ["emb"], ["pooled"], ("axes", new[] { 1 }), ("keepdims", 0))
            .Node("MatMul", ["pooled", "w"], ["y"]).Output("y");
    }

    [Fact]
    public void TokenIdsSelectRowsLikeOnnxRuntimeAndBadIdsThrow()
    {
        var model = Model();
        string path = model.Save();
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "Embedder", Namespace = "Embedding" });
        var source = Generator.Emit.ModelEmitter.Emit(artifact);
        Assert.Contains("public static void Run(global::System.ReadOnlySpan<long> tokenIds, global::System.Span<float> y)", source);
        var models = GeneratedModels.Build(artifact);

        long[] ids = [3, 0, 9, -1, 3];
        var y = new float[3];
        models.Run(artifact, [ids], [y]);
        using var ort = new OnnxRuntimeOracle(path);
        using var value = OrtValue.CreateTensorValueFromMemory(ids, [1, 5]);
        Tolerance.AssertClose(ort.Run(("token_ids", value))[0], y, "pooled embedding");

        var e = Assert.Throws<System.Reflection.TargetInvocationException>(() => models.Run(artifact, [new long[] { 1, 2, 10, 0, 0 }], [y]));
        Assert.IsType<ArgumentOutOfRangeException>(e.InnerException);
    }

    [Fact]
    public void AShapeFoldedToAConstantCanBeAnInt64Output()
    {
        string path = new OnnxBuilder().Input("x", 2, 3, 4).Node("Shape", ["x"], ["dims"]).Node("Relu", ["x"], ["y"]).Output("dims").Output("y").Save();
        var artifact = ModelCompiler.Compile(new CompileOptions { ModelPath = path, ClassName = "WithShape", Namespace = "Embedding" });
        Assert.Contains("global::System.Span<long> dims", Generator.Emit.ModelEmitter.Emit(artifact));
        var dims = new long[3];
        var y = new float[24];
        GeneratedModels.Build(artifact).Run(artifact, [new float[24]], [dims, y]);
        Assert.Equal([2L, 3L, 4L], dims);
    }
}
