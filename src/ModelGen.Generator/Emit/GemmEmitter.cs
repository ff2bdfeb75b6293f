using System;
using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>Where a GEMM's bias comes from: none, one per row of C, one per column, or a whole matrix laid out as C.</summary>
internal enum BiasKind { None, PerRow, PerColumn, Full }

/// <summary>
/// C[M×N] = A[M×K]·B[K×N] (+ bias), then the node's activation, with every size a constant. A, B, C
/// are refs named by the caller (row strides lda, ldb, ldc; base offsets as expressions).
/// </summary>
internal sealed class GemmSpec
{
    public int M, N, K;
    public string A = "ra", B = "rb", C = "rc", Bias = "rbias";
    public string ABase = "0", BBase = "0", CBase = "0", BiasBase = "0";
    public int Lda, Ldb, Ldc;
    public BiasKind BiasKind;
    /// <summary>
    /// B's columns (and a per-column bias) are readable up to this count, zeros past N: the last columns
    /// are then one more vector tile whose partial vector is stored through a small buffer.
    /// </summary>
    public int PaddedColumns;
    /// <summary>
    /// B is gathered by the kernel itself (a convolution's patches): emits code that fills B's rows [from, to),
    /// writing row k at row k − from. Where a level sums K in chunks and every column inside the chunk loop,
    /// each chunk is gathered just before it is used, into the same rows (the working set stays one chunk);
    /// otherwise all of B is gathered first.
    /// </summary>
    public Action<CodeWriter, string, string>? GatherB;
    /// <summary>With <see cref="GatherB"/>: the chunks' rows come in multiples of this (one input channel's patch rows).</summary>
    public int GatherRows = 1;
}

/// <summary>
/// Register-blocked GEMM, emitted per node. A and B are float32 (a convolution's int8 weights are widened into
/// scratch first, ConvGemm): every read of them is <see cref="Float32Decoder"/>'s plain load, the place where a
/// weight format read in place would decode its operand instead. The micro-kernel keeps an MR×NR tile of C (NR vectors of
/// columns) in registers across the whole K loop: per k, NR loads of a B row, MR broadcasts of A, MR·NR
/// fused multiply-adds. Vector512 / Vector256 / Vector128 paths (chosen by IsHardwareAccelerated, which
/// the JIT and NativeAOT fold) and a scalar path; column tails use the narrower vectors, then scalars.
/// </summary>
internal static class GemmEmitter
{
    const string Unsafe = "Unsafe";

    /// <summary>
    /// Accumulators a tile may keep: x64 has 32 vector registers with AVX-512, 16 with AVX2/SSE; the rest hold
    /// B's vectors and A's broadcast. (Vector128 multiplies then adds: see <see cref="SimdWidth.Fused"/>.)
    /// </summary>
    static int MaxAccumulators(SimdWidth width) => width.Bits == 512 ? 24 : 12;

    /// <summary>Emits the GEMM; the refs, <c>ra</c>-style names in <paramref name="g"/>, must be in scope.</summary>
    public static void Emit(CodeWriter w, GemmSpec g, ArtifactNode node, SimdLevel simd)
    {
        var levels = SimdLadder.Widths(simd);
        if (g.PaddedColumns > g.N && levels.Count > 0) w.Line("Span<float> edge = stackalloc float[16];");
        if (HasColumnBuffer(g) && levels.Count > 0) w.Line($"Span<float> column = stackalloc float[{g.K}];");
        SimdLadder.Chain(w, levels, top => EmitLevel(w, g, node, levels.SkipWhile(x => x != top).ToList()), () =>
        {
            g.GatherB?.Invoke(w, "0", N(g.K));
            EmitScalar(w, g, node);
        });
        if (KernelEmitter.HasActivation(node) && VectorActivation(node, "x", "v") is null)
        {
            w.Line("// The activation, over C once the sums are done.");
            using (w.Block($"for (int r = 0; r < {g.M}; r++)"))
            using (w.Block($"for (int c = 0; c < {g.N}; c++)"))
            {
                w.Line($"ref float cell = ref {Unsafe}.Add(ref {g.C}, {Expr.Sum(g.CBase, Expr.Times("r", g.Ldc), "c")});");
                w.Line("float v = cell;");
                w.Line($"cell = {KernelEmitter.Act(node)};");
            }
        }
    }

