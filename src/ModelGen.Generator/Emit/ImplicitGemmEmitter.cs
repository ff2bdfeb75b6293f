using System;
using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Conv with a horizontal stride of 1 as an implicit GEMM (<see cref="ConvMethod.ImplicitGemm"/>): the same register tile
/// as <see cref="GemmEmitter"/> (MR output channels × NR vectors of output pixels, FMA, accumulators in registers over
/// every tap), but B's vectors are loaded straight from the input, zero-padded once into scratch, instead of from an
/// im2col patch matrix: with unit horizontal stride the inputs of a vector of neighbouring outputs are neighbours too.
/// The im2col wrote and read back kH·kW copies of the input, as much memory traffic as the multiply-adds of a layer
/// with few output channels (a stem), and its K × N rows sat a whole image apart. A tile covers NR vector strips of one
/// output row, or of several rows when a row has fewer strips; a row's last strip may overlap the one before it (the
/// same values stored twice), so every store is a whole vector inside the row. Input channels are summed in chunks
/// whose tile of input stays in L1, C carrying the sums between chunks.
/// </summary>
internal static class ImplicitGemmEmitter
{
    const string U = "Unsafe";

    /// <summary>Bytes of input a tile reads over one chunk of channels: within a 32 KiB L1 data cache (AMD Zen's) with the weights beside them.</summary>
    const int L1Budget = 16 * 1024;

    sealed record Geometry(int N, int C, int H, int W, int M, int OH, int OW, int KH, int KW, int SH, int DH, int DW, int[] Pads, int Group)
    {
        public int Cpg => C / Group;
        public int Mpg => M / Group;
        public int Taps => KH * KW;
        public int K => Cpg * Taps;
        public bool Padded => Pads.Any(p => p != 0);
        public int HP => H + Pads[0] + Pads[2];
        public int WP => W + Pads[1] + Pads[3];
        public int PlaneP => HP * WP;
    }

    /// <summary>A vector strip of a tile: the output row and column it starts at, relative to the tile's (oy, n0).</summary>
    readonly record struct Strip(int Dy, int Dx);

