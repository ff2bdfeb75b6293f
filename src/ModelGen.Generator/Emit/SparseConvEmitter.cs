using System;
using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// A pruned Conv with sparse weights (<see cref="ConvMethod.Sparse"/>, docs/artifact-format.md): each output channel
/// sums only its stored entries. A tile of output columns is summed in vector registers, one broadcast weight times
/// one contiguous load of input per entry and vector, as the implicit GEMM does but one output channel at a time (the
/// channels' taps differ). Each entry's index is decoded where it is used, in the tile's loop: its few scalar
/// operations run beside the vector multiply-adds (decoding every row into scratch first, a pass of its own, cost
/// LeNet-5's conv2 more than its multiply-adds). A column becomes an input offset through a table made once a call. The input is read in place, or zero-padded into
/// scratch once per group when the convolution has pads, so every tap of every output is one offset from its
/// output's position. A pointwise convolution's output plane is one long row.
/// <para>
/// N:M differs (docs/implementation-notes.md, N:M sparse convolutions): each row's entries are decoded into input
/// offsets once, before its tiles (AVX2: 8 a step), since its rows all hold the same count; the input is always
/// copied, onto rows (pointwise: channels) that start on 64-byte lines, so few loads straddle two lines; and a
/// row's strips are split into tiles of equal size. The sums keep the order of the unstructured kernel.
/// </para>
/// </summary>
internal static class SparseConvEmitter
{
    const string U = "Unsafe";

    /// <summary>
    /// Vectors of output columns a tile sums at once, as many accumulators as the implicit GEMM keeps: 12 of 16 vector
    /// registers, 24 of 32 with AVX-512 (the rest for the broadcast weight and a load); an entry's decoding is shared by more multiply-adds.
    /// </summary>
    static int TileVectors(SimdWidth l) => l.Bits == 512 ? 24 : 12;

    sealed record Geometry(int N, int C, int H, int W, int M, int OH, int OW, int KH, int KW, int SH, int SW, int DH, int DW, int[] Pads, int Group, bool Aligned = false)
    {
        public int Cpg => C / Group;
        public int Mpg => M / Group;
        public int Taps => KH * KW;
        public bool Padded => Pads.Any(p => p != 0);
        public int HP => H + Pads[0] + Pads[2];
        /// <summary>Floats from one input row to the next: the padded width, or with <see cref="Aligned"/> that rounded up to a 64-byte line.</summary>
        public int WP => Aligned && !Pointwise ? ConvScratch.SparseLine(W + Pads[1] + Pads[3]) : W + Pads[1] + Pads[3];
        /// <summary>Floats from one input channel to the next (a pointwise plane, aligned, rounded up to a line).</summary>
        public int Plane => Aligned && Pointwise ? ConvScratch.SparseLine(H * W) : HP * WP;
        /// <summary>The input is copied (zero-padded, or onto aligned lines for N:M) into scratch once per group.</summary>
        public bool Copied => Padded || Aligned;
        public bool Pointwise => Taps == 1 && SH == 1 && SW == 1 && !Padded;
        /// <summary>Output rows and columns as the tiles see them: a pointwise plane is one row (x and y both contiguous).</summary>
        public int Rows => Pointwise ? 1 : OH;
        public int Columns => Pointwise ? OH * OW : OW;
        /// <summary>Input floats from one output row to the next.</summary>
        public int RowStep => SH * WP;
    }

    /// <summary>A vector of a tile: its output row and column relative to the tile's (oy, n0).</summary>
    readonly record struct Strip(int Dy, int Dx);

