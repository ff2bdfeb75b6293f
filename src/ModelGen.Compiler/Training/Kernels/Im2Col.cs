using System.Numerics;
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
        int taps = g.KernelH * g.KernelW, rows = channels * taps;
        int positions = g.OutH * g.OutW, width = batch * positions;
        void Row(int r)
        {
            int c = r / taps, kh = r % taps / g.KernelW, kw = r % g.KernelW;
            var (owFirst, owEnd, shift) = Columns(g, kw);
            for (int b = 0; b < batch; b++)
            {
                int plane = (b * inChannels + firstChannel + c) * g.InH;
                for (int oh = 0; oh < g.OutH; oh++)
                {
                    var dst = col.AsSpan(r * width + b * positions + oh * g.OutW, g.OutW);
                    int ih = oh * g.StrideH - g.PadTop + kh * g.DilationH;
                    if (ih < 0 || ih >= g.InH || owFirst >= owEnd) { dst.Clear(); continue; }
                    dst[..owFirst].Clear();
                    dst[owEnd..].Clear();
                    int src = (plane + ih) * g.InW + shift;
                    if (g.StrideW == 1) x.AsSpan(src + owFirst, owEnd - owFirst).CopyTo(dst[owFirst..owEnd]);
                    else for (int ow = owFirst; ow < owEnd; ow++) dst[ow] = x[src + ow * g.StrideW];
                }
            }
        }
        if ((long)rows * width >= ParallelThreshold) Parallel.For(0, rows, Row);
        else for (int r = 0; r < rows; r++) Row(r);
    }

    /// <summary>
    /// The adjoint of <see cref="Gather"/>: dx[b, firstChannel + c, ih, iw] += col[tap row, b·P + position], taps in
    /// (kh, kw) order for every element. Threads split channels, so each element is summed by one thread in that order.
    /// </summary>
    public static void Scatter<T>(T[] col, int batch, int inChannels, int firstChannel, int channels, WindowGeometry g, T[] dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int taps = g.KernelH * g.KernelW;
        int positions = g.OutH * g.OutW, width = batch * positions;
        void Channel(int c)
        {
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
                        var src = col.AsSpan(r * width + b * positions + oh * g.OutW, g.OutW);
                        int dst = (plane + ih) * g.InW + shift;
                        if (g.StrideW == 1) Accumulate.Add(src[owFirst..owEnd], dx.AsSpan(dst + owFirst, owEnd - owFirst));
                        else for (int ow = owFirst; ow < owEnd; ow++) dx[dst + ow * g.StrideW] += src[ow];
                    }
                }
            }
        }
        if ((long)channels * taps * width >= ParallelThreshold) Parallel.For(0, channels, Channel);
        else for (int c = 0; c < channels; c++) Channel(c);
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