    public static void Emit(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor[] outputs, SimdLevel simd)
    {
        var x = inputs[0]; var wt = inputs[1]; var y = outputs[0];
        var win = KernelEmitter.Window(node);
        int[] k = win.Kernel, s = win.Strides, d = win.Dilations, p = win.Pads;
        if (s[1] != 1) throw new FormatException($"Conv '{node.Name}': the implicit GEMM needs a horizontal stride of 1");
        var g = new Geometry(x.Shape[0], x.Shape[1], x.Shape.Length == 4 ? x.Shape[2] : 1, x.Shape[x.Shape.Length - 1], wt.Shape[0],
            y.Shape.Length == 4 ? y.Shape[2] : 1, y.Shape[y.Shape.Length - 1], k[0], k[1], s[0], d[0], d[1], p, KernelEmitter.ConvOf(node).Group);
        bool hasBias = inputs.Length > 2;
        long scratch = ConvScratch.ImplicitGemmPaddedFloats(g.Cpg, g.H, g.W, p);
        if (outputs.Length != (scratch > 0 ? 2 : 1))
            throw new FormatException($"Conv '{node.Name}': {(scratch > 0 ? "the padded input scratch" : "no scratch")} expected after y");
        w.Line($"// Conv: y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ w{CodeWriter.Shape(wt.Shape)}{(hasBias ? " + b" : "")}; window {k[0]}x{k[1]}, stride {s[0]}x1, dilation {d[0]}x{d[1]}, pads {string.Join(",", p)}, group {g.Group}{KernelEmitter.ActName(node)}.");
        w.Line($"// Implicit GEMM: y[{g.Mpg}, {g.OH * g.OW}] = w[{g.Mpg}, {g.K}]·patches, each patch vector loaded from the input{(g.Padded ? $" zero-padded into y1 ({g.Cpg}x{g.HP}x{g.WP})" : "")}; no patch matrix.");
        using var method = KernelEmitter.OpenKernel(w, name, sig);
        var lengths = new List<(string, long)> { ("x", x.ElementCount), ("w", wt.ElementCount), ("y", y.ElementCount) };
        if (hasBias) lengths.Add(("b", g.M));
        if (scratch > 0) lengths.Add(("y1", scratch));
        KernelEmitter.CheckedRefs(w, [.. lengths], ("rx", "x"), ("rw", "w"), ("ry", "y"));
        if (hasBias) w.Line("ref float rbias = ref MemoryMarshal.GetReference(b);");
        if (scratch > 0) w.Line("ref float rp = ref MemoryMarshal.GetReference(y1);");
        using (w.For("image", g.N, out string image))
        using (w.For("grp", g.Group, out string grp))
        {
            string xBase = w.IntLocal("xBase", Expr.Times(Expr.Plus(Expr.Times(image, g.C), Expr.Times(grp, g.Cpg)), g.H * g.W));
            if (g.Padded) PadCopy(w, g, xBase);
            else w.Line($"ref float rp = ref {KernelEmitter.At(U, "rx", xBase)};");
            string mBase = w.IntLocal("mBase", Expr.Plus(Expr.Times(image, g.M), Expr.Times(grp, g.Mpg)));
            string wBase = w.IntLocal("wBase", Expr.Times(grp, g.Mpg * g.K));
            string bBase = hasBias ? w.IntLocal("bBase", Expr.Times(grp, g.Mpg)) : "0";
            var levels = SimdLadder.Widths(simd).Where(l => g.OW >= l.Floats).ToList();
            SimdLadder.Chain(w, levels, l => EmitLevel(w, g, node, l, hasBias, mBase, wBase, bBase), () => EmitScalar(w, g, node, hasBias, mBase, wBase, bBase));
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

    /// <summary>One group's input channels into rp with zero borders: the borders cleared, the rows copied (rp is arena scratch, shared).</summary>
    static void PadCopy(CodeWriter w, Geometry g, string xBase)
    {
        int pt = g.Pads[0], pl = g.Pads[1], pb = g.Pads[2], pr = g.Pads[3];
        w.Line($"// The input zero-padded: {pt} row(s) above, {pb} below, {pl} column(s) left, {pr} right of each channel.");
        using (w.For("c", g.Cpg, out string c))
        {
            w.Line($"ref float plane = ref {KernelEmitter.At(U, "rp", c, g.PlaneP)};");
            if (pt > 0) w.Line($"{U}.InitBlockUnaligned(ref {U}.As<float, byte>(ref plane), 0, {(long)pt * g.WP * 4});");
            if (pb > 0) w.Line($"{U}.InitBlockUnaligned(ref {U}.As<float, byte>(ref {U}.Add(ref plane, {(long)(pt + g.H) * g.WP})), 0, {(long)pb * g.WP * 4});");
            using (w.For("ih", g.H, out string ih))
            {
                w.Line($"ref float row = ref {KernelEmitter.At(U, "plane", Expr.Times(Expr.Plus(ih, pt), g.WP))};");
                if (pl > 0) w.Line($"{U}.InitBlockUnaligned(ref {U}.As<float, byte>(ref row), 0, {pl * 4});");
                w.Line($"{U}.CopyBlockUnaligned(ref {U}.As<float, byte>(ref {KernelEmitter.At(U, "row", pl)}), ref {U}.As<float, byte>(ref {U}.Add(ref rx, {Expr.Plus(xBase, Expr.Times(Expr.Plus(Expr.Times(c, g.H), ih), g.W))})), {g.W * 4});");
                if (pr > 0) w.Line($"{U}.InitBlockUnaligned(ref {U}.As<float, byte>(ref {U}.Add(ref row, {pl + g.W})), 0, {pr * 4});");
            }
        }
    }

    /// <summary>
    /// Accumulators a tile may keep (as GemmEmitter's): 32 vector registers with AVX-512, 16 otherwise, the rest for
    /// the loaded operands.
    /// </summary>
    static int MaxAccumulators(SimdWidth l) => l.Bits == 512 ? 24 : 12;

    static void EmitLevel(CodeWriter w, Geometry g, ArtifactNode node, SimdWidth l, bool hasBias, string mBase, string wBase, string bBase)
    {
        int width = l.Floats;
        // Output channels in blocks of at most MR (4, or 6 with AVX-512), as equal as they divide: 9 channels are three blocks of 3.
        int mrMax = width == 16 ? 6 : 4;
        int blocks = (g.Mpg + mrMax - 1) / mrMax;
        int mr = (g.Mpg + blocks - 1) / blocks;
        int nv = Math.Max(1, MaxAccumulators(l) / mr);
        int stripsPerRow = (g.OW + width - 1) / width;
        int Pos(int q) => Math.Min(q * width, g.OW - width);
        // Input channels per chunk: the tile's input vectors over a chunk (one per tap and strip) within L1.
        int tileStrips = Math.Min(nv, stripsPerRow >= nv ? nv : nv / stripsPerRow * stripsPerRow);
        int perChannel = g.Taps * tileStrips * width * 4;
        int chunk = Math.Max(1, Math.Min(g.Cpg, L1Budget / perChannel));
        bool chunked = chunk < g.Cpg;
        if (chunked) w.Line($"// Input channels in chunks of {chunk}: a tile's input vectors over a chunk stay in L1 while every block of output channels reads them.");
        if (stripsPerRow >= nv)
        {
            // Tiles of NR strips along each row, then the strips left (the last one overlapping).
            int fullTiles = g.OW / width / nv;
            var full = Enumerable.Range(0, nv).Select(q => new Strip(0, q * width)).ToList();
            // The strips left start at the first one's column (the last may overlap a full tile's).
            int restAt = Pos(fullTiles * nv);
            var rest = Enumerable.Range(fullTiles * nv, stripsPerRow - fullTiles * nv).Select(q => new Strip(0, Pos(q) - restAt)).ToList();
            using (w.For("oy", g.OH, out string oy))
            {
                if (fullTiles > 0)
                    using (w.BlockIf(fullTiles > 1, $"for (int n0 = 0; n0 < {fullTiles * nv * width}; n0 += {nv * width})"))
                        Chunks(w, g, node, l, hasBias, mBase, wBase, bBase, full, oy, fullTiles > 1 ? "n0" : "0", mr, chunk);
                if (rest.Count > 0) Chunks(w, g, node, l, hasBias, mBase, wBase, bBase, rest, oy, CodeWriter.N(restAt), mr, chunk);
            }
        }
        else
        {
            // A row has fewer strips than a tile holds: a tile covers R whole rows.
            int rows = Math.Max(1, nv / stripsPerRow);
            List<Strip> Rows(int count) => [.. Enumerable.Range(0, count).SelectMany(dy => Enumerable.Range(0, stripsPerRow).Select(q => new Strip(dy, Pos(q))))];
            int fullRows = g.OH / rows * rows;
            if (fullRows > 0)
                using (w.BlockIf(fullRows > rows, $"for (int oy = 0; oy < {fullRows}; oy += {rows})"))
                    Chunks(w, g, node, l, hasBias, mBase, wBase, bBase, Rows(rows), fullRows > rows ? "oy" : "0", "0", mr, chunk);
            if (fullRows < g.OH) Chunks(w, g, node, l, hasBias, mBase, wBase, bBase, Rows(g.OH - fullRows), CodeWriter.N(fullRows), "0", mr, chunk);
        }
    }

    /// <summary>The chunks of input channels (a loop when there are several), and in each every block of output channels.</summary>
    static void Chunks(CodeWriter w, Geometry g, ArtifactNode node, SimdWidth l, bool hasBias, string mBase, string wBase, string bBase, List<Strip> strips, string oy, string n0, int mr, int chunk)
    {
        bool chunked = chunk < g.Cpg;
        using (w.BlockIf(chunked, $"for (int c0 = 0; c0 < {g.Cpg}; c0 += {chunk})"))
        {
            if (chunked) w.Line($"int cEnd = Math.Min(c0 + {chunk}, {g.Cpg});");
            int fullBlocks = g.Mpg / mr;
            using (w.BlockIf(fullBlocks > 1, $"for (int m0 = 0; m0 < {fullBlocks * mr}; m0 += {mr})"))
                Tile(w, g, node, l, hasBias, mBase, wBase, bBase, strips, oy, n0, fullBlocks > 1 ? "m0" : "0", mr, chunked);
            if (g.Mpg % mr != 0) Tile(w, g, node, l, hasBias, mBase, wBase, bBase, strips, oy, n0, CodeWriter.N(fullBlocks * mr), g.Mpg % mr, chunked);
        }
    }

    /// <summary>One tile: <paramref name="rows"/> output channels from m0 × the strips, summed over the chunk's (or every) input channel.</summary>
    static void Tile(CodeWriter w, Geometry g, ArtifactNode node, SimdWidth l, bool hasBias, string mBase, string wBase, string bBase, List<Strip> strips, string oy, string n0, string m0, int rows, bool chunked)
    {
        string v = l.V;
        int plane = g.OH * g.OW;
        var rs = Enumerable.Range(0, rows).ToArray();
        var qs = Enumerable.Range(0, strips.Count).ToArray();
        using var tile = w.Block();
        string c0 = chunked ? "c0" : "0";
        w.Line($"ref float py = ref {U}.Add(ref ry, {Expr.Plus(Expr.Times(Expr.Plus(Expr.Times(Expr.Plus(mBase, m0), g.OH), oy), g.OW), n0)});");
        string Out(int r, int q) => "(nuint)" + CodeWriter.N((long)r * plane + strips[q].Dy * g.OW + strips[q].Dx);
        string Bias(int r) => hasBias ? $"{v}.Create({U}.Add(ref rbias, {Expr.Sum(bBase, m0, CodeWriter.N(r))}))" : $"{v}<float>.Zero";
        foreach (int r in rs)
            w.Line(string.Join(" ", qs.Select(q => chunked
                ? $"var c{r}_{q} = c0 == 0 ? {Bias(r)} : {v}.LoadUnsafe(ref py, {Out(r, q)});"
                : $"var c{r}_{q} = {Bias(r)};")));
        w.Line($"ref float px = ref {U}.Add(ref rp, {Expr.Plus(Expr.Times(c0, g.PlaneP), Expr.Plus(Expr.Times(oy, g.SH * g.WP), n0))});");
        w.Line($"ref float pw = ref {U}.Add(ref rw, {Expr.Plus(wBase, Expr.Plus(Expr.Times(m0, g.K), Expr.Times(c0, g.Taps)))});");
        bool channelLoop = chunked || g.Cpg > 1;
        using (w.BlockIf(channelLoop, chunked ? "for (int c = c0; c < cEnd; c++)" : $"for (int c = 0; c < {g.Cpg}; c++)"))
        {
            using (w.BlockIf(g.KH > 1, $"for (int i = 0; i < {g.KH}; i++)"))
            {
                w.Line(g.KH > 1 ? $"ref float row = ref {U}.Add(ref px, {Expr.Times("i", g.DH * g.WP)});" : "ref float row = ref px;");
                w.Line(g.KH > 1 ? $"ref float wr = ref {U}.Add(ref pw, {Expr.Times("i", g.KW)});" : "ref float wr = ref pw;");
                for (int j = 0; j < g.KW; j++)
                {
                    // A block per tap: its operands' locals end with it.
                    using var tap = w.Block();
                    string B(int q) => $"{v}.LoadUnsafe(ref row, (nuint){CodeWriter.N((long)strips[q].Dy * g.SH * g.WP + strips[q].Dx + j * g.DW)})";
                    string A(int r) => $"{v}.Create({U}.Add(ref wr, {CodeWriter.N((long)r * g.K + j)}))";
                    string Fma(int r, int q, string a, string b) => l.Fused ? $"c{r}_{q} = {v}.FusedMultiplyAdd({a}, {b}, c{r}_{q});" : $"c{r}_{q} += {a} * {b};";
                    // Whichever operand set is smaller is loaded first and held: the accumulators, it and one of the other fit 16 registers.
                    if (qs.Length <= rs.Length)
                    {
                        w.Line(string.Join(" ", qs.Select(q => $"var b{q} = {B(q)};")));
                        foreach (int r in rs)
                        {
                            w.Line($"var a{r} = {A(r)};");
                            w.Line(string.Join(" ", qs.Select(q => Fma(r, q, $"a{r}", $"b{q}"))));
                        }
                    }
                    else
                    {
                        w.Line(string.Join(" ", rs.Select(r => $"var a{r} = {A(r)};")));
                        foreach (int q in qs)
                        {
                            w.Line($"var b{q} = {B(q)};");
                            w.Line(string.Join(" ", rs.Select(r => Fma(r, q, $"a{r}", $"b{q}"))));
                        }
                    }
                }
            }
            if (channelLoop)
            {
                w.Line($"px = ref {U}.Add(ref px, {g.PlaneP});");
                w.Line($"pw = ref {U}.Add(ref pw, {g.Taps});");
            }
        }
        bool activate = KernelEmitter.HasActivation(node) && GemmEmitter.VectorActivation(node, v, "c") is not null;
        using (w.BlockIf(activate && chunked, $"if (cEnd == {g.Cpg})"))
            if (activate)
                foreach (int r in rs)
                    w.Line(string.Join(" ", qs.Select(q => $"c{r}_{q} = {GemmEmitter.VectorActivation(node, v, $"c{r}_{q}")};")));
        foreach (int r in rs)
            w.Line(string.Join(" ", qs.Select(q => $"{v}.StoreUnsafe(c{r}_{q}, ref py, {Out(r, q)});")));
    }

    /// <summary>No SIMD (or a row narrower than any vector): each output a dot product over the padded input.</summary>
    static void EmitScalar(CodeWriter w, Geometry g, ArtifactNode node, bool hasBias, string mBase, string wBase, string bBase)
    {
        bool vectorActivation = GemmEmitter.VectorActivation(node, "x", "v") is not null;
        using (w.For("m", g.Mpg, out string m))
        using (w.For("oy", g.OH, out string oy))
        using (w.For("ox", g.OW, out string ox))
        {
            w.Line($"float sum = {(hasBias ? KernelEmitter.At(U, "rbias", Expr.Plus(bBase, m)) : "0f")};");
            w.Line($"ref float pw = ref {KernelEmitter.At(U, "rw", Expr.Plus(wBase, Expr.Times(m, g.K)))};");
            using (w.For("c", g.Cpg, out string c))
            using (w.For("i", g.KH, out string i))
            using (w.For("j", g.KW, out string j))
            {
                string weight = Expr.Plus(Expr.Times(Expr.Plus(Expr.Times(c, g.KH), i), g.KW), j);
                string input = Expr.Sum(Expr.Times(c, g.PlaneP), Expr.Times(Expr.Plus(Expr.Times(oy, g.SH), Expr.Times(i, g.DH)), g.WP), ox, Expr.Times(j, g.DW));
                w.Line($"sum += {KernelEmitter.At(U, "pw", weight)} * {KernelEmitter.At(U, "rp", input)};");
            }
            w.Line("float v = sum;");
            w.Line($"{U}.Add(ref ry, {Expr.Sum(Expr.Times(Expr.Plus(mBase, m), g.OH * g.OW), Expr.Times(oy, g.OW), ox)}) = {(vectorActivation && KernelEmitter.HasActivation(node) ? KernelEmitter.Act(node) : "v")};");
        }
    }
}
