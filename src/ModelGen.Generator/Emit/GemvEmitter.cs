using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// A fully connected layer on one row (batch 1): y[j] = Σk x[k]·W[j, k] + b[j] with W [N, K]. Each output
/// is a dot product over a contiguous row of W; R rows at a time share every load of x, each with its
/// own vector accumulator, summed across lanes once at the end. Reading W once is the whole cost, so
/// the rows stream in order.
/// </summary>
internal static class GemvEmitter
{
    const string U = "Unsafe";

    /// <summary>Padding of an aligned weight literal, in floats, on each side: enough for 64-byte loads around any start.</summary>
    internal const int AlignPad = 16;

    /// <summary>
    /// W in 4-row panels ([N'/4, K'/16, 4, 16], see ArtifactBuilder.Panels4): every step multiplies 16
    /// columns of 4 rows with one load of x and reads the next 256 bytes of one stream. On AVX-512 the
    /// weights, which sit wherever the runtime put their literal, are read in 64-byte-aligned loads and
    /// shifted into place in registers (vpermt2ps, by wPhase floats): a misaligned 64-byte load touches two
    /// cache lines, which halved the rate the weights came from L2 (74 against 144 GB/s measured here).
    /// </summary>
    public static void Emit(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, SimdLevel simd)
    {
        var wt = inputs[1];
        int n = KernelEmitter.Dense(node).N, k = KernelEmitter.Dense(node).K;
        int panels = wt.Shape[0], chunks = wt.Shape[1], fullChunks = k / 16, tail = k % 16;
        if (wt.Shape.Length != 4 || wt.Shape[2] != 4 || wt.Shape[3] != 16 || panels != (n + 3) / 4 || chunks != (k + 15) / 16)
            throw new System.FormatException($"Dense '{node.Name}': panels4 weights must be [{(n + 3) / 4}, {(k + 15) / 16}, 4, 16]");
        bool hasBias = inputs.Length > 2;
        bool zigzag = wt.ElementCount * 4L > ZigzagBytes && n / 4 >= 2;
        w.Line($"// Fully connected, one row: y[j] = Σk x[k]·W[j, k]{(hasBias ? " + b[j]" : "")} for {n} outputs of {k} inputs{KernelEmitter.ActName(node)}.");
        w.Line($"// W re-packed at build time in panels of 4 rows, 16 columns of each row in turn ({CodeWriter.Shape(wt.Shape)}{(n % 4 != 0 || tail != 0 ? ", zeros to fill" : "")}): one stream, read in order{(zigzag ? " (every other call panel by panel from the last)" : "")}.");
        w.Line($"// w holds {AlignPad} floats of padding on each side; wPhase is how many floats the weights start past a 64-byte boundary (-1: unknown).");
        // Weights past ZigzagBytes: the panels run in alternate directions from one call to the next (bit-identical
        // results, each row computed alike). Streaming more than a cache holds in the same order every call misses
        // on every line its replacement policy evicted; starting where the last call ended reads the freshest first.
        // LeNet-5's 1.6 MB fc1 in a 2 MB L2, in the whole model: 55.0 → 52.3 µs.
        if (zigzag)
        {
            w.Line($"// Set when the next call reads the panels last to first (see the kernel); a race between threads only changes the order.");
            w.Line($"static bool s_{name}Backward;");
            w.Line("");
        }
        // The panel layout, the realigned loads and the zigzag are this kernel's; reading a weight is the decoder's.
        var d = new Float32Decoder(k, (x, r, part) => Expr.Plus("p", r * 16 + part * x.Floats), row => "panel + (i >> 4) * 64 + (i & 15)");
        using var method = KernelEmitter.OpenKernel(w, name, sig + ", int wPhase");
        w.Line($"if (x.Length < {k} || w.Length < {wt.ElementCount + 2 * AlignPad} || y.Length < {n}{(hasBias ? $" || b.Length < {n}" : "")} || wPhase >= 16) throw new ArgumentException(\"buffer too short\");");
        w.Line("ref float rx = ref MemoryMarshal.GetReference(x);");
        w.Line($"ref {d.Element} rw = ref {U}.Add(ref MemoryMarshal.GetReference(w), {AlignPad});");
        if (tail != 0)
        {
            w.Line($"// The last {tail} inputs, then zeros: the last 16 columns read x from here, never past its end.");
            w.Line("Span<float> xTail = stackalloc float[16];");
            w.Line("xTail.Clear();");
            w.Line($"x.Slice({fullChunks * 16}, {tail}).CopyTo(xTail);");
            w.Line("ref float rt = ref MemoryMarshal.GetReference(xTail);");
        }
        if (zigzag) w.Line($"bool backward = s_{name}Backward; s_{name}Backward = !backward;");
        var ctx = new PanelContext(node, n, chunks, fullChunks, tail, hasBias, zigzag, d);
        // AVX-512 realigns its loads with vpermt2ps (an x86 instruction): Vector512 elsewhere takes the scalar path.
        SimdLadder.Chain(w, SimdLadder.Widths(simd), x =>
        {
            w.Line("nuint p = 0;");
            if (x.Bits != 512)
            {
                Panels(w, ctx, x, x.Fused ? PanelMode.Fused : PanelMode.Plain);
                return;
            }
            using (w.Block("if (wPhase >= 0)"))
            {
                w.Line($"ref float ra = ref {U}.Subtract(ref rw, wPhase);");
                w.Line($"var shift = {x.V}<int>.Indices + {x.V}.Create(wPhase);");
                w.Line($"var prev = {x.V}.LoadUnsafe(ref ra);");
                w.Line("p = 16;");
                Panels(w, ctx, x, PanelMode.Realigned);
            }
            using (w.Block("else"))
            {
                Panels(w, ctx, x, PanelMode.Fused);
            }
        }, () =>
        {
            using (w.Block($"for (int j = 0; j < {n}; j++)"))
            {
                w.Line("float sum = 0f;");
                w.Line($"int panel = (j >> 2) * {chunks * 64} + (j & 3) * 16;");
                w.Line($"for (int i = 0; i < {k}; i++) {d.ScalarTerm("j", "sum")}");
                w.Line(DenseEpilogue.Store(node, "sum", null, hasBias, "j"));
            }
        }, guard: x => x.Bits == 512 ? x.AcceleratedX86 : x.Accelerated);
    }