    /// <summary>
    /// A vector form of the node's fused activation (Relu, Clip, LeakyRelu, Scale, HardSigmoid, HardSwish, and chains
    /// of them), or null when it is applied afterwards.
    /// </summary>
    /// <param name="neverNaN">The value cannot be NaN (an int8 kernel's int32 sum times a finite multiplier): the plain
    /// maxps/minps (MaxNative) serve, without the fix-up instruction IEEE NaN propagation costs.</param>
    /// <remarks>
    /// Otherwise on x86 the bound comes first: maxps and minps return their second operand when either is NaN, so
    /// max(bound, v) passes a NaN through as IEEE max(v, bound) does, in one instruction instead of the generic
    /// Max's two (Min's three). The one difference: a −0 stays −0 where the generic Max gives +0.
    /// A chain's steps are applied one after another to a local of the kernel when there is more than one; each
    /// step is an expression of the previous one.
    /// </remarks>
    internal static string? VectorActivation(ArtifactNode node, string v, string acc, bool neverNaN = false) =>
        node.Activation is { } chain ? VectorSteps(chain.Steps, v, acc, neverNaN) : acc;

    /// <summary>The steps applied to the vector expression <paramref name="acc"/> (see <see cref="VectorActivation"/>), or null.</summary>
    internal static string? VectorSteps(IEnumerable<ElementFunction> steps, string v, string acc, bool neverNaN = false)
    {
        string Bound(float value) => value == 0 ? $"{v}<float>.Zero" : $"{v}.Create({Activations.Literal(value)})";
        string Max(string x, string bound) => neverNaN ? $"{v}.MaxNative({x}, {bound})" : Native(v, "Max", bound, x) ?? $"{v}.Max({x}, {bound})";
        string Min(string x, string bound) => neverNaN ? $"{v}.MinNative({x}, {bound})" : Native(v, "Min", bound, x) ?? $"{v}.Min({x}, {bound})";
        string e = acc;
        foreach (var step in steps)
        {
            var (op, alpha, beta) = (step.Op, step.Alpha, step.Beta);
            // A step reads its input more than once only in LeakyRelu and HardSwish: there it must be a plain name.
            bool simple = e == acc;
            string? next = op switch
            {
                "Relu" => Max(e, Bound(0)),
                "Clip" when float.IsPositiveInfinity(beta) => Max(e, Bound(alpha)),
                "Clip" when float.IsNegativeInfinity(alpha) => Min(e, Bound(beta)),
                "Clip" => Min(Max(e, Bound(alpha)), Bound(beta)),
                "Scale" => $"{e} * {Bound(alpha)}",
                // x < 0 ? αx : x is max(αx, x) for 0 ≤ α ≤ 1 (x second: a NaN passes through).
                "LeakyRelu" when simple && alpha is >= 0f and <= 1f => Max($"{acc} * {Bound(alpha)}", acc),
                "HardSigmoid" => Min(Max($"{e} * {Bound(alpha)} + {Bound(beta)}", Bound(0)), Bound(1)),
                "HardSwish" when simple => $"{acc} * {Min(Max($"{acc} / {Bound(6)} + {Bound(0.5f)}", Bound(0)), Bound(1))}",
                // The shared helper (VectorMath.Log), emitted when a kernel's function is Log.
                "Log" => $"VectorLog({e})",
                _ => null,
            };
            if (next is null) return null;
            e = next;
        }
        return e;
    }

    /// <summary>
    /// maxps/minps of a bound and a value, the value second (it passes a NaN through): the x86 intrinsic of the vector
    /// width; for Vector128 only where SSE is (else null for the generic, as on ARM64, where it is one instruction).
    /// </summary>
    static string? Native(string v, string op, string bound, string x)
    {
        if (v.EndsWith("Vector512", StringComparison.Ordinal)) return $"Avx512F.{op}({bound}, {x})";
        if (v.EndsWith("Vector256", StringComparison.Ordinal)) return $"Avx.{op}({bound}, {x})";
        if (v.EndsWith("Vector128", StringComparison.Ordinal)) return $"(Sse.IsSupported ? Sse.{op}({bound}, {x}) : {v}.{op}({x}, {bound}))";
        return null;
    }

    /// <summary>Bytes of B a K chunk may span so that it stays in a 48 KiB L1 data cache with A's rows beside it.</summary>
    const int L1Budget = 32 * 1024;

