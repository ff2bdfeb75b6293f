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
    /// <summary>Rows of C per register tile; a tile is six rows by two vectors (12 accumulators of AVX2's 16 registers).</summary>
    const int RowsPerTile = 6;
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
        int panels = (n + panelWidth - 1) / panelWidth, strips = (m + RowsPerTile - 1) / RowsPerTile;
        // Operands with contiguous rows are read in place; only their partial last panel of B or strip of A is packed,
        // zero-padded (padding computes results that are never stored). One with strided rows (a transposed operand) is
        // packed whole: read in place it would cost a cache line per element. So is a B with long rows read by many strips:
        // its rows, a multiple of 4 KiB apart, would evict each other from the cache; a short A does not repay packing.
        bool directB = b.ColumnStride == 1 && (m <= 4 * RowsPerTile || b.RowStride <= 4 * panelWidth);
        int firstPackedPanel = directB ? n / panelWidth : 0;
        int firstPackedStrip = a.ColumnStride == 1 ? m / RowsPerTile : 0;
        var packedB = ArrayPool<T>.Shared.Rent((panels - firstPackedPanel) * panelWidth * k);
        var packedA = ArrayPool<T>.Shared.Rent((strips - firstPackedStrip) * RowsPerTile * k);
        try
        {
            PackB(b, k, n, firstPackedPanel, panelWidth, packedB);
            PackA(a, m, k, firstPackedStrip, packedA);
            var operands = new Operands<T>(a, b, packedA, packedB, firstPackedStrip, firstPackedPanel, panelWidth);
            // Tiles of C: groups of strips × groups of panels, each computed whole by one thread; enough of them for the threads.
            int stripGroup = 10, stripGroups = (strips + stripGroup - 1) / stripGroup;
            bool parallel = (long)m * n * k >= ParallelThreshold;
            int wanted = parallel ? 2 * Environment.ProcessorCount : 1;
            int panelGroups = Math.Min(panels, Math.Max((panels + 31) / 32, (wanted + stripGroups - 1) / stripGroups));
            int panelGroup = (panels + panelGroups - 1) / panelGroups;
            panelGroups = (panels + panelGroup - 1) / panelGroup;
            int tasks = stripGroups * panelGroups;
            void Tile(int t)
            {
                int s0 = t / panelGroups * stripGroup, p0 = t % panelGroups * panelGroup;
                Compute(operands, c, cOffset, m, n, k, s0, Math.Min(strips, s0 + stripGroup), p0, Math.Min(panels, p0 + panelGroup), accumulate);
            }
            if (tasks > 1 && parallel) Parallel.For(0, tasks, Tile);
            else for (int t = 0; t < tasks; t++) Tile(t);
        }
        finally
        {
            ArrayPool<T>.Shared.Return(packedA);
            ArrayPool<T>.Shared.Return(packedB);
        }
    }

    /// <summary>Where the kernel reads A's strips and B's panels: in place, or from the packed copies.</summary>
    readonly record struct Operands<T>(MatrixView<T> A, MatrixView<T> B, T[] PackedA, T[] PackedB, int FirstPackedStrip, int FirstPackedPanel, int PanelWidth)
        where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>Panels <paramref name="first"/>.. of B, <paramref name="panelWidth"/> columns by k rows each, zero-padded past n.</summary>
    static void PackB<T>(MatrixView<T> b, int k, int n, int first, int panelWidth, T[] packed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int panels = (n + panelWidth - 1) / panelWidth;
        for (int p = first; p < panels; p++)
        {
            int j0 = p * panelWidth, columns = Math.Min(panelWidth, n - j0);
            var panel = packed.AsSpan((p - first) * panelWidth * k, panelWidth * k);
            if (b.ColumnStride == 1)
                for (int kk = 0; kk < k; kk++)
                {
                    var row = panel.Slice(kk * panelWidth, panelWidth);
                    b.Data.AsSpan(b.Offset + kk * b.RowStride + j0, columns).CopyTo(row);
                    row[columns..].Clear();
                }
            else
                for (int kk = 0; kk < k; kk++)
                {
                    var row = panel.Slice(kk * panelWidth, panelWidth);
                    for (int j = 0; j < columns; j++) row[j] = b.At(kk, j0 + j);
                    row[columns..].Clear();
                }
        }
    }

    /// <summary>Strips <paramref name="first"/>.. of A, <see cref="RowsPerTile"/> rows each, each step's rows side by side, zero-padded past m.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackA<T>(MatrixView<T> a, int m, int k, int first, T[] packed) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int strips = (m + RowsPerTile - 1) / RowsPerTile;
        packed.AsSpan(0, (strips - first) * RowsPerTile * k).Clear();
        for (int i = first * RowsPerTile; i < m; i++)
        {
            int at = (i / RowsPerTile - first) * RowsPerTile * k + i % RowsPerTile;
            for (int kk = 0; kk < k; kk++, at += RowsPerTile) packed[at] = a.At(i, kk);
        }
    }

    static void Compute<T>(Operands<T> o, T[] c, int cOffset, int m, int n, int k, int sStart, int sEnd, int pStart, int pEnd, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int panelWidth = o.PanelWidth, width = panelWidth / 2;
        Span<T> tile = stackalloc T[RowsPerTile * 64];
        tile = tile[..(RowsPerTile * panelWidth)];
        ref T scratch = ref MemoryMarshal.GetReference(tile);
        for (int k0 = 0; k0 < k; k0 += DepthBlock)
        {
            int depth = Math.Min(DepthBlock, k - k0);
            bool start = k0 == 0 && !accumulate;
            for (int p = pStart; p < pEnd; p++)
            {
                int j0 = p * panelWidth, columns = Math.Min(panelWidth, n - j0);
                bool packedPanel = p >= o.FirstPackedPanel;
                ref T panel = ref packedPanel ? ref o.PackedB[((p - o.FirstPackedPanel) * k + k0) * panelWidth] : ref o.B.Data[o.B.Offset + k0 * o.B.RowStride + j0];
                nint bStep = packedPanel ? panelWidth : o.B.RowStride;
                for (int s = sStart; s < sEnd; s++)
                {
                    int i = s * RowsPerTile, rows = Math.Min(RowsPerTile, m - i);
                    bool packedStrip = s >= o.FirstPackedStrip;
                    ref T strip = ref packedStrip ? ref o.PackedA[((s - o.FirstPackedStrip) * k + k0) * RowsPerTile] : ref o.A.Data[o.A.Offset + i * o.A.RowStride + k0 * o.A.ColumnStride];
                    nint aRow = packedStrip ? 1 : o.A.RowStride, aStep = packedStrip ? RowsPerTile : o.A.ColumnStride;
                    if (rows == RowsPerTile && columns == panelWidth)
                    {
                        // A whole tile: accumulate straight in C.
                        Kernel(ref strip, aRow, aStep, ref panel, bStep, depth, ref c[cOffset + i * n + j0], n, start, wide: true);
                        continue;
                    }
                    // A partial tile goes through a full-width scratch copy; at most one vector wide, only its first vector is computed.
                    for (int r = 0; r < rows; r++)
                    {
                        var dst = tile.Slice(r * panelWidth, panelWidth);
                        if (!start) { c.AsSpan(cOffset + (i + r) * n + j0, columns).CopyTo(dst); dst[columns..].Clear(); }
                    }
                    Kernel(ref strip, aRow, aStep, ref panel, bStep, depth, ref scratch, panelWidth, start, wide: columns > width);
                    for (int r = 0; r < rows; r++)
                        tile.Slice(r * panelWidth, columns).CopyTo(c.AsSpan(cOffset + (i + r) * n + j0, columns));
                }
            }
        }
    }

    /// <summary>
    /// Six rows of C by one panel (two vectors, or one when not <paramref name="wide"/>): up to twelve vector accumulators,
    /// two loads of B and six broadcasts of A per step. A's rows are <paramref name="aRow"/> apart and its steps
    /// <paramref name="aStep"/>; B's steps <paramref name="bStep"/>; C's rows <paramref name="stride"/>, all six addressable.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Kernel<T>(ref T ap, nint aRow, nint aStep, ref T bp, nint bStep, int depth, ref T t, int stride, bool zero, bool wide)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!wide) { KernelNarrow(ref ap, aRow, aStep, ref bp, bStep, depth, ref t, stride, zero); return; }
        nuint w = (nuint)Vector<T>.Count, s = (nuint)stride;
        nint r2 = 2 * aRow, r3 = 3 * aRow, r4 = 4 * aRow, r5 = 5 * aRow;
        Vector<T> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (zero)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = Vector<T>.Zero;
        }
        else
        {
            c00 = Vector.LoadUnsafe(ref t, 0); c01 = Vector.LoadUnsafe(ref t, w);
            c10 = Vector.LoadUnsafe(ref t, s); c11 = Vector.LoadUnsafe(ref t, s + w);
            c20 = Vector.LoadUnsafe(ref t, 2 * s); c21 = Vector.LoadUnsafe(ref t, 2 * s + w);
            c30 = Vector.LoadUnsafe(ref t, 3 * s); c31 = Vector.LoadUnsafe(ref t, 3 * s + w);
            c40 = Vector.LoadUnsafe(ref t, 4 * s); c41 = Vector.LoadUnsafe(ref t, 4 * s + w);
            c50 = Vector.LoadUnsafe(ref t, 5 * s); c51 = Vector.LoadUnsafe(ref t, 5 * s + w);
        }
        for (int kk = 0; kk < depth; kk++)
        {
            var b0 = Vector.LoadUnsafe(ref bp, 0);
            var b1 = Vector.LoadUnsafe(ref bp, w);
            var a0 = new Vector<T>(ap);
            c00 = Fma.Add(a0, b0, c00); c01 = Fma.Add(a0, b1, c01);
            var a1 = new Vector<T>(Unsafe.Add(ref ap, aRow));
            c10 = Fma.Add(a1, b0, c10); c11 = Fma.Add(a1, b1, c11);
            var a2 = new Vector<T>(Unsafe.Add(ref ap, r2));
            c20 = Fma.Add(a2, b0, c20); c21 = Fma.Add(a2, b1, c21);
            var a3 = new Vector<T>(Unsafe.Add(ref ap, r3));
            c30 = Fma.Add(a3, b0, c30); c31 = Fma.Add(a3, b1, c31);
            var a4 = new Vector<T>(Unsafe.Add(ref ap, r4));
            c40 = Fma.Add(a4, b0, c40); c41 = Fma.Add(a4, b1, c41);
            var a5 = new Vector<T>(Unsafe.Add(ref ap, r5));
            c50 = Fma.Add(a5, b0, c50); c51 = Fma.Add(a5, b1, c51);
            ap = ref Unsafe.Add(ref ap, aStep);
            bp = ref Unsafe.Add(ref bp, bStep);
        }
        c00.StoreUnsafe(ref t, 0); c01.StoreUnsafe(ref t, w);
        c10.StoreUnsafe(ref t, s); c11.StoreUnsafe(ref t, s + w);
        c20.StoreUnsafe(ref t, 2 * s); c21.StoreUnsafe(ref t, 2 * s + w);
        c30.StoreUnsafe(ref t, 3 * s); c31.StoreUnsafe(ref t, 3 * s + w);
        c40.StoreUnsafe(ref t, 4 * s); c41.StoreUnsafe(ref t, 4 * s + w);
        c50.StoreUnsafe(ref t, 5 * s); c51.StoreUnsafe(ref t, 5 * s + w);
    }

    /// <summary>The kernel's first vector only, for a last panel at most one vector wide.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void KernelNarrow<T>(ref T ap, nint aRow, nint aStep, ref T bp, nint bStep, int depth, ref T t, int stride, bool zero)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        nuint s = (nuint)stride;
        Vector<T> c0, c1, c2, c3, c4, c5;
        if (zero) c0 = c1 = c2 = c3 = c4 = c5 = Vector<T>.Zero;
        else
        {
            c0 = Vector.LoadUnsafe(ref t, 0); c1 = Vector.LoadUnsafe(ref t, s); c2 = Vector.LoadUnsafe(ref t, 2 * s);
            c3 = Vector.LoadUnsafe(ref t, 3 * s); c4 = Vector.LoadUnsafe(ref t, 4 * s); c5 = Vector.LoadUnsafe(ref t, 5 * s);
        }
        for (int kk = 0; kk < depth; kk++)
        {
            var b0 = Vector.LoadUnsafe(ref bp, 0);
            c0 = Fma.Add(new Vector<T>(ap), b0, c0);
            c1 = Fma.Add(new Vector<T>(Unsafe.Add(ref ap, aRow)), b0, c1);
            c2 = Fma.Add(new Vector<T>(Unsafe.Add(ref ap, 2 * aRow)), b0, c2);
            c3 = Fma.Add(new Vector<T>(Unsafe.Add(ref ap, 3 * aRow)), b0, c3);
            c4 = Fma.Add(new Vector<T>(Unsafe.Add(ref ap, 4 * aRow)), b0, c4);
            c5 = Fma.Add(new Vector<T>(Unsafe.Add(ref ap, 5 * aRow)), b0, c5);
            ap = ref Unsafe.Add(ref ap, aStep);
            bp = ref Unsafe.Add(ref bp, bStep);
        }
        c0.StoreUnsafe(ref t, 0); c1.StoreUnsafe(ref t, s); c2.StoreUnsafe(ref t, 2 * s);
        c3.StoreUnsafe(ref t, 3 * s); c4.StoreUnsafe(ref t, 4 * s); c5.StoreUnsafe(ref t, 5 * s);
    }
}
