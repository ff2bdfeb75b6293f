using ModelGen.Compiler.Operators;
using ModelGen.Compiler.Training.Kernels;

namespace ModelGen.Compiler.Training.Rules;

/// <summary>
/// MatMul with numpy semantics (batched, broadcasting, 1-D operands promoted), both operands computed at run
/// time or one a constant weight (a constant B becomes Dense in normalization). Each sample computes the model
/// at batch 1: for each matrix of the broadcast batch, Y = A·B through <see cref="Gemm"/>; backward
/// dA += dY·Bᵀ and dB += Aᵀ·dY, a broadcast (or constant) operand summing its matrices in order.
/// </summary>
public sealed class MatMulRule : GradientRule
{
    /// <summary>A constant operand is a weight.</summary>
    public override bool IsParameter(Node node, int input) => true;

    /// <summary>The product of one sample: m×k by k×n over the broadcast batch, and where each operand's matrix starts.</summary>
    sealed record Layout(int M, int K, int N, long[] AOffsets, long[] BOffsets);

    static Layout LayoutOf(Node node, Graph graph)
    {
        var (a, b) = (graph[node.Inputs[0]].Shape!, graph[node.Inputs[1]].Shape!);
        // As MatMulOperator.Evaluate: a 1-D A is a row, a 1-D B a column.
        int[] a2 = a.Length == 1 ? [1, a[0]] : a, b2 = b.Length == 1 ? [b[0], 1] : b;
        int m = a2[^2], k = a2[^1], n = b2[^1];
        var batch = Broadcast.Shape(a2[..^2], b2[..^2])!;
        var (aStrides, bStrides) = (Broadcast.Strides(a2[..^2], batch), Broadcast.Strides(b2[..^2], batch));
        long count = TensorData.Size(batch);
        var aOffsets = new long[count];
        var bOffsets = new long[count];
        for (long i = 0; i < count; i++)
        {
            aOffsets[i] = Broadcast.Offset(i, batch, aStrides) * m * k;
            bOffsets[i] = Broadcast.Offset(i, batch, bStrides) * k * n;
        }
        return new Layout(m, k, n, aOffsets, bOffsets);
    }

    public override void Forward<T>(NodeRun<T> run)
    {
        var (a, b) = (run.Inputs[0]!, run.Inputs[1]!);
        var (m, k, n, aOffsets, bOffsets) = LayoutOf(run.Node, run.Graph);
        var y = new Tensor<T>(run.BatchedOutputShape(0));
        int ySize = aOffsets.Length * m * n;
        for (int s = 0; s < run.Batch; s++)
        {
            int ao = Samples.Offset(run, 0, s), bo = Samples.Offset(run, 1, s);
            for (int i = 0; i < aOffsets.Length; i++)
                Gemm.Multiply(m, n, k, MatrixView<T>.RowMajor(a.Data, k, ao + (int)aOffsets[i]), MatrixView<T>.RowMajor(b.Data, n, bo + (int)bOffsets[i]),
                    y.Data, s * ySize + i * m * n, accumulate: false);
        }
        run.Outputs = [y];
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        var (a, b) = (run.Inputs[0]!, run.Inputs[1]!);
        var dy = run.OutputGrads[0]!.Data;
        var (m, k, n, aOffsets, bOffsets) = LayoutOf(run.Node, run.Graph);
        int ySize = aOffsets.Length * m * n;
        // Samples, then the broadcast batch, in order: a shared matrix's gradient sums in this fixed order.
        for (int s = 0; s < run.Batch; s++)
        {
            int ao = Samples.Offset(run, 0, s), bo = Samples.Offset(run, 1, s);
            for (int i = 0; i < aOffsets.Length; i++)
            {
                int yo = s * ySize + i * m * n, ai = ao + (int)aOffsets[i], bi = bo + (int)bOffsets[i];
                if (run.InputGrads[0] is { } da)
                    Gemm.Multiply(m, k, n, MatrixView<T>.RowMajor(dy, n, yo), MatrixView<T>.Transposed(b.Data, n, bi), da.Data, ai, accumulate: true);
                if (run.InputGrads[1] is { } db)
                    Gemm.Multiply(k, n, m, MatrixView<T>.Transposed(a.Data, k, ai), MatrixView<T>.RowMajor(dy, n, yo), db.Data, bi, accumulate: true);
            }
        }
    }
}

/// <summary>
/// Gemm left after normalization (B or C computed at run time): Y = alpha·A'·B' + beta·C per sample, A' and B'
/// optionally transposed, C broadcast to [M, N]. Backward: dA' = alpha·dY·B'ᵀ, dB' = alpha·A'ᵀ·dY, dC = beta·dY
/// summed over C's broadcast axes in order.
/// </summary>
public sealed class GemmRule : GradientRule
{
    /// <summary>A constant operand is a weight (or a bias).</summary>
    public override bool IsParameter(Node node, int input) => true;

    sealed record Layout(int M, int K, int N, bool TransA, bool TransB, long[]? CStrides);