    enum PanelMode { Plain, Fused, Realigned }

    sealed record PanelContext(ArtifactNode Node, int N, int Chunks, int FullChunks, int Tail, bool HasBias, bool Zigzag, IWeightDecoder Decoder);

    /// <summary>
    /// Weight bytes above which a one-row layer alternates the direction it reads its panels in: more than most cores'
    /// L2. Below it the alternation bought nothing (LeNet-300-100's 940 KB fc1 in a 2 MB L2: 10.4 against 10.6 µs,
    /// the prefetchers restarting at each panel going backwards).
    /// </summary>
    internal const long ZigzagBytes = 1024 * 1024;

    /// <summary>The loop over panels: whole ones, then the last with fewer than 4 rows if N is not a multiple of 4.</summary>
    static void Panels(CodeWriter w, PanelContext c, SimdWidth width, PanelMode mode)
    {
        int full = c.N / 4;
        if (full > 0 && c.Zigzag)
        {
            // Panel j/4 starts at a fixed place in the stream whichever way the panels go.
            w.Line("// This call's direction: the rows the last call read last come first.");
            using (w.Block($"for (int step = 0; step < {full * 4}; step += 4)"))
            {
                w.Line($"int j = backward ? {(full - 1) * 4} - step : step;");
                if (mode == PanelMode.Realigned)
                {
                    w.Line($"p = (nuint)(16 + j * {c.Chunks * 16});");
                    w.Line("prev = Vector512.LoadUnsafe(ref ra, p - 16);");
                }
                else w.Line($"p = (nuint)(j * {c.Chunks * 16});");
                Panel(w, c, width, mode, "j", 4);
            }
            if (c.N % 4 != 0)
            {
                // After the loop p is past the panel it read last; the partial panel is the stream's last.
                w.Line(mode == PanelMode.Realigned ? $"p = (nuint)(16 + {full * c.Chunks * 64});" : $"p = (nuint)({full * c.Chunks * 64});");
                if (mode == PanelMode.Realigned) w.Line("prev = Vector512.LoadUnsafe(ref ra, p - 16);");
            }
        }
        else if (full > 0)
        {
            using (w.Block($"for (int j = 0; j < {full * 4}; j += 4)"))
            {
                Panel(w, c, width, mode, "j", 4);
            }
        }
        if (c.N % 4 != 0)
        {
            using (w.Block())
            {
                w.Line($"const int j = {full * 4};");
                Panel(w, c, width, mode, "j", c.N % 4);
            }
        }
    }