    /// <summary>
    /// One SIMD level. Loops: K in chunks (so the chunk of B stays in L1), then column segments (tiles
    /// of NR vectors, single vectors, narrower vectors, scalars), then row blocks of MR, so each tile of
    /// B is reused by every row block while it is in L1.
    /// </summary>
    static void EmitLevel(CodeWriter w, GemmSpec g, ArtifactNode node, List<SimdWidth> ladder)
    {
        var top = ladder[0];
        int mr = g.M == 1 ? 1 : Math.Min(g.M, top.Floats == 16 ? 6 : 4);
        int vectors = g.N / top.Floats;
        int nr = g.M == 1
            ? Math.Max(1, Math.Min(vectors, MaxAccumulators(top) - 4))
            : Math.Max(1, Math.Min(MaxAccumulators(top) / mr, Math.Min(vectors, top.Floats == 16 ? 4 : 3)));
        // The tile of B that every row block reuses is K × (NR vectors); cut K so that it fits in L1.
        int kc = g.K;
        long rowBytes = (long)Math.Min(g.N, nr * top.Floats) * 4;
        if (g.M > mr && g.K * rowBytes > L1Budget) kc = (int)Math.Max(64, L1Budget / rowBytes / 8 * 8);
        // A gathered B is gathered a chunk at a time when every column is summed inside the chunk loop (the columns
        // left after it read all of K); its chunks then hold whole input channels.
        bool gatherPerChunk = g.GatherB is not null && kc < g.K && ColumnsInChunkLoop(g, ladder, nr);
        if (gatherPerChunk) kc = Math.Max(g.GatherRows, kc / g.GatherRows * g.GatherRows);
        var chunk = new Chunk(kc >= g.K ? null : "k0", kc, gatherPerChunk);
        if (!chunk.Relative) g.GatherB?.Invoke(w, "0", N(g.K));
        if (chunk.Var is not null) w.Line($"// K in chunks of {kc}: the chunk of B ({kc} rows) stays in L1 while every row block uses it; C carries the sums between chunks.");
        int n = 0, partialFrom = -1;
        using (w.BlockIf(chunk.Var is not null, $"for (int k0 = 0; k0 < {g.K}; k0 += {kc})"))
        {
            if (chunk.Var is not null)
            {
                w.Line($"int kEnd = Math.Min(k0 + {kc}, {g.K});");
                w.Line("bool firstChunk = k0 == 0, lastChunk = kEnd == " + g.K + ";");
                if (chunk.Relative)
                {
                    w.Line("// This chunk's rows of B, gathered now into B's first rows: they are still in L1 when the tiles read them.");
                    g.GatherB!(w, "k0", "kEnd");
                }
            }
            int tile = nr * top.Floats;
            int tiles = g.N / tile;
            if (tiles > 0)
            {
                using (w.BlockIf(tiles > 1, $"for (int n0 = 0; n0 < {tiles * tile}; n0 += {tile})"))
                {
                    RowBlocks(w, g, node, top, mr, nr, tiles > 1 ? "n0" : "0", chunk);
                }
                n = tiles * tile;
            }
            int singles = (g.N - n) / top.Floats;
            if (singles > 0)
            {
                RowBlocks(w, g, node, top, mr, singles, N(n), chunk);
                n += singles * top.Floats;
            }
            if (n < g.N && g.PaddedColumns >= n + top.Floats)
            {
                partialFrom = n;
                n = g.N;
            }
            foreach (var narrower in ladder.Skip(1))
            {
                if (g.N - n < narrower.Floats) continue;
                int count = (g.N - n) / narrower.Floats;
                RowBlocks(w, g, node, narrower, mr, count, N(n), chunk);
                n += count * narrower.Floats;
            }
        }
        int tailFrom = n;
        // The last columns, narrower than any vector, over all of K at once.
        if (tailFrom < g.N)
        {
            if (HasColumnBuffer(g)) DotColumns(w, g, node, top, tailFrom, g.N);
            else ScalarColumns(w, g, node, tailFrom, g.N, new Chunk(null, g.K));
        }
        // The last columns as one vector over B's zero padding, over all of K at once (C holds only N columns).
        if (partialFrom >= 0) RowBlocks(w, g, node, top, mr, 1, N(partialFrom), new Chunk(null, g.K), partial: g.N - partialFrom);
    }

