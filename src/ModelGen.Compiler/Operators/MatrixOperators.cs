using ModelGen.Artifact;

namespace ModelGen.Compiler.Operators;

/// <summary>Gemm: Y = alpha·A'·B' + beta·C, A' and B' optionally transposed, C broadcast to [M, N].</summary>
public sealed class GemmOperator() : Operator("Gemm")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.GemmRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 2, 3);
        RejectAttributes(graph, node, "alpha", "beta", "transA", "transB", "broadcast");
        var (a, b) = (ShapeOf(graph, node, 0), ShapeOf(graph, node, 1));
        if (a.Length != 2 || b.Length != 2) throw Error(graph, node, $"A and B must be matrices, got [{string.Join(",", a)}] and [{string.Join(",", b)}]");
        var (m, k, n) = Dims(node, a, b);
        if (k != (node.Int("transB", 0) != 0 ? b[1] : b[0])) throw Error(graph, node, $"inner dimensions differ: A [{string.Join(",", a)}], B [{string.Join(",", b)}]");
        if (node.HasInput(2) && Broadcast.Shape(ShapeOf(graph, node, 2), [m, n]) is var s && (s is null || !s.SequenceEqual([m, n])))
            throw Error(graph, node, $"C does not broadcast to [{m},{n}]");
        SetOutput(graph, node, 0, [m, n]);
    }

    static (int M, int K, int N) Dims(Node node, int[] a, int[] b)
    {
        bool ta = node.Int("transA", 0) != 0, tb = node.Int("transB", 0) != 0;
        return (ta ? a[1] : a[0], ta ? a[0] : a[1], tb ? b[0] : b[1]);
    }

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var a = inputs[0]!; var b = inputs[1]!; var c = inputs.Length > 2 ? inputs[2] : null;
        bool ta = node.Int("transA", 0) != 0, tb = node.Int("transB", 0) != 0;
        float alpha = node.Float("alpha", 1f), beta = node.Float("beta", 1f);
        var (m, k, n) = Dims(node, a.Shape, b.Shape);
        var y = new float[(long)m * n];
        long[]? cs = c is null ? null : Broadcast.Strides(c.Shape, [m, n]);
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = 0;
            for (int p = 0; p < k; p++)
                sum += (double)a.Floats[ta ? (long)p * m + i : (long)i * k + p] * b.Floats[tb ? (long)j * k + p : (long)p * n + j];
            double r = alpha * sum;
            if (c is not null) r += beta * c.Floats[i * cs![0] + j * cs[1]];
            y[(long)i * n + j] = (float)r;
        }
        return [new TensorData([m, n], y)];
    }

    /// <summary>Gemm with B or C computed at run time (constant ones become Dense during normalization).</summary>
    public override void Lower(Node node, ILowering lowering)
    {
        var inputs = node.Inputs.Where(i => i.Length > 0).Select(lowering.Tensor).ToArray();
        var k = lowering.AddNode(KernelKind.Gemm, "Gemm", node.Name, inputs, [lowering.Tensor(node.Outputs[0])]);
        k.SetGemm(new GemmAttributes(node.Int("transA", 0) != 0, node.Int("transB", 0) != 0, node.Float("alpha", 1f), node.Float("beta", 1f)));
        Plan.LoweringParts.Activation(k, node);
    }
}

/// <summary>MatMul with numpy semantics: batched, broadcasting, 1-D operands promoted and the added axis removed.</summary>
public sealed class MatMulOperator() : Operator("MatMul")
{
    public override Training.GradientRule Gradient { get; } = new Training.Rules.MatMulRule();

    public override void InferShapes(Node node, Graph graph)
    {
        RequireInputs(graph, node, 2, 2);
        RejectAttributes(graph, node);
        var shape = OutputShape(ShapeOf(graph, node, 0), ShapeOf(graph, node, 1))
            ?? throw Error(graph, node, $"shapes [{string.Join(",", ShapeOf(graph, node, 0))}] and [{string.Join(",", ShapeOf(graph, node, 1))}] do not multiply");
        SetOutput(graph, node, 0, shape);
    }

