using System.Numerics;
using System.Runtime.CompilerServices;
using ModelGen.Compiler.Operators;
using ModelGen.Compiler.Training.Kernels;

namespace ModelGen.Compiler.Training.Rules;

/// <summary>
/// Conv, 1-D and 2-D, with groups (depthwise included), strides, pads, dilations and a bias, on the patch matrix
/// of the whole mini-batch (<see cref="Im2Col"/>): Y = W·col + b per group and sample.
/// Backward: dW = dY·colᵀ (one GEMM per group whose k axis is batch × positions, so its order is fixed; computed as
/// its transpose, col·dYᵀ, whose many rows the threads share),
/// dX = col2im(Wᵀ·dY), db = the sum of dY over batch and positions, in order.
/// </summary>
public sealed class ConvRule : GradientRule
{
    public override string? Refusal(Node node, Graph graph) =>
        graph[node.Inputs[0]].Shape!.Length is not (3 or 4) ? "it is not a 1-D or 2-D convolution (3-D ones do not train yet)"
        : graph[node.Inputs[1]].Constant is null ? "its weight is computed by the model, not an initializer"
        : node.HasInput(2) && graph[node.Inputs[2]].Constant is null ? "its bias is computed by the model, not an initializer"
        : null;

    public override bool IsParameter(Node node, int input) => input is 1 or 2;

    /// <summary>The node's window (from the IR's per-sample shapes, as inference resolves it) and sizes.</summary>
    sealed record Layout(WindowGeometry Window, int Batch, int Channels, int Filters, int Groups)
    {
        public int GroupChannels => Channels / Groups;
        public int GroupFilters => Filters / Groups;
        /// <summary>Rows of one group's patch matrix: its channels × taps.</summary>
        public int Depth => GroupChannels * Window.KernelH * Window.KernelW;
        public int Positions => Window.OutH * Window.OutW;
        /// <summary>Columns of the patch matrix: batch × output positions.</summary>
        public int Width => Batch * Positions;
    }

    static Layout LayoutOf<T>(NodeRun<T> run) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var w = run.Inputs[1]!;
        var window = ConvOperator.Geometry(run.Node, run.Graph[run.Node.Inputs[0]].Shape!, w.Shape);
        return new Layout(window, run.Batch, run.Inputs[0]!.Shape[1], w.Shape[0], (int)run.Node.Int("group", 1));
    }

    public override void Forward<T>(NodeRun<T> run)
    {
        var (x, w, b) = (run.Inputs[0]!, run.Inputs[1]!, run.Inputs.Length > 2 ? run.Inputs[2] : null);
        var l = LayoutOf(run);
        int width = l.Width;
        var col = new T[(long)l.Groups * l.Depth * width];
        Im2Col.Gather(x.Data, l.Batch, l.Channels, 0, l.Channels, l.Window, col);
        var y = new Tensor<T>(run.BatchedOutputShape(0));
        // Sample by sample, each group's [filters, positions] block of Y straight from its columns of the patch matrix (a
        // small packed operand, no transposition after), the bias as the accumulators' starting value. The samples are
        // independent outputs, so threads split them.
        if (b is not null)
            for (int s = 0; s < l.Batch; s++)
                for (int m = 0; m < l.Filters; m++) y.Data.AsSpan((s * l.Filters + m) * l.Positions, l.Positions).Fill(b.Data[m]);
        void Sample(int s)
        {
            for (int g = 0; g < l.Groups; g++)
                Gemm.Multiply(l.GroupFilters, l.Positions, l.Depth, MatrixView<T>.RowMajor(w.Data, l.Depth, g * l.GroupFilters * l.Depth),
                    new MatrixView<T>(col, g * l.Depth * width + s * l.Positions, width, 1), y.Data, (s * l.Filters + g * l.GroupFilters) * l.Positions,
                    accumulate: b is not null);
        }
        if ((long)col.Length * l.GroupFilters >= 1 << 18) Parallel.For(0, l.Batch, Sample);
        else for (int s = 0; s < l.Batch; s++) Sample(s);
        run.Outputs = [y];
        run.Saved = col;
    }

    public override void Backward<T>(NodeRun<T> run)
    {
        var w = run.Inputs[1]!;
        var l = LayoutOf(run);
        int width = l.Width, positions = l.Positions;
        var col = (T[])run.Saved!;
        // dY as [filters, batch × positions], the layout of the forward product.
        var dy = run.OutputGrads[0]!.Data;
        var dyRows = new T[(long)l.Filters * width];
        for (int m = 0; m < l.Filters; m++)
            for (int s = 0; s < l.Batch; s++)
                Array.Copy(dy, (s * l.Filters + m) * positions, dyRows, m * width + s * positions, positions);

        if (run.InputGrads[1] is { } dw)
        {
            // dWᵀ [taps, filters] = col · dYᵀ: one GEMM per group over k = batch × positions, its rows (the taps) split
            // among threads; dY as [batch × positions, filters] so both operands are read in rows.
            var dyColumns = new T[(long)width * l.Filters];
            for (int s = 0; s < l.Batch; s++) Transpose(dy, s * l.Filters * positions, l.Filters, positions, dyColumns, s * positions * l.Filters);
            var dwT = new T[l.Depth * l.GroupFilters];
            for (int g = 0; g < l.Groups; g++)
            {
                Gemm.Multiply(l.Depth, l.GroupFilters, width, MatrixView<T>.RowMajor(col, width, g * l.Depth * width),
                    new MatrixView<T>(dyColumns, g * l.GroupFilters, l.Filters, 1), dwT, 0, accumulate: false);
                for (int m = 0; m < l.GroupFilters; m++)
                    for (int t = 0; t < l.Depth; t++)
                        dw.Data[(g * l.GroupFilters + m) * l.Depth + t] += dwT[t * l.GroupFilters + m];
            }
        }
        if (run.InputGrads.Length > 2 && run.InputGrads[2] is { } db)
            for (int m = 0; m < l.Filters; m++)
            {
                T sum = db.Data[m];
                foreach (var v in dyRows.AsSpan(m * width, width)) sum += v;
                db.Data[m] = sum;
            }
        if (run.InputGrads[0] is { } dx)
        {
            var dcol = new T[col.LongLength];
            for (int g = 0; g < l.Groups; g++)
                Gemm.Multiply(l.Depth, width, l.GroupFilters, MatrixView<T>.Transposed(w.Data, l.Depth, g * l.GroupFilters * l.Depth),
                    MatrixView<T>.RowMajor(dyRows, width, g * l.GroupFilters * width), dcol, g * l.Depth * width, accumulate: false);
            Im2Col.Scatter(dcol, l.Batch, l.Channels, 0, l.Channels, l.Window, dx.Data);
        }
    }

    /// <summary>dst[offset + c·rows + r] = src[offset + r·columns + c]: a [rows, columns] block transposed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Transpose<T>(T[] src, int srcOffset, int rows, int columns, T[] dst, int dstOffset)
    {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++)
                dst[dstOffset + c * rows + r] = src[srcOffset + r * columns + c];
    }
}