    /// <summary>The K range a tile sums over: all of K, or the chunk [k0, kEnd); Relative: B holds only the chunk's rows.</summary>
    sealed record Chunk(string? Var, int Size, bool Relative = false);

    /// <summary>
    /// Whether EmitLevel sums every column of C inside its chunk loop: no last columns narrower than any vector
    /// and no partial vector over B's padding (those read all of K after the loop). The same steps as EmitLevel.
    /// </summary>
    static bool ColumnsInChunkLoop(GemmSpec g, List<SimdWidth> ladder, int nr)
    {
        var top = ladder[0];
        int tile = nr * top.Floats;
        int n = g.N / tile * tile;
        n += (g.N - n) / top.Floats * top.Floats;
        if (n < g.N && g.PaddedColumns >= n + top.Floats) return false;
        foreach (var narrower in ladder.Skip(1))
            n += (g.N - n) / narrower.Floats * narrower.Floats;
        return n == g.N;
    }

    static string N(int v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Every row block (MR rows, then the remainder) of one column segment.</summary>
    static void RowBlocks(CodeWriter w, GemmSpec g, ArtifactNode node, SimdWidth level, int mr, int vectors, string n0, Chunk chunk, int partial = 0)
    {
        int fullRows = g.M - g.M % mr;
        if (fullRows > mr)
        {
            using (w.Block($"for (int m0 = 0; m0 < {fullRows}; m0 += {mr})"))
            {
                Tile(w, g, node, level, mr, vectors, "m0", n0, chunk, partial);
            }
        }
        else if (fullRows == mr) Tile(w, g, node, level, mr, vectors, "0", n0, chunk, partial);
        if (g.M % mr != 0) Tile(w, g, node, level, g.M % mr, vectors, N(fullRows), n0, chunk, partial);
    }

    /// <summary>An MR×(NR vectors) block of C: accumulators in registers over the K loop, then one store each.</summary>
    static void Tile(CodeWriter w, GemmSpec g, ArtifactNode node, SimdWidth level, int rows, int nr, string m0, string n0, Chunk chunk, int partial = 0)
    {
        string v = level.V;
        var rs = Enumerable.Range(0, rows).ToArray();
        var qs = Enumerable.Range(0, nr).ToArray();
        using (w.Block())
        {
            string Cell(int r, int q) => Expr.Sum(g.CBase, Expr.Times(Expr.Plus(m0, r), g.Ldc), n0, N(q * level.Floats));
            foreach (int r in rs)
                foreach (int q in qs)
                {
                    if (chunk.Var is null) w.Line($"var c{r}_{q} = {Init(g, v, level.Floats, r, q, m0, n0)};");
                    else w.Ternary($"var c{r}_{q}", "firstChunk", Init(g, v, level.Floats, r, q, m0, n0), $"{v}.LoadUnsafe(ref {g.C}, {Nuint(Cell(r, q))})");
                }
            string k0 = chunk.Var ?? "0";
            w.Line("// pa and pb walk A's column and B's row as references: every load is then a register plus a constant,");
            w.Line("// and no index arithmetic competes with the multiply-adds for the vector ports.");
            w.Line($"ref float pa = ref {KernelEmitter.At(Unsafe, g.A, Expr.Sum(g.ABase, Expr.Times(m0, g.Lda), k0))};");
            w.Line(chunk.Relative
                ? $"ref float pb = ref {KernelEmitter.At(Unsafe, g.B, Expr.Plus(g.BBase, n0))};"
                : $"ref float pb = ref {KernelEmitter.At(Unsafe, g.B, Expr.Sum(g.BBase, Expr.Times(k0, g.Ldb), n0))};");
            using (w.Block(chunk.Var is null ? $"for (int k = 0; k < {g.K}; k++)" : "for (int k = k0; k < kEnd; k++)"))
            {
                foreach (int q in qs)
                    w.Line($"{v}<float> b{q} = {Float32Decoder.Load(level, "pb", q == 0 ? null : N(q * level.Floats))};");
                foreach (int r in rs)
                {
                    w.Line($"{v}<float> a{r} = {v}.Create({Float32Decoder.Scalar("pa", r == 0 ? null : N(r * g.Lda))});");
                    foreach (int q in qs)
                        w.Line(level.Fused ? $"c{r}_{q} = {v}.FusedMultiplyAdd(a{r}, b{q}, c{r}_{q});" : $"c{r}_{q} += a{r} * b{q};");
                }
                w.Line($"pa = ref {Unsafe}.Add(ref pa, 1);");
                w.Line($"pb = ref {Unsafe}.Add(ref pb, {g.Ldb});");
            }
            bool activate = KernelEmitter.HasActivation(node) && VectorActivation(node, v, "c") is not null;
            using (w.BlockIf(chunk.Var is not null && activate, "if (lastChunk)"))
            {
                if (activate)
                    foreach (int r in rs)
                        w.Line(string.Join(" ", qs.Select(q => $"c{r}_{q} = {VectorActivation(node, v, $"c{r}_{q}")};")));
            }
            if (partial > 0)
            {
                // The last {partial} columns: the vector through a buffer, then only the columns that exist.
                foreach (int r in rs)
                {
                    w.Line($"{v}.StoreUnsafe(c{r}_0, ref MemoryMarshal.GetReference(edge));");
                    w.Line($"for (int e = 0; e < {partial}; e++) {Unsafe}.Add(ref {g.C}, {Expr.Plus(Cell(r, 0), "e")}) = edge[e];");
                }
            }
            else
                foreach (int r in rs)
                    foreach (int q in qs)
                        w.Line($"{v}.StoreUnsafe(c{r}_{q}, ref {g.C}, {Nuint(Cell(r, q))});");
        }
    }

    static string Init(GemmSpec g, string v, int width, int r, int q, string m0, string n0) => g.BiasKind switch
    {
        BiasKind.PerRow => $"{v}.Create({Unsafe}.Add(ref {g.Bias}, {Expr.Sum(g.BiasBase, m0, N(r))}))",
        BiasKind.PerColumn => $"{v}.LoadUnsafe(ref {g.Bias}, {Nuint(Expr.Sum(g.BiasBase, n0, N(q * width)))})",
        BiasKind.Full => $"{v}.LoadUnsafe(ref {g.Bias}, {Nuint(Expr.Sum(g.BiasBase, Expr.Times(Expr.Plus(m0, r), g.Ldc), n0, N(q * width)))})",
        _ => $"{v}<float>.Zero",
    };

    /// <summary>An index as the nuint the vector loads and stores take.</summary>
    internal static string Nuint(string index) => index.IndexOf(' ') < 0 ? $"(nuint){index}" : $"(nuint)({index})";

    static string ScalarBias(GemmSpec g, string row, string col) => g.BiasKind switch
    {
        BiasKind.PerRow => $"{Unsafe}.Add(ref {g.Bias}, {Expr.Plus(g.BiasBase, row)})",
        BiasKind.PerColumn => $"{Unsafe}.Add(ref {g.Bias}, {Expr.Plus(g.BiasBase, col)})",
        BiasKind.Full => $"{Unsafe}.Add(ref {g.Bias}, {Expr.Sum(g.BiasBase, Expr.Times(row, g.Ldc), col)})",
        _ => "0f",
    };

    /// <summary>Columns [from, to), narrower than any vector, one at a time for every row.</summary>
    static void ScalarColumns(CodeWriter w, GemmSpec g, ArtifactNode node, int from, int to, Chunk chunk)
    {
        using (w.Block($"for (int r = 0; r < {g.M}; r++)"))
        using (w.Block($"for (int c = {from}; c < {to}; c++)"))
        {
            string cell = $"{Unsafe}.Add(ref {g.C}, {Expr.Sum(g.CBase, Expr.Times("r", g.Ldc), "c")})";
            w.Line(chunk.Var is null ? $"float sum = {ScalarBias(g, "r", "c")};" : $"float sum = firstChunk ? {ScalarBias(g, "r", "c")} : {cell};");
            w.Line($"for (int k = {chunk.Var ?? "0"}; k < {(chunk.Var is null ? N(g.K) : "kEnd")}; k++) sum += {Float32Decoder.Scalar(g.A, Expr.Sum(g.ABase, Expr.Times("r", g.Lda), "k"))} * {Float32Decoder.Scalar(g.B, Expr.Sum(g.BBase, Expr.Times("k", g.Ldb), "c"))};");
            bool vectorActivation = VectorActivation(node, "x", "v") is not null && KernelEmitter.HasActivation(node);
            if (vectorActivation)
            {
                w.Line("float v = sum;");
                w.Line(chunk.Var is null ? $"{cell} = {KernelEmitter.Act(node)};" : $"{cell} = lastChunk ? {KernelEmitter.Act(node)} : v;");
            }
            else w.Line($"{cell} = sum;");
        }
    }

    /// <summary>Whether the last columns (N not a multiple of 4) go through a K-long stack buffer.</summary>
    static bool HasColumnBuffer(GemmSpec g) => g.N % 4 != 0 && g.PaddedColumns <= g.N && g.K >= 16 && g.K <= 4096;

    /// <summary>
    /// Columns [from, to), narrower than any vector: each copied out of B into a contiguous column, then
    /// for every row of C one vector dot product over K (A's rows are contiguous).
    /// </summary>
    static void DotColumns(CodeWriter w, GemmSpec g, ArtifactNode node, SimdWidth level, int from, int to)
    {
        string v = level.V;
        int width = level.Floats;
        using (w.Block($"for (int c = {from}; c < {to}; c++)"))
        {
            w.Line($"for (int k = 0; k < {g.K}; k++) column[k] = {Float32Decoder.Scalar(g.B, Expr.Sum(g.BBase, Expr.Times("k", g.Ldb), "c"))};");
            w.Line("ref float rcol = ref MemoryMarshal.GetReference(column);");
            using (w.Block($"for (int r = 0; r < {g.M}; r++)"))
            {
                w.Line($"ref float arow = ref {KernelEmitter.At(Unsafe, g.A, Expr.Plus(g.ABase, Expr.Times("r", g.Lda)))};");
                w.Line($"{v}<float> acc = {v}<float>.Zero;");
                int vectorEnd = g.K - g.K % width;
                string ak = Float32Decoder.Load(level, "arow", "(nuint)k"), bk = Float32Decoder.Load(level, "rcol", "(nuint)k");
                w.Line($"for (int k = 0; k < {vectorEnd}; k += {width}) acc = {(level.Fused ? $"{v}.FusedMultiplyAdd({ak}, {bk}, acc)" : $"acc + {ak} * {bk}")};");
                w.Line($"float sum = {v}.Sum(acc) + {ScalarBias(g, "r", "c")};");
                if (vectorEnd < g.K) w.Line($"for (int k = {vectorEnd}; k < {g.K}; k++) sum += {Float32Decoder.Scalar("arow", "k")} * column[k];");
                bool vectorActivation = VectorActivation(node, "x", "v") is not null && KernelEmitter.HasActivation(node);
                w.Line("float v = sum;");
                w.Line($"{Unsafe}.Add(ref {g.C}, {Expr.Sum(g.CBase, Expr.Times("r", g.Ldc), "c")}) = {(vectorActivation ? KernelEmitter.Act(node) : "v")};");
            }
        }
    }

    /// <summary>No SIMD: each row of C accumulates k by k (y_row += a·B_row), walking B and C contiguously.</summary>
    static void EmitScalar(CodeWriter w, GemmSpec g, ArtifactNode node)
    {
        bool vectorActivation = VectorActivation(node, "x", "v") is not null;
        using (w.Block($"for (int r = 0; r < {g.M}; r++)"))
        {
            w.Line($"ref float crow = ref {KernelEmitter.At(Unsafe, g.C, Expr.Plus(g.CBase, Expr.Times("r", g.Ldc)))};");
            w.Line($"for (int c = 0; c < {g.N}; c++) {Unsafe}.Add(ref crow, c) = {ScalarBias(g, "r", "c")};");
            using (w.Block($"for (int k = 0; k < {g.K}; k++)"))
            {
                w.Line($"float a = {Float32Decoder.Scalar(g.A, Expr.Sum(g.ABase, Expr.Times("r", g.Lda), "k"))};");
                w.Line($"ref float brow = ref {KernelEmitter.At(Unsafe, g.B, Expr.Plus(g.BBase, Expr.Times("k", g.Ldb)))};");
                w.Line($"for (int c = 0; c < {g.N}; c++) {Unsafe}.Add(ref crow, c) += a * {Float32Decoder.Scalar("brow", "c")};");
            }
            if (KernelEmitter.HasActivation(node) && vectorActivation)
                w.Line($"for (int c = 0; c < {g.N}; c++) {{ float v = {Unsafe}.Add(ref crow, c); {Unsafe}.Add(ref crow, c) = {KernelEmitter.Act(node)}; }}");
        }
    }
}