    /// <summary>The output shape, or null when the operands do not multiply.</summary>
    public static int[]? OutputShape(int[] a, int[] b)
    {
        if (a.Length == 0 || b.Length == 0) return null;
        int[] a2 = a.Length == 1 ? [1, a[0]] : a, b2 = b.Length == 1 ? [b[0], 1] : b;
        if (a2[^1] != b2[^2]) return null;
        var batch = Broadcast.Shape(a2[..^2], b2[..^2]);
        if (batch is null) return null;
        var result = new List<int>(batch);
        if (a.Length > 1) result.Add(a2[^2]);
        if (b.Length > 1) result.Add(b2[^1]);
        return [.. result];
    }

    public override void Lower(Node node, ILowering lowering) =>
        lowering.AddNode(KernelKind.MatMul, "MatMul", node.Name, Plan.LoweringParts.Inputs(node, lowering), [lowering.Tensor(node.Outputs[0])]);

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var a = inputs[0]!; var b = inputs[1]!;
        int[] a2 = a.Shape.Length == 1 ? [1, a.Shape[0]] : a.Shape, b2 = b.Shape.Length == 1 ? [b.Shape[0], 1] : b.Shape;
        int m = a2[^2], k = a2[^1], n = b2[^1];
        var batch = Broadcast.Shape(a2[..^2], b2[..^2])!;
        long batchCount = TensorData.Size(batch);
        var aStrides = Broadcast.Strides(a2[..^2], batch);
        var bStrides = Broadcast.Strides(b2[..^2], batch);
        var y = new float[batchCount * m * n];
        for (long bi = 0; bi < batchCount; bi++)
        {
            long aBase = Broadcast.Offset(bi, batch, aStrides) * m * k;
            long bBase = Broadcast.Offset(bi, batch, bStrides) * k * n;
            for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++) sum += (double)a.Floats[aBase + (long)i * k + p] * b.Floats[bBase + (long)p * n + j];
                y[(bi * m + i) * n + j] = (float)sum;
            }
        }
        return [new TensorData(OutputShape(a.Shape, b.Shape)!, y)];
    }
}

/// <summary>
/// ModelGen's own fully connected node, the form Gemm and MatMul(+Add) take after normalization:
/// y[r, n] = Σk x[r, k]·W[n, k] + b[n], every leading axis of x a row. W is stored row-major [N, K]
/// so each output is one contiguous dot product.
/// </summary>
public sealed class DenseOperator() : Operator(Name)
{
    public const string Name = "Dense";
    public const string Domain = "ai.modelgen";

    public override void InferShapes(Node node, Graph graph)
    {
        var x = ShapeOf(graph, node, 0);
        var w = ShapeOf(graph, node, 1);
        int k = Transposed(node) ? x[0] : x[^1];
        if (w.Length != 2 || w[1] != k) throw Error(graph, node, "Dense weight must be [N, K]");
        SetOutput(graph, node, 0, OutputShape(node, x, w[0]));
    }

    static bool Transposed(Node node) => node.Int("transA", 0) != 0;

    static int[] OutputShape(Node node, int[] x, int n) => Transposed(node) ? [x[1], n] : [.. x[..^1], n];

    public override void Lower(Node node, ILowering lowering) => Plan.DenseLowering.Lower(node, lowering);

    public override Training.GradientRule Gradient { get; } = new Training.Rules.DenseRule();

    public override TensorData[] Evaluate(Node node, TensorData?[] inputs)
    {
        var x = inputs[0]!; var w = inputs[1]!; var b = inputs.Length > 2 ? inputs[2] : null;
        bool ta = Transposed(node);
        int n = w.Shape[0], k = w.Shape[1];
        long rows = ta ? x.Shape[1] : x.Count / k;
        var y = new float[rows * n];
        for (long r = 0; r < rows; r++)
        for (int j = 0; j < n; j++)
        {
            double sum = 0;
            for (int p = 0; p < k; p++) sum += (double)x.Floats[ta ? p * rows + r : r * k + p] * w.Floats[(long)j * k + p];
            if (b is not null) sum += b.Floats.Length == n ? b.Floats[j] : b.Floats[r * n + j];
            y[r * n + j] = (float)sum;
        }
        return [new TensorData(OutputShape(node, x.Shape, n), y)];
    }
}
