using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ModelGen.Compiler.Compress;

/// <summary>
/// The double-precision linear algebra of the GPTQ reconstruction, on row-major arrays. Deterministic by
/// construction: every value is one dot product or update in a fixed order (four Vector256 lanes, summed
/// pairwise, then the tail; multiplies and adds separate, never fused, so every processor rounds alike),
/// and the loops run in parallel only over rows that do not read each other, so the bytes do not depend
/// on the thread count. MathNet's managed inverse took 126 s for a 1,690-wide Hessian; this takes about one.
/// </summary>
static class DenseMath
{
    /// <summary>Σ a[i]·b[i] over the spans' common length, in the fixed order above.</summary>
    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        int n = Math.Min(a.Length, b.Length), i = 0;
        double sum = 0;
        if (n >= 4)
        {
            var acc = Vector256<double>.Zero;
            ref double ra = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(a);
            ref double rb = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(b);
            for (; i + 4 <= n; i += 4)
                acc += Vector256.LoadUnsafe(ref ra, (nuint)i) * Vector256.LoadUnsafe(ref rb, (nuint)i);
            sum = (acc.GetElement(0) + acc.GetElement(1)) + (acc.GetElement(2) + acc.GetElement(3));
        }
        for (; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>Four dots of a0..a3 with b, each exactly as <see cref="Dot"/> computes it.</summary>
    static (double, double, double, double) Dot4(ReadOnlySpan<double> a0, ReadOnlySpan<double> a1, ReadOnlySpan<double> a2, ReadOnlySpan<double> a3, ReadOnlySpan<double> b)
    {
        int n = b.Length, i = 0;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (n >= 4)
        {
            Vector256<double> c0 = default, c1 = default, c2 = default, c3 = default;
            for (; i + 4 <= n; i += 4)
            {
                var vb = Vector256.Create(b.Slice(i, 4));
                c0 += Vector256.Create(a0.Slice(i, 4)) * vb;
                c1 += Vector256.Create(a1.Slice(i, 4)) * vb;
                c2 += Vector256.Create(a2.Slice(i, 4)) * vb;
                c3 += Vector256.Create(a3.Slice(i, 4)) * vb;
            }
            static double Sum(Vector256<double> v) => (v.GetElement(0) + v.GetElement(1)) + (v.GetElement(2) + v.GetElement(3));
            (s0, s1, s2, s3) = (Sum(c0), Sum(c1), Sum(c2), Sum(c3));
        }
        for (; i < n; i++) { s0 += a0[i] * b[i]; s1 += a1[i] * b[i]; s2 += a2[i] * b[i]; s3 += a3[i] * b[i]; }
        return (s0, s1, s2, s3);
    }

    /// <summary>y[i] -= s·x[i] (one multiply, one subtract per element, as the scalar loop it replaces).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SubtractScaled(Span<double> y, double s, ReadOnlySpan<double> x)
    {
        int n = Math.Min(x.Length, y.Length), i = 0;
        var vs = Vector256.Create(s);
        ref double rx = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref double ry = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
        for (; i + 4 <= n; i += 4)
            (Vector256.LoadUnsafe(ref ry, (nuint)i) - vs * Vector256.LoadUnsafe(ref rx, (nuint)i)).StoreUnsafe(ref ry, (nuint)i);
        for (; i < n; i++) y[i] -= s * x[i];
    }

    /// <summary>Rows (or columns) handled together, so each row read from memory serves many dot products.</summary>
    const int Block = 64, Group = 16;

    /// <summary>
    /// The lower Cholesky factor L (L·Lᵀ = A) of a symmetric positive definite k×k matrix. Every element is
    /// (A[i, j] − Dot(L[i, 0..j), L[j, 0..j))) / L[j, j], whatever the order the elements are computed in; they
    /// are computed by blocks of rows, each row j to their left read once for a group of rows (the one-column-at-
    /// a-time order read the whole triangle once per column: 9 s for a 2,400-wide Hessian, bound by memory).
    /// </summary>
    public static double[] Cholesky(double[] a, int k)
    {
        var l = new double[(long)k * k];
        for (int i0 = 0; i0 < k; i0 += Block)
        {
            int i1 = Math.Min(k, i0 + Block), first = i0;
            // The columns left of the block: the rows of a group depend only on rows above the block.
            ParallelRows(0, (i1 - i0 + Group - 1) / Group, g =>
            {
                int g0 = first + g * Group, g1 = Math.Min(i1, g0 + Group);
                for (int j = 0; j < first; j++)
                {
                    var rowJ = l.AsSpan(j * k, j);
                    double diag = l[(long)j * k + j];
                    for (int i = g0; i < g1; i++) l[(long)i * k + j] = (a[(long)i * k + j] - Dot(l.AsSpan(i * k, j), rowJ)) / diag;
                }
            }, (long)Group * first * first / 2);
            // Within the block, column by column.
            for (int j = i0; j < i1; j++)
            {
                var rowJ = l.AsSpan(j * k, j);
                double d = a[(long)j * k + j] - Dot(rowJ, rowJ);
                if (!(d > 0)) throw new InvalidOperationException("the layer's Hessian is not positive definite");
                double diag = l[(long)j * k + j] = Math.Sqrt(d);
                for (int i = j + 1; i < i1; i++) l[(long)i * k + j] = (a[(long)i * k + j] - Dot(l.AsSpan(i * k, j), l.AsSpan(j * k, j))) / diag;
            }
        }
        return l;
    }

    /// <summary>A⁻¹ of a symmetric positive definite matrix from its lower Cholesky factor: L⁻ᵀ·L⁻¹.</summary>
    public static double[] InverseFromCholesky(double[] l, int k)
    {
        // Row c of t is column c of L⁻¹ (zero before c): forward substitution, each column independent.
        // A group of columns at a time, so each row of L is read once for the group.
        var t = new double[(long)k * k];
        ParallelRows(0, (k + Group - 1) / Group, g =>
        {
            int c0 = g * Group, c1 = Math.Min(k, c0 + Group);
            for (int i = c0; i < k; i++)
                for (int c = c0; c < c1 && c <= i; c++)
                {
                    var x = t.AsSpan(c * k, k);
                    x[i] = i == c ? 1 / l[(long)c * k + c] : -Dot(l.AsSpan(i * k + c, i - c), x[c..i]) / l[(long)i * k + i];
                }
        }, (long)Group * k * k / 2);
        // (L⁻ᵀL⁻¹)[a, b] = Σ_p L⁻¹[p, a]·L⁻¹[p, b] over p ≥ max(a, b).
        var inverse = new double[(long)k * k];
        // Four rows a at a time, so each row b is read once for four dots (the product is bound by memory).
        ParallelRows(0, (k + 3) / 4, block =>
        {
            int a0 = block * 4, a1 = Math.Min(k, a0 + 4);
            for (int a = a0; a < a1; a++)
                for (int b = a; b < a1; b++)
                    inverse[(long)a * k + b] = inverse[(long)b * k + a] = Dot(t.AsSpan(a * k + b, k - b), t.AsSpan(b * k + b, k - b));
            if (a1 - a0 < 4) for (int a = a0; a < a1; a++) for (int b = a1; b < k; b++)
                inverse[(long)a * k + b] = inverse[(long)b * k + a] = Dot(t.AsSpan(a * k + b, k - b), t.AsSpan(b * k + b, k - b));
            else for (int b = a1; b < k; b++)
            {
                var (d0, d1, d2, d3) = Dot4(t.AsSpan(a0 * k + b, k - b), t.AsSpan((a0 + 1) * k + b, k - b), t.AsSpan((a0 + 2) * k + b, k - b), t.AsSpan((a0 + 3) * k + b, k - b), t.AsSpan(b * k + b, k - b));
                inverse[(long)a0 * k + b] = inverse[(long)b * k + a0] = d0;
                inverse[(long)(a0 + 1) * k + b] = inverse[(long)b * k + a0 + 1] = d1;
                inverse[(long)(a0 + 2) * k + b] = inverse[(long)b * k + a0 + 2] = d2;
                inverse[(long)(a0 + 3) * k + b] = inverse[(long)b * k + a0 + 3] = d3;
            }
        }, 4L * k);
        return inverse;
    }

    /// <summary>XᵀX for X given transposed (xt: k rows of s samples).</summary>
    public static double[] Gram(double[] xt, int k, int s)
    {
        var h = new double[(long)k * k];
        ParallelRows(0, k, a =>
        {
            for (int b = a; b < k; b++)
                h[(long)a * k + b] = h[(long)b * k + a] = Dot(xt.AsSpan(a * s, s), xt.AsSpan(b * s, s));
        }, k);
        return h;
    }

    /// <summary>Runs body(i) for i in [from, to): in parallel when there is enough work (cost: a rough count of operations per row).</summary>
    public static void ParallelRows(int from, int to, Action<int> body, long cost)
    {
        if ((long)(to - from) * cost < 1 << 16 || MaxThreads == 1) { for (int i = from; i < to; i++) body(i); return; }
        Parallel.For(from, to, new ParallelOptions { MaxDegreeOfParallelism = MaxThreads ?? -1 }, body);
    }

    /// <summary>Tests set 1 to prove the bytes do not depend on the thread count.</summary>
    internal static int? MaxThreads { get; set; }
}
