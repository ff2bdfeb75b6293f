using System.Numerics;
using ModelGen.Compiler.Training.Kernels;

namespace ModelGen.Compiler.Training.Rules;

/// <summary>
/// The fused fully connected layer (Gemm and MatMul+Add after normalization): Y = X·Wᵀ + b over every row of X
/// (all axes but the last), W [N, K]. Backward: dX = dY·W, dW = dYᵀ·X, db = the column sums of dY.
/// </summary>
public sealed class DenseRule : GradientRule
{
    public override string? Refusal(Node node, Graph graph) =>
        node.Int("transA", 0) != 0 ? "its input is transposed (the rows are not the batch)"
        : node.HasInput(2) && graph[node.Inputs[2]].Shape is { } b && TensorData.Size(b) != graph[node.Inputs[1]].Shape![0] ? "its bias is not one value per output"
        : null;

    public override bool IsParameter(Node node, int input) => input is 1 or 2;

    public override void Forward<T>(NodeRun<T> run)
    {
        var (x, w, b) = (run.Inputs[0]!, run.Inputs[1]!, run.Inputs.Length > 2 ? run.Inputs[2] : null);
        int n = w.Shape[0], k = w.Shape[1], rows = x.Count / k;
        var y = new Tensor<T>(run.BatchedOutputShape(0));
        // The bias is the accumulators' starting value: one pass over Y fewer.
        if (b is not null) for (int r = 0; r < rows; r++) b.Data.CopyTo(y.Data, r * n);
        Gemm.Multiply(rows, n, k, MatrixView<T>.RowMajor(x.Data, k), MatrixView<T>.Transposed(w.Data, k), y.Data, 0, accumulate: b is not null);
        run.Outputs = [y];
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        var (x, w) = (run.Inputs[0]!, run.Inputs[1]!);
        var dy = run.OutputGrads[0]!;
        int n = w.Shape[0], k = w.Shape[1], rows = x.Count / k;
        if (run.InputGrads[0] is { } dx)
            Gemm.Multiply(rows, k, n, MatrixView<T>.RowMajor(dy.Data, n), MatrixView<T>.RowMajor(w.Data, k), dx.Data, 0, accumulate: true);
        if (run.InputGrads[1] is { } dw)
            Gemm.Multiply(n, k, rows, MatrixView<T>.Transposed(dy.Data, n), MatrixView<T>.RowMajor(x.Data, k), dw.Data, 0, accumulate: true);
        if (run.InputGrads.Length > 2 && run.InputGrads[2] is { } db)
            ColumnSums(dy.Data, rows, n, db.Data);
    }

    /// <summary>sums[j] += Σr m[r, j], rows in order (vectorized across j, so the order per element is fixed).</summary>
    public static void ColumnSums<T>(ReadOnlySpan<T> m, int rows, int columns, Span<T> sums) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var row = m.Slice(r * columns, columns);
            int j = 0;
            for (; j <= columns - Vector<T>.Count; j += Vector<T>.Count)
                (new Vector<T>(sums[j..]) + new Vector<T>(row[j..])).CopyTo(sums[j..]);
            for (; j < columns; j++) sums[j] += row[j];
        }
    }
}