    public static void Emit(KernelContext k)
    {
        var w = k.W;
        var node = k.Node;
        var conv = k.Conv;
        var format = conv.Sparse ?? throw new FormatException($"Conv '{node.Name}': a sparse Conv needs its sparse format");
        var x = k.Inputs[0]; var y = k.Y;
        var win = k.Window;
        int[] kernel = win.Kernel, s = win.Strides, d = win.Dilations, p = win.Pads;
        var g = new Geometry(x.Shape[0], x.Shape[1], x.Shape.Length == 4 ? x.Shape[2] : 1, x.Shape[x.Shape.Length - 1], y.Shape[1],
            y.Shape.Length == 4 ? y.Shape[2] : 1, y.Shape[y.Shape.Length - 1], kernel[0], kernel[1], s[0], s[1], d[0], d[1], p, conv.Group, format.IsNOfM);
        bool counts = !format.IsNOfM;
        bool hasBias = k.Inputs.Length > (counts ? 4 : 3);
        bool table = g.Taps > 1 || format.IsNOfM;
        if (k.Outputs.Length != 1 + (table ? 1 : 0) + (g.Copied ? 1 : 0))
            throw new FormatException($"Conv '{node.Name}': {(table ? "the column offsets" : "no column offsets")}{(g.Copied ? " and the copied input" : "")} expected after y");
        string padded = "y" + (table ? "2" : "1");
        long entries = k.Inputs[1].ElementCount;
        long dense = (long)g.M * g.Cpg * g.Taps;
        w.Line($"// Conv: y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ w[{g.M}, {g.Cpg}, {g.KH}, {g.KW}]{(hasBias ? " + b" : "")}; window {g.KH}x{g.KW}, stride {s[0]}x{s[1]}, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}, group {g.Group}{k.ActName()}.");
        w.Line(format.IsNOfM
            ? $"// Sparse weights, {format.N}:{format.M}: w holds {entries} entries of the {dense} weights (in each group of {format.M} columns of a row, {format.N}), index their positions in the group in {format.IndexBits} bits."
            : $"// Sparse weights, unstructured: w holds {entries} entries of the {dense} weights (padding zeros included), index each one's distance from the row's previous column in {format.IndexBits} bits, counts each row's entries.");
        w.Line(format.IsNOfM
            ? $"// Per output channel: its entries' input offsets decoded into y1 once (each column's offset from the table y1 starts with), then tiles of output columns summing only its entries, one broadcast weight times a vector of input; the input copied{(g.Padded ? " zero-padded" : "")} into {padded} per group ({g.Cpg} channels of {g.Plane} floats), rows on 64-byte lines so few loads straddle two."
            : $"// Per output channel, tiles of output columns summing only its entries: each index decoded where it is used, its column's input offset{(table ? " from y1" : "")}, one broadcast weight times a vector of input{(g.Padded ? $"; the input zero-padded into {padded} ({g.Cpg}x{g.HP}x{g.WP}) per group" : "")}.");
        using var method = k.OpenMethod();
        var lengths = new List<(string, long)> { ("x", x.ElementCount), ("w", entries), ("index", k.Inputs[2].ElementCount), ("y", y.ElementCount) };
        if (counts) lengths.Add(("counts", g.M));
        if (hasBias) lengths.Add(("b", g.M));
        int perRow = format.IsNOfM ? RowEntries(format, g.Cpg * g.Taps) : 0;
        int tableColumns = format.IsNOfM ? ConvScratch.SparseLine(g.Cpg * g.Taps) : g.Cpg * g.Taps;
        if (table) lengths.Add(("y1", tableColumns + perRow));
        if (g.Copied) lengths.Add((padded, (long)g.Cpg * g.Plane + (g.Aligned ? ConvScratch.SparseLineFloats : 0)));
        KernelEmitter.CheckedRefs(w, [.. lengths], ("rx", "x"), ("rw", "w"), ("ri", "index"), ("ry", "y"));
        if (counts) w.Line("ref short rn = ref MemoryMarshal.GetReference(counts);");
        if (hasBias) w.Line("ref float rbias = ref MemoryMarshal.GetReference(b);");
        if (g.Aligned)
        {
            w.Line($"// The copy starts on a 64-byte line (the scratch has {ConvScratch.SparseLineFloats} floats to spare): its address's float index within a line, from a null reference.");
            w.Line($"ref float rpad = ref MemoryMarshal.GetReference({padded});");
            w.Line($"rpad = ref {U}.Add(ref rpad, (int)(({ConvScratch.SparseLineFloats} - (({U}.ByteOffset(ref {U}.NullRef<float>(), ref rpad) >> 2) & {ConvScratch.SparseLineFloats - 1})) & {ConvScratch.SparseLineFloats - 1}));");
        }
        else if (g.Padded) w.Line($"ref float rpad = ref MemoryMarshal.GetReference({padded});");
        if (table)
        {
            w.Line($"// The input offset of each column (c, i, j) of a row: c·{g.Plane} + i·{g.DH * g.WP} + j·{g.DW}.");
            w.Line("ref int ro = ref MemoryMarshal.GetReference(MemoryMarshal.Cast<float, int>(y1));");
            using (w.For("c", g.Cpg, out string c))
            using (w.For("i", g.KH, out string i))
            using (w.For("j", g.KW, out string j))
                w.Line($"{KernelEmitter.At(U, "ro", Expr.Sum(Expr.Times(Expr.Plus(Expr.Times(c, g.KH), i), g.KW), j))} = {Expr.Sum(Expr.Times(c, g.Plane), Expr.Times(i, g.DH * g.WP), Expr.Times(j, g.DW))};");
            if (tableColumns > g.Cpg * g.Taps)
                w.Line($"for (int i = {g.Cpg * g.Taps}; i < {tableColumns}; i++) {U}.Add(ref ro, i) = 0; // past the last column: read by the last whole decoding step, never used");
            if (format.IsNOfM) w.Line($"ref int po = ref {U}.Add(ref ro, {tableColumns}); // the row's entries' input offsets");
        }
        using (w.For("image", g.N, out string image))
        {
            w.Line("int ip = 0, vp = 0; // the row's first index byte and value");
            using (w.For("grp", g.Group, out string grp))
            {
                string xBase = w.IntLocal("xBase", Expr.Times(Expr.Plus(Expr.Times(image, g.C), Expr.Times(grp, g.Cpg)), g.H * g.W));
                if (g.Copied)
                {
                    PadCopy(w, g, xBase);
                    w.Line("ref float rp = ref rpad;");
                }
                else w.Line($"ref float rp = ref {KernelEmitter.At(U, "rx", xBase)};");
                using (w.For("m", g.Mpg, out string m))
                {
                    string row = w.IntLocal("row", Expr.Plus(Expr.Times(grp, g.Mpg), m));
                    w.Line(format.IsNOfM ? $"const int count = {perRow};" : $"int count = {U}.Add(ref rn, {row});");
                    w.Line($"ref byte pi = ref {U}.Add(ref ri, ip);");
                    w.Line($"ref float pv = ref {U}.Add(ref rw, vp);");
                    w.Line($"ref float py = ref {KernelEmitter.At(U, "ry", Expr.Plus(Expr.Times(image, g.M), row), (long)g.OH * g.OW)};");
                    w.Line($"float bias = {(hasBias ? $"{U}.Add(ref rbias, {row})" : "0f")};");
                    if (format.IsNOfM) DecodeRow(w, k.Simd, format, perRow);
                    var levels = g.SW == 1 ? SimdLadder.Widths(k.Simd).Where(l => g.Columns >= l.Floats).ToList() : [];
                    SimdLadder.Chain(w, levels, l => EmitLevel(w, g, node, format, l), () => EmitScalar(w, g, node, format));
                    w.Line($"ip += (count * {format.IndexBits} + 7) / 8;");
                    w.Line("vp += count;");
                }
            }
        }
        if (KernelEmitter.HasActivation(node) && GemmEmitter.VectorActivation(node, "x", "v") is null)
        {
            w.Line("// The activation, over y once the sums are done.");
            using (w.Block($"for (int i = 0; i < {y.ElementCount}; i++)"))
            {
                w.Line("float v = y[i];");
                w.Line($"y[i] = {KernelEmitter.Act(node)};");
            }
        }
    }

