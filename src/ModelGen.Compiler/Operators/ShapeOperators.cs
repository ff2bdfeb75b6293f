using ModelGen.Compiler.Import;

namespace ModelGen.Compiler.Operators;

/// <summary>Flatten: [d0..dn] → [d0·…·d(axis−1), d(axis)·…·dn].</summary>
public sealed class FlattenOperator() : Operator("Flatten")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.ReshapeRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 1, 1);
        RejectAttributes(graph, node, "axis");
        var x = ShapeOf(graph, node, 0);
        long axisAttr = node.Int("axis", 1);
        if (axisAttr < 0 && graph.Opset < 11) throw Error(graph, node, "a negative axis needs opset 11", ErrorCodes.UnsupportedAttribute);
        int axis = NormalizeAxis(graph, node, axisAttr, x.Length);
        SetOutput(graph, node, 0, Shape(x, axis));
    }

    static int[] Shape(int[] x, int axis) => [(int)TensorData.Size(x[..axis]), (int)TensorData.Size(x[axis..])];

    public override void Lower(Node node, ILowering lowering) => lowering.Alias(node.Inputs[0], node.Outputs[0], node);

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        long axis = node.Int("axis", 1);
        int a = (int)(axis < 0 ? axis + x.Shape.Length : axis);
        return [new TensorData(Shape(x.Shape, a), x.Floats)];
    }
}

/// <summary>Reshape to a constant shape input (0 copies the input's dimension unless allowzero, −1 is inferred).</summary>
public sealed class ReshapeOperator() : Operator("Reshape")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.ReshapeRule();

    protected override bool AcceptsIntInput(Node node, int input) => input == 1;

    public override void InferShapes(Node node, Graph graph)
    {
        RejectAttributes(graph, node, "allowzero");
        if (!node.HasInput(1))
            throw Error(graph, node, "Reshape with a 'shape' attribute (opset < 5) is not supported", ErrorCodes.UnsupportedAttribute);
        RequireInputs(graph, node, 2, 2);
        if (IsRuntimeShapeInput(graph, node, 1))
        {
            var declared = DeclaredOutput(graph, node, 0, "the target shape");
            if (TensorData.Size(declared) != TensorData.Size(ShapeOf(graph, node, 0)))
                throw Error(graph, node, $"the declared output shape [{string.Join(",", declared)}] does not hold the input's elements");
            SetOutput(graph, node, 0, declared);
            return;
        }
        var shapeValue = graph[node.Inputs[1]];
        if (shapeValue.Constant is not { Type: ElementType.Int64 } target)
            throw Error(graph, node, $"the target shape '{shapeValue.Name}' is computed at run time; ModelGen needs it constant (export with fixed shapes, or simplify the model with onnxsim)", ErrorCodes.DynamicShape);
        var x = ShapeOf(graph, node, 0);
        var shape = Resolve(x, target.Ints, node.Int("allowzero", 0) != 0)
            ?? throw Error(graph, node, $"cannot reshape [{string.Join(",", x)}] to [{string.Join(",", target.Ints)}]");
        SetOutput(graph, node, 0, shape);
    }

    public static int[]? Resolve(int[] x, long[] target, bool allowZero)
    {
        var shape = new int[target.Length];
        int inferred = -1;
        long known = 1;
        for (int i = 0; i < target.Length; i++)
        {
            long d = target[i];
            if (d == -1)
            {
                if (inferred >= 0) return null;
                inferred = i;
                continue;
            }
            if (d == 0 && !allowZero)
            {
                if (i >= x.Length) return null;
                d = x[i];
            }
            if (d < 0 || d > OnnxImporter.MaxElements) return null;
            shape[i] = (int)d;
            known *= d;
            if (known > OnnxImporter.MaxElements) return null;
        }
        long total = TensorData.Size(x);
        if (inferred >= 0)
        {
            if (known == 0 || total % known != 0) return null;
            shape[inferred] = (int)(total / known);
        }
        else if (known != total) return null;
        return shape;
    }

    public override void Lower(Node node, ILowering lowering)
    {
        lowering.Alias(node.Inputs[0], node.Outputs[0], node);
        if (lowering.Graph[node.Inputs[1]].Constant is null)
            AddShapeCheck(node, lowering, 1, "reshape", lowering.Graph[node.Inputs[0]].Shape!, lowering.Graph[node.Outputs[0]].Shape!,
                allowZero: node.Int("allowzero", 0) != 0);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!;
        var shape = Resolve(x.Shape, inputs[1]!.Ints, node.Int("allowzero", 0) != 0)
            ?? throw new ArgumentException($"{node.Describe}: cannot reshape [{string.Join(",", x.Shape)}] to [{string.Join(",", inputs[1]!.Ints)}]");
        return [x.Type == ElementType.Float32 ? new TensorData(shape, x.Floats) : new TensorData(shape, x.Ints)];
    }
}

/// <summary>Constant: its value attribute (value, value_float(s), value_int(s)) becomes a constant.</summary>
public sealed class ConstantOperator() : Operator("Constant")
{
    public override void InferShapes(Node node, Graph graph)
    {
        var data = Value(node, graph);
        var v = graph.GetOrAdd(node.Outputs[0]);
        v.Constant = data;
        v.Shape = data.Shape;
        v.Type = data.Type;
    }

    static TensorData Value(Node node, Graph graph)
    {
        if (node.Attributes.Count != 1)
            throw Error(graph, node, "needs exactly one value attribute", ErrorCodes.InvalidGraph);
        var (name, a) = node.Attributes.First();
        return name switch
        {
            "value" when a.T is not null => OnnxImporter.ReadTensor(a.T, graph.ModelPath),
            "value_float" => new TensorData([], [a.F]),
            "value_floats" => new TensorData([a.Floats.Count], [.. a.Floats]),
            "value_int" => new TensorData([], [a.I]),
            "value_ints" => new TensorData([a.Ints.Count], [.. a.Ints]),
            _ => throw Error(graph, node, $"attribute '{name}' is not supported (supported: value, value_float, value_floats, value_int, value_ints)", ErrorCodes.UnsupportedAttribute),
        };
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs) => [Value(node, new Graph())];
}
