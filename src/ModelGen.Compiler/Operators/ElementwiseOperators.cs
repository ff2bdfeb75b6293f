using ModelGen.Compiler.Ir;

namespace ModelGen.Compiler.Operators;

/// <summary>Add with multidirectional (numpy) broadcasting.</summary>
public sealed class AddOperator : Operator
{
    public override string OpType => "Add";

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 2, 2);
        RejectAttributes(graph, node);
        var (a, b) = (ShapeOf(graph, node, 0), ShapeOf(graph, node, 1));
        var shape = Broadcast.Shape(a, b) ?? throw Error(graph, node, $"shapes [{string.Join(",", a)}] and [{string.Join(",", b)}] do not broadcast");
        SetOutput(graph, node, 0, shape);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var a = inputs[0]!; var b = inputs[1]!;
        var shape = Broadcast.Shape(a.Shape, b.Shape)!;
        var (sa, sb) = (Broadcast.Strides(a.Shape, shape), Broadcast.Strides(b.Shape, shape));
        var y = new float[TensorData.Size(shape)];
        for (long i = 0; i < y.LongLength; i++)
            y[i] = a.Floats[Broadcast.Offset(i, shape, sa)] + b.Floats[Broadcast.Offset(i, shape, sb)];
        return [new TensorData(shape, y)];
    }
}

/// <summary>Relu: max(x, 0).</summary>
public sealed class ReluOperator : Operator
{
    public override string OpType => "Relu";

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 1, 1);
        RejectAttributes(graph, node);
        SetOutput(graph, node, 0, ShapeOf(graph, node, 0));
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs) =>
        [new TensorData(inputs[0]!.Shape, [.. inputs[0]!.Floats.Select(Relu)])];

    public static float Relu(float v) => v > 0f ? v : v == 0f || v < 0f ? 0f : v; // NaN stays NaN, as in ONNX Runtime
}