    /// <summary>Entries of every N:M row: N per group of M columns, all the columns of a last group shorter than N.</summary>
    static int RowEntries(SparseConvFormat f, int columns)
    {
        int groups = (columns + f.M - 1) / f.M, tail = columns - (groups - 1) * f.M;
        return (groups - 1) * f.N + Math.Min(f.N, tail);
    }

    /// <summary>
    /// The loop over a row's entries: entry e's index read from its bits in the row's stream (pi), the column it names
    /// (unstructured: the running sum of the distances; N:M: its group's first column plus its position), and
    /// <c>src</c>, the tap's input for the output at <paramref name="at"/>; <paramref name="body"/> then uses the value pv[e].
    /// Padding entries (value 0) are summed like the others: rare, and a test would cost more than they do.
    /// </summary>
    static void EntryLoop(CodeWriter w, Geometry g, SparseConvFormat f, string at, Action body)
    {
        if (f.IsNOfM)
        {
            using (w.Block("for (int e = 0; e < count; e++)"))
            {
                w.Line($"ref float src = ref {U}.Add(ref {at}, {U}.Add(ref po, e));");
                body();
            }
            return;
        }
        int bits = f.IndexBits, perByte = 8 / bits, mask = (1 << bits) - 1;
        int byteShift = perByte == 4 ? 2 : perByte == 2 ? 1 : 0, bitShift = bits == 2 ? 1 : bits == 4 ? 2 : 3;
        string read = perByte == 1 ? $"{U}.Add(ref pi, e)" : $"({U}.Add(ref pi, e >> {byteShift}) >> ((e & {perByte - 1}) << {bitShift})) & {mask}";
        if (!f.IsNOfM) w.Line("int column = -1;");
        using (w.Block("for (int e = 0; e < count; e++)"))
        {
            string group = (f.N & (f.N - 1)) == 0 ? $"(e >> {Log2(f.N)} << {Log2(f.M)})" : $"(int)((uint)e / {f.N}) * {f.M}";
            w.Line(f.IsNOfM ? $"int column = {group} + ({read});" : $"column += {read};");
            string offset = g.Taps == 1 ? Expr.Times("column", g.Plane) : $"{U}.Add(ref ro, column)";
            w.Line($"ref float src = ref {U}.Add(ref {at}, {offset});");
            body();
        }
    }

