using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ModelGen.Compiler.Training.Kernels;

/// <summary>A matrix operand read in place: element (r, c) at Data[Offset + r·RowStride + c·ColumnStride].</summary>
public readonly record struct MatrixView<T>(T[] Data, int Offset, int RowStride, int ColumnStride) where T : unmanaged, IFloatingPointIeee754<T>
{
    public static MatrixView<T> RowMajor(T[] data, int columns, int offset = 0) => new(data, offset, columns, 1);
    /// <summary>The transpose of a row-major matrix with <paramref name="columns"/> columns.</summary>
    public static MatrixView<T> Transposed(T[] data, int columns, int offset = 0) => new(data, offset, 1, columns);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int r, int c) => Data[Offset + r * RowStride + c * ColumnStride];
}

/// <summary>
/// C (m×n, row-major) = [C +] A (m×k) · B (k×n), the one matrix product the training engine's dense layers,
/// convolutions (im2col) and their gradients run on.
/// <para>
/// Deterministic by construction: every element is c = fma(A[i,k-1], B[k-1,j], … fma(A[i,0], B[0,j], c₀)),
/// k in order, c₀ = 0 or the old C. Vectors run across j and threads across tiles of C, never across k, so
/// the vector width, the thread count and the tiling change the speed, not the bits.
/// </para>
/// </summary>
public static class Gemm
{
    const int RowsPerTile = 4;
    const int DepthBlock = 256;
    /// <summary>Multiply-adds below which one thread does the whole product (a task costs more than it saves).</summary>
    const long ParallelThreshold = 1 << 18;