    static Layout LayoutOf(Node node, Graph graph)
    {
        var (a, b) = (graph[node.Inputs[0]].Shape!, graph[node.Inputs[1]].Shape!);
        bool ta = node.Int("transA", 0) != 0, tb = node.Int("transB", 0) != 0;
        int m = ta ? a[1] : a[0], k = ta ? a[0] : a[1], n = tb ? b[0] : b[1];
        var c = node.HasInput(2) ? Broadcast.Strides(graph[node.Inputs[2]].Shape!, [m, n]) : null;
        return new Layout(m, k, n, ta, tb, c);
    }

    /// <summary>A' (m×k) of one sample: A, or the transpose of A stored k×m.</summary>
    static MatrixView<T> APrime<T>(Layout l, T[] a, int offset) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T> =>
        l.TransA ? MatrixView<T>.Transposed(a, l.M, offset) : MatrixView<T>.RowMajor(a, l.K, offset);

    /// <summary>A'ᵀ (k×m).</summary>
    static MatrixView<T> APrimeT<T>(Layout l, T[] a, int offset) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T> =>
        l.TransA ? MatrixView<T>.RowMajor(a, l.M, offset) : MatrixView<T>.Transposed(a, l.K, offset);

    /// <summary>B' (k×n).</summary>
    static MatrixView<T> BPrime<T>(Layout l, T[] b, int offset) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T> =>
        l.TransB ? MatrixView<T>.Transposed(b, l.K, offset) : MatrixView<T>.RowMajor(b, l.N, offset);

    /// <summary>B'ᵀ (n×k).</summary>
    static MatrixView<T> BPrimeT<T>(Layout l, T[] b, int offset) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T> =>
        l.TransB ? MatrixView<T>.RowMajor(b, l.K, offset) : MatrixView<T>.Transposed(b, l.N, offset);

    public override void Forward<T>(NodeRun<T> run)
    {
        var l = LayoutOf(run.Node, run.Graph);
        var (a, b, c) = (run.Inputs[0]!, run.Inputs[1]!, l.CStrides is null ? null : run.Inputs[2]!);
        T alpha = T.CreateChecked(run.Node.Float("alpha", 1f)), beta = T.CreateChecked(run.Node.Float("beta", 1f));
        var y = new Tensor<T>(run.BatchedOutputShape(0));
        int size = l.M * l.N;
        for (int s = 0; s < run.Batch; s++)
        {
            int yo = s * size;
            Gemm.Multiply(l.M, l.N, l.K, APrime(l, a.Data, Samples.Offset(run, 0, s)), BPrime(l, b.Data, Samples.Offset(run, 1, s)), y.Data, yo, accumulate: false);
            if (c is null)
            {
                if (alpha != T.One) for (int e = 0; e < size; e++) y.Data[yo + e] *= alpha;
                continue;
            }
            int co = Samples.Offset(run, 2, s);
            for (int i = 0; i < l.M; i++)
                for (int j = 0; j < l.N; j++)
                {
                    ref T v = ref y.Data[yo + i * l.N + j];
                    v = T.FusedMultiplyAdd(beta, c.Data[co + (int)(i * l.CStrides![0] + j * l.CStrides[1])], alpha * v);
                }
        }
        run.Outputs = [y];
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        var l = LayoutOf(run.Node, run.Graph);
        var (a, b) = (run.Inputs[0]!, run.Inputs[1]!);
        T alpha = T.CreateChecked(run.Node.Float("alpha", 1f)), beta = T.CreateChecked(run.Node.Float("beta", 1f));
        var dy = run.OutputGrads[0]!.Data;
        // alpha·dY, the gradient of A'·B'.
        var g = dy;
        if (alpha != T.One)
        {
            g = new T[dy.Length];
            for (int e = 0; e < g.Length; e++) g[e] = alpha * dy[e];
        }
        int size = l.M * l.N;
        for (int s = 0; s < run.Batch; s++)
        {
            int yo = s * size, ao = Samples.Offset(run, 0, s), bo = Samples.Offset(run, 1, s);
            if (run.InputGrads[0] is { } da)
            {
                if (l.TransA) Gemm.Multiply(l.K, l.M, l.N, BPrime(l, b.Data, bo), MatrixView<T>.Transposed(g, l.N, yo), da.Data, ao, accumulate: true);
                else Gemm.Multiply(l.M, l.K, l.N, MatrixView<T>.RowMajor(g, l.N, yo), BPrimeT(l, b.Data, bo), da.Data, ao, accumulate: true);
            }
            if (run.InputGrads[1] is { } db)
            {
                if (l.TransB) Gemm.Multiply(l.N, l.K, l.M, MatrixView<T>.Transposed(g, l.N, yo), APrime(l, a.Data, ao), db.Data, bo, accumulate: true);
                else Gemm.Multiply(l.K, l.N, l.M, APrimeT(l, a.Data, ao), MatrixView<T>.RowMajor(g, l.N, yo), db.Data, bo, accumulate: true);
            }
            if (run.InputGrads.Length > 2 && run.InputGrads[2] is { } dc)
            {
                int co = Samples.Offset(run, 2, s);
                for (int i = 0; i < l.M; i++)
                    for (int j = 0; j < l.N; j++)
                    {
                        ref T v = ref dc.Data[co + (int)(i * l.CStrides![0] + j * l.CStrides[1])];
                        v = T.FusedMultiplyAdd(beta, dy[yo + i * l.N + j], v);
                    }
            }
        }
    }
}