    /// <summary>
    /// N:M: the row's entries' input offsets into po, once per row, so the tiles' loops do no decoding. Entry e is in
    /// group e / N, at its position (IndexBits bits from bit e·IndexBits of the row's stream); its offset is ro at that
    /// column. With AVX2 and M = 2N, 8 entries a step: their positions shifted out of one word, plus their groups'
    /// first columns, permute the 16 offsets of ro the step covers (two permutes and a blend on bit 3), as
    /// SparseGemvEmitter does with x; the entries past the last whole step one at a time.
    /// </summary>
    static void DecodeRow(CodeWriter w, SimdLevel simd, SparseConvFormat f, int perRow)
    {
        int bits = f.IndexBits, perByte = 8 / bits, mask = (1 << bits) - 1;
        int byteShift = perByte == 4 ? 2 : perByte == 2 ? 1 : 0, bitShift = bits == 2 ? 1 : bits == 4 ? 2 : 3;
        int steps = f.M == 2 * f.N && SimdLadder.Widths(simd, 256).Any(x => x.Bits == 256) ? perRow / 8 : 0;
        w.Line("int d = 0;");
        if (steps > 0)
        {
            using (w.Block($"if ({SimdWidth.V256.AcceleratedX86})"))
            {
                w.Line($"var shifts = Vector256.Create({string.Join(", ", Enumerable.Range(0, 8).Select(l => (l * bits) + "u"))});");
                w.Line($"var firsts = Vector256.Create({string.Join(", ", Enumerable.Range(0, 8).Select(l => (l / f.N * f.M).ToString(System.Globalization.CultureInfo.InvariantCulture)))});");
                using (w.Block($"for (; d < {steps * 8}; d += 8)"))
                {
                    string word = bits == 2 ? $"{U}.ReadUnaligned<ushort>(ref {U}.Add(ref pi, d >> 2))" : $"{U}.ReadUnaligned<uint>(ref {U}.Add(ref pi, d >> 1))";
                    w.Line($"var columns = (Avx2.ShiftRightLogicalVariable(Vector256.Create((uint){word}), shifts).AsInt32() & Vector256.Create({mask})) + firsts;");
                    w.Line($"ref int window = ref {U}.Add(ref ro, d * 2);");
                    w.Line($"var lo = Avx2.PermuteVar8x32(Vector256.LoadUnsafe(ref window), columns).AsSingle();");
                    w.Line($"var hi = Avx2.PermuteVar8x32(Vector256.LoadUnsafe(ref window, 8), columns).AsSingle();");
                    w.Line("Avx.BlendVariable(lo, hi, Avx2.ShiftLeftLogical(columns, 28).AsSingle()).AsInt32().StoreUnsafe(ref po, (nuint)d);");
                }
            }
        }
        string read = perByte == 1 ? $"{U}.Add(ref pi, d)" : $"({U}.Add(ref pi, d >> {byteShift}) >> ((d & {perByte - 1}) << {bitShift})) & {mask}";
        string group = f.N == 1 ? $"(d << {Log2(f.M)})" : (f.N & (f.N - 1)) == 0 ? $"(d >> {Log2(f.N)} << {Log2(f.M)})" : $"(int)((uint)d / {f.N}) * {f.M}";
        w.Line($"for (; d < count; d++) {U}.Add(ref po, d) = {U}.Add(ref ro, {group} + ({read}));");
    }