    public static void Multiply<T>(int m, int n, int k, MatrixView<T> a, MatrixView<T> b, T[] c, int cOffset, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) for (int i = 0; i < m; i++) c.AsSpan(cOffset + i * n, n).Clear();
            return;
        }
        int width = Vector<T>.Count, panelWidth = 2 * width;
        int panels = (n + panelWidth - 1) / panelWidth;
        var packed = ArrayPool<T>.Shared.Rent(panels * panelWidth * k);
        try
        {
            PackB(b, k, n, panelWidth, packed);
            // Tiles of C: groups of rows × groups of panels, each computed whole by one thread.
            int rowGroup = 64, panelGroup = Math.Max(1, 512 / panelWidth);
            int rowGroups = (m + rowGroup - 1) / rowGroup, panelGroups = (panels + panelGroup - 1) / panelGroup;
            int tasks = rowGroups * panelGroups;
            void Tile(int t)
            {
                int i0 = t / panelGroups * rowGroup, p0 = t % panelGroups * panelGroup;
                Compute(a, packed, c, cOffset, n, k, i0, Math.Min(m, i0 + rowGroup), p0, Math.Min(panels, p0 + panelGroup), panelWidth, accumulate);
            }
            if (tasks > 1 && (long)m * n * k >= ParallelThreshold) Parallel.For(0, tasks, Tile);
            else for (int t = 0; t < tasks; t++) Tile(t);
        }
        finally { ArrayPool<T>.Shared.Return(packed); }
    }

    /// <summary>B into panels of <paramref name="panelWidth"/> columns, k rows each, zero-padded past n.</summary>
    static void PackB<T>(MatrixView<T> b, int k, int n, int panelWidth, T[] packed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int panels = (n + panelWidth - 1) / panelWidth;
        for (int p = 0; p < panels; p++)
        {
            int j0 = p * panelWidth, columns = Math.Min(panelWidth, n - j0);
            var panel = packed.AsSpan(p * panelWidth * k, panelWidth * k);
            for (int kk = 0; kk < k; kk++)
            {
                var row = panel.Slice(kk * panelWidth, panelWidth);
                if (b.ColumnStride == 1) b.Data.AsSpan(b.Offset + kk * b.RowStride + j0, columns).CopyTo(row);
                else for (int j = 0; j < columns; j++) row[j] = b.At(kk, j0 + j);
                row[columns..].Clear();
            }
        }
    }

    static void Compute<T>(MatrixView<T> a, T[] packed, T[] c, int cOffset, int n, int k, int iStart, int iEnd, int pStart, int pEnd, int panelWidth, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> tile = stackalloc T[RowsPerTile * 64];
        tile = tile[..(RowsPerTile * panelWidth)];
        for (int k0 = 0; k0 < k; k0 += DepthBlock)
        {
            int depth = Math.Min(DepthBlock, k - k0);
            bool start = k0 == 0 && !accumulate;
            for (int p = pStart; p < pEnd; p++)
            {
                int j0 = p * panelWidth, columns = Math.Min(panelWidth, n - j0);
                var panel = packed.AsSpan(p * panelWidth * k + k0 * panelWidth, depth * panelWidth);
                for (int i = iStart; i < iEnd; i += RowsPerTile)
                {
                    int rows = Math.Min(RowsPerTile, iEnd - i);
                    // The tile in registers is always full width; a partial one goes through a scratch copy.
                    for (int r = 0; r < rows; r++)
                    {
                        var dst = tile.Slice(r * panelWidth, panelWidth);
                        if (start) dst.Clear();
                        else { c.AsSpan(cOffset + (i + r) * n + j0, columns).CopyTo(dst); dst[columns..].Clear(); }
                    }
                    if (rows == RowsPerTile) Kernel4(a, i, k0, depth, panel, tile, panelWidth);
                    else for (int r = 0; r < rows; r++) Kernel1(a, i + r, k0, depth, panel, tile.Slice(r * panelWidth, panelWidth), panelWidth);
                    for (int r = 0; r < rows; r++)
                        tile.Slice(r * panelWidth, columns).CopyTo(c.AsSpan(cOffset + (i + r) * n + j0, columns));
                }
            }
        }
    }

    /// <summary>Four rows of C by one panel: eight vector accumulators, two loads of B and four broadcasts of A per step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel4<T>(MatrixView<T> a, int i, int k0, int depth, ReadOnlySpan<T> panel, Span<T> tile, int panelWidth)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = Vector<T>.Count;
        ref T t = ref MemoryMarshal.GetReference(tile);
        ref T bp = ref MemoryMarshal.GetReference(panel);
        var c00 = Vector.LoadUnsafe(ref t, 0); var c01 = Vector.LoadUnsafe(ref t, (nuint)w);
        var c10 = Vector.LoadUnsafe(ref t, (nuint)panelWidth); var c11 = Vector.LoadUnsafe(ref t, (nuint)(panelWidth + w));
        var c20 = Vector.LoadUnsafe(ref t, (nuint)(2 * panelWidth)); var c21 = Vector.LoadUnsafe(ref t, (nuint)(2 * panelWidth + w));
        var c30 = Vector.LoadUnsafe(ref t, (nuint)(3 * panelWidth)); var c31 = Vector.LoadUnsafe(ref t, (nuint)(3 * panelWidth + w));
        var data = a.Data;
        int rs = a.RowStride, cs = a.ColumnStride, at = a.Offset + i * rs + k0 * cs;
        for (int kk = 0; kk < depth; kk++, at += cs)
        {
            var b0 = Vector.LoadUnsafe(ref bp, (nuint)(kk * panelWidth));
            var b1 = Vector.LoadUnsafe(ref bp, (nuint)(kk * panelWidth + w));
            var a0 = new Vector<T>(data[at]);
            c00 = Fma.Add(a0, b0, c00); c01 = Fma.Add(a0, b1, c01);
            var a1 = new Vector<T>(data[at + rs]);
            c10 = Fma.Add(a1, b0, c10); c11 = Fma.Add(a1, b1, c11);
            var a2 = new Vector<T>(data[at + 2 * rs]);
            c20 = Fma.Add(a2, b0, c20); c21 = Fma.Add(a2, b1, c21);
            var a3 = new Vector<T>(data[at + 3 * rs]);
            c30 = Fma.Add(a3, b0, c30); c31 = Fma.Add(a3, b1, c31);
        }
        c00.StoreUnsafe(ref t, 0); c01.StoreUnsafe(ref t, (nuint)w);
        c10.StoreUnsafe(ref t, (nuint)panelWidth); c11.StoreUnsafe(ref t, (nuint)(panelWidth + w));
        c20.StoreUnsafe(ref t, (nuint)(2 * panelWidth)); c21.StoreUnsafe(ref t, (nuint)(2 * panelWidth + w));
        c30.StoreUnsafe(ref t, (nuint)(3 * panelWidth)); c31.StoreUnsafe(ref t, (nuint)(3 * panelWidth + w));
    }

    static void Kernel1<T>(MatrixView<T> a, int i, int k0, int depth, ReadOnlySpan<T> panel, Span<T> row, int panelWidth)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = Vector<T>.Count;
        ref T t = ref MemoryMarshal.GetReference(row);
        ref T bp = ref MemoryMarshal.GetReference(panel);
        var c0 = Vector.LoadUnsafe(ref t, 0); var c1 = Vector.LoadUnsafe(ref t, (nuint)w);
        for (int kk = 0; kk < depth; kk++)
        {
            var av = new Vector<T>(a.At(i, k0 + kk));
            c0 = Fma.Add(av, Vector.LoadUnsafe(ref bp, (nuint)(kk * panelWidth)), c0);
            c1 = Fma.Add(av, Vector.LoadUnsafe(ref bp, (nuint)(kk * panelWidth + w)), c1);
        }
        c0.StoreUnsafe(ref t, 0); c1.StoreUnsafe(ref t, (nuint)w);
    }
}