    /// <summary>One panel: 4 accumulators over the columns, 16 at a time (the last 16 from xTail), then one sum each.</summary>
    static void Panel(CodeWriter w, PanelContext c, SimdWidth width, PanelMode mode, string j, int rows)
    {
        string v = width.V;
        w.Line($"{v}<float> a0 = {v}<float>.Zero, a1 = a0, a2 = a0, a3 = a0;");
        if (c.FullChunks > 0)
        {
            using (w.Block($"for (int i = 0; i < {c.FullChunks * 16}; i += 16)"))
            {
                Chunk(w, c.Decoder, width, mode, "rx", "i");
            }
        }
        if (c.Tail != 0)
        {
            using (w.Block())
            {
                Chunk(w, c.Decoder, width, mode, "rt", "0");
            }
        }
        for (int r = 0; r < rows; r++)
            w.Line(DenseEpilogue.Store(c.Node, $"{v}.Sum(a{r})", null, c.HasBias, r == 0 ? j : $"{j} + {r}"));
    }

    /// <summary>16 columns of 4 rows: 256 bytes of the stream at p, x (or xTail) at the matching columns.</summary>
    static void Chunk(CodeWriter w, IWeightDecoder d, SimdWidth width, PanelMode mode, string xRef, string xAt)
    {
        const string Permute = "Avx512F.PermuteVar16x32x2";
        string v = width.V;
        for (int part = 0; part < 16 / width.Floats; part++)
        {
            string x = part == 0 ? "" : part.ToString(System.Globalization.CultureInfo.InvariantCulture);
            string at = Expr.Plus(xAt, part * width.Floats);
            w.Line(at == "0" ? $"var xv{x} = {v}.LoadUnsafe(ref {xRef});" : $"var xv{x} = {v}.LoadUnsafe(ref {xRef}, {GemmEmitter.Nuint(at)});");
        }
        if (mode == PanelMode.Realigned)
        {
            w.Line("// Four aligned loads; each row's 16 columns are the last floats of one and the first of the next.");
            for (int q = 0; q < 4; q++) w.Line($"var w{q} = {v}.LoadUnsafe(ref ra, {Expr.Plus("p", 16 * q)});");
            w.Line($"a0 = {v}.FusedMultiplyAdd({Permute}(prev, shift, w0), xv, a0);");
            w.Line($"a1 = {v}.FusedMultiplyAdd({Permute}(w0, shift, w1), xv, a1);");
            w.Line($"a2 = {v}.FusedMultiplyAdd({Permute}(w1, shift, w2), xv, a2);");
            w.Line($"a3 = {v}.FusedMultiplyAdd({Permute}(w2, shift, w3), xv, a3);");
            w.Line("prev = w3;");
        }
        else
        {
            for (int r = 0; r < 4; r++)
                for (int part = 0; part < 16 / width.Floats; part++)
                {
                    string x = part == 0 ? "xv" : "xv" + part.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    string load = d.Part(width, r, 4, part);
                    w.Line(mode == PanelMode.Fused ? $"a{r} = {v}.FusedMultiplyAdd({load}, {x}, a{r});" : $"a{r} += {load} * {x};");
                }
        }
        w.Line("p += 64;");
    }