    static int Log2(int v) => v <= 1 ? 0 : 1 + Log2(v / 2);

    /// <summary>One group's input channels into rpad with zero borders, each channel <see cref="Geometry.Plane"/> floats and each row <see cref="Geometry.WP"/> (rpad is arena scratch: the borders are cleared each call).</summary>
    static void PadCopy(CodeWriter w, Geometry g, string xBase)
    {
        int pt = g.Pads[0], pl = g.Pads[1], pb = g.Pads[2], pr = g.Pads[3];
        w.Line(g.Padded
            ? $"// The input zero-padded: {pt} row(s) above, {pb} below, {pl} column(s) left, {pr} right of each channel{(g.Aligned ? $", rows {g.WP} floats apart" : "")}."
            : $"// The input copied, {(g.Pointwise ? $"channels {g.Plane}" : $"rows {g.WP}")} floats apart.");
        using (w.For("c", g.Cpg, out string c))
        {
            w.Line($"ref float plane = ref {KernelEmitter.At(U, "rpad", c, g.Plane)};");
            if (g.Padded) w.Line($"{U}.InitBlockUnaligned(ref {U}.As<float, byte>(ref plane), 0, {(long)g.Plane * 4});");
            using (w.For("ih", g.H, out string ih))
                w.Line($"{U}.CopyBlockUnaligned(ref {U}.As<float, byte>(ref {U}.Add(ref plane, {Expr.Plus(Expr.Times(Expr.Plus(ih, pt), g.WP), pl)})), ref {U}.As<float, byte>(ref {U}.Add(ref rx, {Expr.Plus(xBase, Expr.Times(Expr.Plus(Expr.Times(c, g.H), ih), g.W))})), {g.W * 4});");
        }
    }

    /// <summary>
    /// The output plane in tiles of up to <see cref="TileVectors"/>(l) vectors: along each row (the last vector of a row
    /// overlapping the one before it, the same values stored again), or several whole rows a tile when rows are short.
    /// </summary>
    static void EmitLevel(CodeWriter w, Geometry g, ArtifactNode node, SparseConvFormat f, SimdWidth l)
    {
        int nv = TileVectors(l);
        int width = l.Floats, stripsPerRow = (g.Columns + width - 1) / width;
        int Pos(int q) => Math.Min(q * width, g.Columns - width);
        if (stripsPerRow >= nv)
        {
            // N:M: tiles of as equal a size as the row's strips divide into (25 strips: 9, 9, 7), as a tile of one or
            // two vectors waits on the latency of its few multiply-adds, and costs nearly what a whole tile does.
            if (f.IsNOfM) nv = (stripsPerRow + (stripsPerRow + nv - 1) / nv - 1) / ((stripsPerRow + nv - 1) / nv);
            int fullTiles = g.Columns / width / nv;
            var full = Enumerable.Range(0, nv).Select(q => new Strip(0, q * width)).ToList();
            int restAt = Pos(fullTiles * nv);
            var rest = Enumerable.Range(fullTiles * nv, stripsPerRow - fullTiles * nv).Select(q => new Strip(0, Pos(q) - restAt)).ToList();
            using (w.For("oy", g.Rows, out string oy))
            {
                // No whole tile when the row is a little short of one (95 columns, 12 strips of 8): the rest covers it.
                if (fullTiles > 0)
                    using (w.BlockIf(fullTiles > 1, $"for (int n0 = 0; n0 < {fullTiles * nv * width}; n0 += {nv * width})"))
                        Tile(w, g, node, f, l, full, oy, fullTiles > 1 ? "n0" : "0");
                if (rest.Count > 0) Tile(w, g, node, f, l, rest, oy, CodeWriter.N(restAt));
            }
            return;
        }
        int rows = Math.Max(1, nv / stripsPerRow);
        List<Strip> Rows(int count) => [.. Enumerable.Range(0, count).SelectMany(dy => Enumerable.Range(0, stripsPerRow).Select(q => new Strip(dy, Pos(q))))];
        int fullRows = g.Rows / rows * rows;
        if (fullRows > 0)
            using (w.BlockIf(fullRows > rows, $"for (int oy = 0; oy < {fullRows}; oy += {rows})"))
                Tile(w, g, node, f, l, Rows(rows), fullRows > rows ? "oy" : "0", "0");
        if (fullRows < g.Rows) Tile(w, g, node, f, l, Rows(g.Rows - fullRows), CodeWriter.N(fullRows), "0");
    }

