using System.Numerics;
using System.Runtime.CompilerServices;
using ModelGen.Compiler.Operators;

namespace ModelGen.Compiler.Training.Kernels;

/// <summary>
/// The patch matrix of a convolution over a whole mini-batch, and its adjoint. For one group of
/// <c>channels</c> input channels starting at <c>firstChannel</c>, the matrix has one row per tap
/// (channel, kh, kw) and one column per output position of every sample (b, oh, ow), so a single GEMM
/// runs the group's forward pass, and the weight gradient is one GEMM whose k axis is batch × positions.
/// Both functions only move or add values whose order is fixed; threads split rows (or channels), never a sum.
/// </summary>
public static class Im2Col
{
    /// <summary>Elements below which one thread does the whole copy.</summary>
    const long ParallelThreshold = 1 << 16;

    /// <summary>col[(c·KH + kh)·KW + kw, b·P + oh·OW + ow] = x[b, firstChannel + c, ih, iw], 0 in the padding (P = OH·OW).</summary>
    public static void Gather<T>(T[] x, int batch, int inChannels, int firstChannel, int channels, WindowGeometry g, T[] col)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rows = channels * g.KernelH * g.KernelW;
        long size = (long)rows * batch * g.OutH * g.OutW;
        if (size >= ParallelThreshold) Parallel.For(0, rows, r => GatherRow(x, batch, inChannels, firstChannel, g, col, r));
        else for (int r = 0; r < rows; r++) GatherRow(x, batch, inChannels, firstChannel, g, col, r);
    }

    /// <summary>One row of the patch matrix (optimized at once: it runs a few times per step, too few for tiering to reach it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GatherRow<T>(T[] x, int batch, int inChannels, int firstChannel, WindowGeometry g, T[] col, int r)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int taps = g.KernelH * g.KernelW;
        int positions = g.OutH * g.OutW, width = batch * positions;
        int c = r / taps, kh = r % taps / g.KernelW, kw = r % g.KernelW;
        var (owFirst, owEnd, shift) = Columns(g, kw);
        for (int b = 0; b < batch; b++)
        {
            int plane = (b * inChannels + firstChannel + c) * g.InH;
            for (int oh = 0; oh < g.OutH; oh++)
            {
                int dst = r * width + b * positions + oh * g.OutW;
                int ih = oh * g.StrideH - g.PadTop + kh * g.DilationH;
                bool inside = ih >= 0 && ih < g.InH;
                int src = (plane + ih) * g.InW + shift;
                // Plain loops: output rows are short (a span copy per row costs more than it moves).
                for (int ow = 0; ow < g.OutW; ow++)
                    col[dst + ow] = inside && ow >= owFirst && ow < owEnd ? x[src + ow * g.StrideW] : T.Zero;
            }
        }
    }

    /// <summary>
    /// The adjoint of <see cref="Gather"/>: dx[b, firstChannel + c, ih, iw] += col[tap row, b·P + position], taps in
    /// (kh, kw) order for every element. Threads split channels, so each element is summed by one thread in that order.
    /// </summary>
    public static void Scatter<T>(T[] col, int batch, int inChannels, int firstChannel, int channels, WindowGeometry g, T[] dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        long size = (long)channels * g.KernelH * g.KernelW * batch * g.OutH * g.OutW;
        if (size >= ParallelThreshold) Parallel.For(0, channels, c => ScatterChannel(col, batch, inChannels, firstChannel, g, dx, c));
        else for (int c = 0; c < channels; c++) ScatterChannel(col, batch, inChannels, firstChannel, g, dx, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void ScatterChannel<T>(T[] col, int batch, int inChannels, int firstChannel, WindowGeometry g, T[] dx, int c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int taps = g.KernelH * g.KernelW;
        int positions = g.OutH * g.OutW, width = batch * positions;
        for (int kh = 0; kh < g.KernelH; kh++)
        for (int kw = 0; kw < g.KernelW; kw++)
        {
            int r = c * taps + kh * g.KernelW + kw;
            var (owFirst, owEnd, shift) = Columns(g, kw);
            if (owFirst >= owEnd) continue;
            for (int b = 0; b < batch; b++)
            {
                int plane = (b * inChannels + firstChannel + c) * g.InH;
                for (int oh = 0; oh < g.OutH; oh++)
                {
                    int ih = oh * g.StrideH - g.PadTop + kh * g.DilationH;
                    if (ih < 0 || ih >= g.InH) continue;
                    int src = r * width + b * positions + oh * g.OutW;
                    int dst = (plane + ih) * g.InW + shift;
                    for (int ow = owFirst; ow < owEnd; ow++) dx[dst + ow * g.StrideW] += col[src + ow];
                }
            }
        }
    }

    /// <summary>The output columns [first, end) whose input column for tap <paramref name="kw"/> is inside the row, and that column's offset at ow = 0.</summary>
    static (int First, int End, int Shift) Columns(WindowGeometry g, int kw)
    {
        int shift = kw * g.DilationW - g.PadLeft;
        int first = shift >= 0 ? 0 : (-shift + g.StrideW - 1) / g.StrideW;
        int end = Math.Min(g.OutW, shift >= g.InW ? 0 : (g.InW - 1 - shift) / g.StrideW + 1);
        return (first, Math.Max(first, end), shift);
    }
}