    /// <summary>
    /// float32 weights [N, K] row-major as they are, one row: the halves of a low-rank factorization, whose rank the
    /// panels would pad to 4 rows and 16 columns (4% of LeNet-300-100's factorized bytes). The columns past the last
    /// whole vector are added one by one.
    /// </summary>
    public static void EmitFloat32Rows(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, SimdLevel simd)
    {
        var wt = inputs[1];
        if (wt.Shape.Length != 2 || wt.Shape[0] != y.ElementCount)
            throw new System.FormatException($"Dense '{node.Name}': nk32 weights must be [{y.ElementCount}, K]");
        int n = wt.Shape[0], k = wt.Shape[1];
        bool hasBias = inputs.Length > 2;
        w.Line($"// Fully connected, one row: y[j] = Σk x[k]·W[j, k]{(hasBias ? " + b[j]" : "")} for {n} outputs of {k} inputs, W {CodeWriter.Shape(wt.Shape)} row-major, unpadded (a thin layer){KernelEmitter.ActName(node)}.");
        var d = new Float32Decoder(k, (x, r, part) => $"(nuint)({Expr.Plus($"j * {k}", r * k + part * x.Floats)} + i)", row => $"{SimdWidth.Parenthesized(row)} * {k} + i");
        EmitRows(w, node, name, sig, wt, n, k, hasBias, simd, d, "");
    }

    /// <summary>Weight-only int8, one row: y[j] = scale[j]·Σk q[j, k]·x[k] + b[j], q [N, K] row-major.</summary>
    public static void EmitInt8(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, SimdLevel simd)
    {
        var wt = inputs[1];
        int n = wt.Shape[0], k = wt.Shape[1];
        bool hasBias = inputs.Length > 3;
        w.Line($"// Fully connected, one row, int8 weights: y[j] = scale[j]·Σk q[j, k]·x[k]{(hasBias ? " + b[j]" : "")} for {n} outputs of {k} inputs, q {CodeWriter.Shape(wt.Shape)} int8 row-major{KernelEmitter.ActName(node)}.");
        EmitRows(w, node, name, sig, wt, n, k, hasBias, simd, new Int8RowDecoder(k), $" || scales.Length < {n}");
    }

    /// <summary>Weight-only int4, one row: y[j] = scale[j]·Σk (nibble[j, k] − 8)·x[k] + b[j], two weights a byte.</summary>
    public static void EmitInt4(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, SimdLevel simd)
    {
        var wt = inputs[1];
        int n = wt.Shape[0], rowBytes = wt.Shape[1], k = KernelEmitter.Dense(node).K;
        bool hasBias = inputs.Length > 3;
        w.Line($"// Fully connected, one row, int4 weights: y[j] = scale[j]·Σk (q[j, k] − 8)·x[k]{(hasBias ? " + b[j]" : "")} for {n} outputs of {k} inputs; q packed two per byte, {rowBytes} bytes a row{KernelEmitter.ActName(node)}.");
        EmitRows(w, node, name, sig, wt, n, k, hasBias, simd, new Int4BlockDecoder(k, rowBytes), $" || scales.Length < {n}");
    }

    /// <summary>Shared weights (weight sharing), one row: y[j] = Σk codebook[code[j, k]]·x[k] + b[j], the codes packed bits each.</summary>
    public static void EmitCodebook(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor y, SimdLevel simd)
    {
        var wt = inputs[1];
        var dense = KernelEmitter.Dense(node);
        int n = wt.Shape[0], k = dense.K, entries = 1 << dense.Bits;
        var decoder = new CodebookDecoder(k, dense.Bits);
        if (wt.Shape.Length != 2 || wt.Shape[1] != decoder.RowBytes || inputs[2].ElementCount != entries)
            throw new System.FormatException($"Dense '{node.Name}': {dense.Bits}-bit codes must be [{n}, {decoder.RowBytes}] and the codebook {entries} floats");
        // The AVX2 form reads a 4-bit codebook's upper two bytes only (CodebookCodes): the compiler stores bfloat16 values.
        if (dense.Bits == 4 && inputs[2].Data is { } table && Enumerable.Range(0, entries).Any(e => table[4 * e] != 0 || table[4 * e + 1] != 0))
            throw new System.FormatException($"Dense '{node.Name}': a 4-bit codebook must hold bfloat16 values (float32 with the low 16 bits zero)");
        bool hasBias = inputs.Length > 3;
        w.Line($"// Fully connected, one row, shared weights: y[j] = Σk codebook[code[j, k]]·x[k]{(hasBias ? " + b[j]" : "")} for {n} outputs of {k} inputs; codes of {dense.Bits} bits, {decoder.RowBytes} bytes a row, a codebook of {entries} float32{KernelEmitter.ActName(node)}.");
        EmitRows(w, node, name, sig, wt, n, k, hasBias, simd, decoder, $" || codebook.Length < {entries}", accumulatorPerPart: true);
    }