    /// <summary>One tile: its vectors start at the bias, take every entry of the row (broadcast weight × input vector), then the activation and the stores.</summary>
    static void Tile(CodeWriter w, Geometry g, ArtifactNode node, SparseConvFormat f, SimdWidth l, List<Strip> strips, string oy, string n0)
    {
        string v = l.V;
        var qs = Enumerable.Range(0, strips.Count).ToArray();
        using var tile = w.Block();
        w.Line($"ref float px = ref {KernelEmitter.At(U, "rp", Expr.Plus(Expr.Times(oy, g.RowStep), n0))};");
        w.Line($"ref float pt = ref {KernelEmitter.At(U, "py", Expr.Plus(Expr.Times(oy, g.Columns), n0))};");
        w.Line(string.Join(" ", qs.Select(q => $"var c{q} = {v}.Create(bias);")));
        EntryLoop(w, g, f, "px", () =>
        {
            w.Line($"var a = {v}.Create({U}.Add(ref pv, e));");
            foreach (int q in qs)
            {
                string b = $"{v}.LoadUnsafe(ref src, (nuint){CodeWriter.N((long)strips[q].Dy * g.RowStep + strips[q].Dx)})";
                w.Line(l.Fused ? $"c{q} = {v}.FusedMultiplyAdd(a, {b}, c{q});" : $"c{q} += a * {b};");
            }
        });
        if (KernelEmitter.HasActivation(node) && GemmEmitter.VectorActivation(node, v, "c") is not null)
            w.Line(string.Join(" ", qs.Select(q => $"c{q} = {GemmEmitter.VectorActivation(node, v, $"c{q}")};")));
        w.Line(string.Join(" ", qs.Select(q => $"{v}.StoreUnsafe(c{q}, ref pt, (nuint){CodeWriter.N((long)strips[q].Dy * g.Columns + strips[q].Dx)});")));
    }

    /// <summary>
    /// No SIMD (or rows narrower than a vector, or a horizontal stride): the output plane starts at the bias, then each
    /// entry in turn adds its weight times its tap's input to every output (the entries in the vector tiles' order).
    /// </summary>
    static void EmitScalar(CodeWriter w, Geometry g, ArtifactNode node, SparseConvFormat f)
    {
        w.Line($"for (int i = 0; i < {g.OH * g.OW}; i++) {U}.Add(ref py, i) = bias;");
        EntryLoop(w, g, f, "rp", () =>
        {
            w.Line($"float a = {U}.Add(ref pv, e);");
            using (w.For("oy", g.OH, out string oy))
            using (w.For("ox", g.OW, out string ox))
                w.Line($"{KernelEmitter.At(U, "py", Expr.Plus(Expr.Times(oy, g.OW), ox))} += a * {KernelEmitter.At(U, "src", Expr.Plus(Expr.Times(oy, g.RowStep), Expr.Times(ox, g.SW)))};");
        });
        if (KernelEmitter.HasActivation(node) && GemmEmitter.VectorActivation(node, "x", "v") is not null)
        {
            using (w.Block($"for (int i = 0; i < {g.OH * g.OW}; i++)"))
            {
                w.Line($"float v = {U}.Add(ref py, i);");
                w.Line($"{U}.Add(ref py, i) = {KernelEmitter.Act(node)};");
            }
        }
    }
}