    /// <summary>
    /// The matrix-vector kernel over a weight decoder: rows in groups of the decoder's size, each group's
    /// accumulators sharing every load of x; per row the vector sum, the columns past the vector loop one by
    /// one, then the epilogue (scale, bias, activation). The scalar path, one row at a time, is the same sum.
    /// </summary>
    static void EmitRows(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor wt, int n, int k, bool hasBias, SimdLevel simd, IWeightDecoder d, string tablesCheck,
        bool accumulatorPerPart = false)
    {
        foreach (string line in d.Why) w.Line(line);
        using var method = KernelEmitter.OpenKernel(w, name, sig);
        w.Line($"if (x.Length < {k} || w.Length < {wt.ElementCount}{tablesCheck}{(hasBias ? $" || b.Length < {n}" : "")} || y.Length < {n}) throw new ArgumentException(\"buffer too short\");");
        w.Line("ref float rx = ref MemoryMarshal.GetReference(x);");
        w.Line($"ref {d.Element} rw = ref MemoryMarshal.GetReference(w);");
        SimdLadder.Chain(w, d.Widths(simd), x =>
        {
            string v = x.V;
            foreach (string line in d.Setup(x)) w.Line(line);
            int rows = d.RowsPerStep, full = n - n % rows, vectorEnd = d.VectorColumns(x), step = d.Step(x), parts = step / x.Floats;
            foreach (var (from, to, count) in new[] { (0, full, rows), (full, n, 1) })
            {
                if (to <= from) continue;
                var rs = Enumerable.Range(0, count).ToArray();
                using (w.Block($"for (int j = {from}; j < {to}; {(count == 1 ? "j++" : $"j += {count}")})"))
                {
                    // One accumulator per row, or per row and part: a row alone in its step would otherwise wait on
                    // its own multiply-adds one after the other (4-cycle latency each).
                    bool perPart = accumulatorPerPart && parts > 1;
                    string Acc(int r, int part) => perPart ? $"a{r}p{part}" : $"a{r}";
                    w.Line(string.Join(" ", rs.SelectMany(r => Enumerable.Range(0, perPart ? parts : 1).Select(part => $"{v}<float> {Acc(r, part)} = {v}<float>.Zero;"))));
                    foreach (string line in d.RowsStart(x)) w.Line(line);
                    using (w.Block($"for (int i = 0; i < {vectorEnd}; i += {step})"))
                    {
                        for (int part = 0; part < parts; part++)
                            w.Line($"{v}<float> {Xv(part)} = {v}.LoadUnsafe(ref rx, (nuint){(part == 0 ? "i" : $"(i + {part * x.Floats})")});");
                        foreach (int r in rs)
                        {
                            foreach (string line in d.Decode(x, r, count)) w.Line(line);
                            for (int part = 0; part < parts; part++)
                            {
                                string weights = d.Part(x, r, count, part);
                                w.Line(x.Fused ? $"{Acc(r, part)} = {v}.FusedMultiplyAdd({weights}, {Xv(part)}, {Acc(r, part)});" : $"{Acc(r, part)} += {weights} * {Xv(part)};");
                            }
                        }
                    }
                    foreach (int r in rs)
                    {
                        string row = r == 0 ? "j" : $"j + {r}";
                        w.Line($"float s{r} = {v}.Sum({(perPart ? string.Join(" + ", Enumerable.Range(0, parts).Select(part => Acc(r, part))) : $"a{r}")});");
                        if (vectorEnd < k) w.Line($"for (int i = {vectorEnd}; i < {k}; i++) {d.ScalarTerm(row, $"s{r}")}");
                        w.Line(DenseEpilogue.Store(node, $"s{r}", d.RowScale(row), hasBias, row));
                    }
                }
            }
        }, () =>
        {
            using (w.Block($"for (int j = 0; j < {n}; j++)"))
            {
                w.Line("float sum = 0f;");
                w.Line($"for (int i = 0; i < {k}; i++) {d.ScalarTerm("j", "sum")}");
                w.Line(DenseEpilogue.Store(node, "sum", d.RowScale("j"), hasBias, "j"));
            }
        }, guard: d.Guard);
    }

    static string Xv(int part) => part == 0 ? "xv" : "xv" + part.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
