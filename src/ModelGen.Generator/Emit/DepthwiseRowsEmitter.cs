using System;
using System.Collections.Generic;
using System.Linq;
using ModelGen.Artifact;

namespace ModelGen.Generator.Emit;

/// <summary>
/// Depthwise Conv (one filter per channel, no dilation, horizontal stride 1 or 2) straight from the
/// input, with no padded copy: each output row is cut into vector-wide strips, and each strip walks
/// down the plane with rolling accumulators. An input row is loaded once per strip (kW tap vectors:
/// plain loads for stride 1, the even lanes of two loads for stride 2) and added into every output
/// row it reaches (⌈kH/sH⌉ accumulators). Lanes that fall in the padding are zeroed by a constant
/// mask; loads that would leave the plane (first and last rows) are moved inside it and their lanes
/// shuffled back, so no read goes past the tensor. Rows and strips at the plane's edges are emitted
/// one by one with everything known; the rest are loops.
/// </summary>
internal static class DepthwiseRowsEmitter
{
    const string U = "Unsafe";
    const string Intrinsics = "";

    internal sealed class Shape
    {
        /// <summary>Output planes (N·M), output channels M, output channels per input channel.</summary>
        public int Planes, M, Multiplier;
        public int H, W, OH, OW, KH, KW, SH, SW, PT, PL;
        public int Plane => H * W;
        public int Accumulators => (KH + SH - 1) / SH;
        public int Taps => KH * KW;
    }

    /// <summary>The strips' view of a depthwise node, or null when it does not suit them (dilation, strides, rank).</summary>
    internal static Shape? Geometry(ArtifactNode node, ArtifactTensor x, ArtifactTensor y)
    {
        if (x.Shape.Length != 4 || y.Shape.Length != 4 || y.Shape[1] % x.Shape[1] != 0) return null;
        int[] k = KernelEmitter.Window(node).Kernel, s = KernelEmitter.Window(node).Strides, d = KernelEmitter.Window(node).Dilations, p = KernelEmitter.Window(node).Pads;
        if (d[0] != 1 || d[1] != 1 || s[1] is not (1 or 2)) return null;
        return new Shape
        {
            Planes = y.Shape[0] * y.Shape[1], M = y.Shape[1], Multiplier = y.Shape[1] / x.Shape[1], H = x.Shape[2], W = x.Shape[3], OH = y.Shape[2], OW = y.Shape[3],
            KH = k[0], KW = k[1], SH = s[0], SW = s[1], PT = p[0], PL = p[1],
        };
    }

    /// <summary>Writes the float32 kernel and returns true, or returns false when the shape does not suit it.</summary>
    public static bool TryEmit(CodeWriter w, ArtifactNode node, string name, string sig, ArtifactTensor[] inputs, ArtifactTensor[] outputs, SimdLevel simd)
    {
        var x = inputs[0]; var wt = inputs[1]; var y = outputs[0];
        if (outputs.Length != 1 || Geometry(node, x, y) is not { } g) return false;
        int[] p = KernelEmitter.Window(node).Pads;
        bool hasBias = inputs.Length > 2;
        w.Line($"// Conv (depthwise): y{CodeWriter.Shape(y.Shape)} = x{CodeWriter.Shape(x.Shape)} ⋆ w{CodeWriter.Shape(wt.Shape)}{(hasBias ? " + b" : "")}, {Filters(g)}; stride {g.SH}x{g.SW}, pads {string.Join(",", p)}{KernelEmitter.ActName(node)}.");
        w.Line($"// Per channel, each output row in vector strips; a strip walks down the plane keeping {g.Accumulators} output row(s) in");
        w.Line("// flight, and each input row it loads is added into all of them. Lanes in the padding are masked to zero.");
        using (KernelEmitter.OpenKernel(w, name, sig))
        {
            var lengths = new List<(string, long)> { ("x", x.ElementCount), ("w", wt.ElementCount), ("y", y.ElementCount) };
            if (hasBias) lengths.Add(("b", g.M));
            KernelEmitter.CheckedRefs(w, lengths.ToArray(), ("rx", "x"), ("rw", "w"), ("ry", "y"));
            EmitBody(w, g, simd, new FloatRows(node, hasBias));
        }
        return true;
    }

    internal static string Filters(Shape g) =>
        $"{(g.Multiplier == 1 ? "one" : CodeWriter.N(g.Multiplier))} {g.KH}x{g.KW} filter{(g.Multiplier == 1 ? "" : "s")} per input channel";

    /// <summary>
    /// What a kernel built on the strips supplies: per plane, the input plane <c>xp</c> (float32), the
    /// weights <c>w0…</c> and the accumulators' start <c>start</c>; and how a finished row is stored.
    /// </summary>
    internal abstract class Flavor
    {
        /// <summary>Inside the plane loop (<c>plane</c> and <c>ch</c> defined): xp, w0… and start as vectors of v, or as floats when v is null.</summary>
        public abstract void BeginPlane(CodeWriter w, Shape g, string? v);

        /// <summary>Stores accumulator 0, the output row's columns from <paramref name="at"/> (within the plane); partial: only the first lanes.</summary>
        public abstract void Store(CodeWriter w, Shape g, SimdWidth l, string at, int lanes, bool partial);

        /// <summary>Stores the float <c>sum</c> of one output at <paramref name="at"/> (within the plane).</summary>
        public abstract void StoreScalar(CodeWriter w, Shape g, string at);

        /// <summary>
        /// The float32 vector of v at element <paramref name="offset"/> (an int expression; constant: a literal) of the plane,
        /// or past <paramref name="at"/>, a ref to an element of the plane (see <see cref="DeclareRow"/>).
        /// </summary>
        public virtual string Load(string v, int width, string offset, bool constant, string? at = null) =>
            constant ? $"{v}.LoadUnsafe(ref {at ?? "xp"}, {offset})" : $"{v}.LoadUnsafe(ref {at ?? "xp"}, (nuint)({offset}))";

        /// <summary>
        /// Declares <paramref name="name"/>, a ref to element <paramref name="offset"/> of the plane, for loads relative to it:
        /// a row's loads are then a register plus a constant, with no index arithmetic per load.
        /// </summary>
        public virtual void DeclareRow(CodeWriter w, string name, string offset) => w.Line($"ref float {name} = ref {U}.Add(ref xp, {offset});");

        /// <summary>The float32 value at element <paramref name="index"/> of the plane.</summary>
        public virtual string LoadScalar(string index) => $"{U}.Add(ref xp, {index})";

        /// <summary>
        /// A stride-2 tap, lane e = element offset + 2e of the plane (elements offset … offset + 2·width − 1 are inside it),
        /// in fewer instructions than two loads and a permute; null: the strip composes it so.
        /// </summary>
        public virtual string? LoadEven(string v, int width, string offset, bool constant, string? at = null) => null;
    }

    sealed class FloatRows(ArtifactNode node, bool hasBias) : Flavor
    {
        public override void BeginPlane(CodeWriter w, Shape g, string? v)
        {
            w.Line($"ref float xp = ref {U}.Add(ref rx, {(g.Multiplier == 1 ? "plane" : $"plane / {g.Multiplier}")} * {g.Plane});");
            w.Line($"ref float yp = ref {U}.Add(ref ry, plane * {g.OH * g.OW});");
            w.Line($"ref float wp = ref {U}.Add(ref rw, ch * {g.Taps});");
            for (int t = 0; t < g.Taps; t += g.KW)
                w.Line(string.Join(" ", Enumerable.Range(t, g.KW).Select(i => v is null ? $"float w{i} = {U}.Add(ref wp, {i});" : $"var w{i} = {v}.Create({U}.Add(ref wp, {i}));")));
            string b = hasBias ? "b[ch]" : "0f";
            w.Line(v is null ? $"float start = {b};" : $"var start = {(hasBias ? $"{v}.Create({b})" : $"{v}<float>.Zero")};");
        }

        public override void Store(CodeWriter w, Shape g, SimdWidth l, string at, int lanes, bool partial)
        {
            string v = l.V;
            string? value = GemmEmitter.VectorActivation(node, v, "acc0");
            w.Line($"var done = {value ?? "acc0"};");
            if (!partial) w.Line($"{v}.StoreUnsafe(done, ref yp, (nuint)({at}));"); // a narrow row's spare lanes land on the next row, written later
            else StorePrefix(w, "done", l.Floats, lanes, at);
            if (value is null)
                w.Line($"for (int e = 0; e < {lanes}; e++) {{ float v = {U}.Add(ref yp, {at} + e); {U}.Add(ref yp, {at} + e) = {KernelEmitter.Act(node)}; }}");
        }

        public override void StoreScalar(CodeWriter w, Shape g, string at)
        {
            w.Line("float v = sum;");
            w.Line($"{U}.Add(ref yp, {at}) = {KernelEmitter.Act(node)};");
        }
    }

    /// <summary>The kernel's body (inside its method, after the span checks): one loop over the planes per SIMD level, then scalar.</summary>
    internal static void EmitBody(CodeWriter w, Shape g, SimdLevel simd, Flavor flavor)
    {
        // A width is worth it when a row fills more than half a vector, and it needs a plane at least a
        // vector long (the loads moved inside the plane).
        var widths = SimdLadder.Widths(simd).Where(l => 2 * g.OW > l.Floats && g.Plane >= l.Floats).ToList();
        SimdLadder.Chain(w, widths, l => EmitLevel(w, g, l, flavor), () => EmitScalar(w, g, flavor));
    }

    static void EmitLevel(CodeWriter w, Shape g, SimdWidth l, Flavor flavor)
    {
        using (w.Block($"for (int plane = 0; plane < {g.Planes}; plane++)"))
        {
            w.Line($"int ch = plane % {g.M};");
            flavor.BeginPlane(w, g, l.V);

            // Strips: whole vectors from the left, and a last one ending at the row's end (overlapping the one
            // before it) when OW is not a multiple of the width; a row narrower than a vector is one strip.
            int width = l.Floats;
            var starts = new List<int>();
            if (g.OW <= width) starts.Add(0);
            else
            {
                for (int c0 = 0; c0 + width <= g.OW; c0 += width) starts.Add(c0);
                if (g.OW % width != 0) starts.Add(g.OW - width);
            }
            int lanes = Math.Min(width, g.OW);
            // Interior strips (every tap's loads inside the row, no lane in the padding) share one loop.
            var interior = starts.Where(c0 => c0 % width == 0 && Interior(g, c0, width)).ToList();
            bool loop = interior.Count >= 2 && interior.Last() - interior.First() == (interior.Count - 1) * width;
            foreach (int c0 in starts)
            {
                if (loop && interior.Contains(c0))
                {
                    if (c0 != interior[0]) continue;
                    using (w.Block($"for (int c0 = {interior[0]}; c0 <= {interior.Last()}; c0 += {width})"))
                    {
                        EmitStrip(w, flavor, g, l, null, lanes);
                    }
                }
                else
                {
                    w.Line($"// Columns {c0}..{c0 + lanes - 1}.");
                    using (w.Block())
                    {
                        EmitStrip(w, flavor, g, l, c0, lanes);
                    }
                }
            }
        }
    }

    /// <summary>Every tap of the strip at c0 reads inside the row, with no lane in the padding.</summary>
    static bool Interior(Shape g, int c0, int width)
    {
        int span = g.SW == 1 ? width : 2 * width;
        for (int kw = 0; kw < g.KW; kw++)
        {
            int q = g.SW * c0 + kw - g.PL;
            if (q < 0 || q + span > g.W) return false;
        }
        return true;
    }

    /// <summary>One strip (columns c0.. of every output row; c0 null: the loop variable c0) down the plane.</summary>
    static void EmitStrip(CodeWriter w, Flavor flavor, Shape g, SimdWidth l, int? c0, int lanes)
    {
        int a = g.Accumulators;
        w.Line($"{l.V}<float> {string.Join(", ", Enumerable.Range(0, a).Select(j => $"acc{j} = start"))};");
        // Rows with the same code (all input rows inside, every load inside the plane, every output row
        // they reach there) form the loop; the others are written out.
        var regular = Enumerable.Range(0, g.OH).Select(oy => Regular(g, l, c0, lanes, oy)).ToArray();
        int from = 1, to = 1, bestFrom = 1, bestTo = 1;
        for (int oy = 1; oy <= g.OH; oy++)
        {
            if (oy < g.OH && regular[oy]) { to = oy + 1; continue; }
            if (to - from > bestTo - bestFrom) { bestFrom = from; bestTo = to; }
            from = to = oy + 1;
        }
        if (bestTo - bestFrom < 2) bestFrom = bestTo = g.OH;
        for (int oy = 0; oy < bestFrom; oy++) EmitRow(w, flavor, g, l, c0, lanes, oy);
        if (bestTo > bestFrom)
        {
            using (w.Block($"for (int oy = {bestFrom}; oy < {bestTo}; oy++)"))
            {
                EmitRow(w, flavor, g, l, c0, lanes, null);
            }
        }
        for (int oy = bestTo; oy < g.OH; oy++) EmitRow(w, flavor, g, l, c0, lanes, oy);
    }

    /// <summary>The input rows first read for output row oy, as offsets r: input row oy·sH − pT + r.</summary>
    static int FirstNewRow(Shape g, int? oy) => oy == 0 ? 0 : Math.Max(0, g.KH - g.SH);

    static bool Regular(Shape g, SimdWidth l, int? c0, int lanes, int oy)
    {
        if (oy == 0) return false;
        if (lanes < l.Floats && oy == g.OH - 1) return false; // the last row is stored in parts
        for (int r = FirstNewRow(g, oy); r < g.KH; r++)
        {
            int iy = oy * g.SH - g.PT + r;
            if (iy < 0 || iy >= g.H) return false;
            for (int j = 0; j < g.Accumulators; j++)
                if (r - j * g.SH is var kh && kh >= 0 && kh < g.KH && oy + j >= g.OH) return false;
            if (c0 is int c)
                for (int kw = 0; kw < g.KW; kw++)
                {
                    int q = iy * g.W + g.SW * c + kw - g.PL;
                    if (q < 0 || q + (g.SW == 1 ? l.Floats : 2 * l.Floats) > g.Plane) return false;
                }
        }
        return true;
    }

    /// <summary>
    /// Output row oy (null: the loop variable) of the strip: the input rows it reads first, added into
    /// every accumulator they reach; then accumulator 0 (row oy, now complete) stored and the rest rolled.
    /// </summary>
    static void EmitRow(CodeWriter w, Flavor flavor, Shape g, SimdWidth l, int? c0, int lanes, int? oy)
    {
        string v = l.V;
        int a = g.Accumulators;
        if (oy is int row) w.Line($"// Output row {row}.");
        using (w.Block())
        {
            for (int r = FirstNewRow(g, oy); r < g.KH; r++)
            {
                int? iy = oy * g.SH - g.PT + r;
                if (iy is int i && (i < 0 || i >= g.H)) continue; // a padding row: nothing to add
                var reach = new List<(int J, int Kh)>();
                for (int j = 0; j < a; j++)
                {
                    int kh = r - j * g.SH;
                    if (kh >= 0 && kh < g.KH && (oy is not int o || o + j < g.OH)) reach.Add((j, kh));
                }
                if (reach.Count == 0) continue;
                int rowStart = (r - g.PT) * g.W;
                if (oy is null) flavor.DeclareRow(w, $"xr{r}", $"oy * {g.SH * g.W}{(rowStart == 0 ? "" : rowStart > 0 ? $" + {rowStart}" : $" - {-rowStart}")}");
                for (int kw = 0; kw < g.KW; kw++) w.Line($"var t{r}_{kw} = {Tap(flavor, g, l, c0, lanes, oy, r, kw)};");
                foreach (var (j, kh) in reach)
                    for (int kw = 0; kw < g.KW; kw++)
                    {
                        string weight = $"w{kh * g.KW + kw}", tap = $"t{r}_{kw}";
                        w.Line(l.Fused ? $"acc{j} = {v}.FusedMultiplyAdd({weight}, {tap}, acc{j});" : $"acc{j} += {weight} * {tap};");
                    }
            }
            string at = $"{(oy is int o2 ? CodeWriter.N((long)o2 * g.OW) : $"oy * {g.OW}")}{(c0 is int c ? (c == 0 ? "" : $" + {c}") : " + c0")}";
            flavor.Store(w, g, l, at, lanes, partial: lanes < l.Floats && oy == g.OH - 1);
            if (a > 1) w.Line(string.Join(" ", Enumerable.Range(0, a - 1).Select(j => $"acc{j} = acc{j + 1};")) + $" acc{a - 1} = start;");
            else w.Line("acc0 = start;");
        }
    }

    /// <summary>
    /// The kW tap vector of input row oy·sH − pT + r for the strip: lane e holds input column
    /// sW·(c0 + e) + kw − pL, or zero where that column is padding.
    /// </summary>
    static string Tap(Flavor flavor, Shape g, SimdWidth l, int? c0, int lanes, int? oy, int r, int kw)
    {
        string v = l.V;
        int width = l.Floats;
        int? q = oy is int o && c0 is int c ? (o * g.SH - g.PT + r) * g.W + g.SW * c + kw - g.PL : null;
        string QExpr(int extra)
        {
            string rowPart = oy is int o1 ? CodeWriter.N((long)(o1 * g.SH - g.PT + r) * g.W) : $"oy * {g.SH * g.W} + {(r - g.PT) * g.W}";
            string colPart = c0 is int c1 ? CodeWriter.N(g.SW * c1 + kw - g.PL + extra) : $"{(g.SW == 1 ? "c0" : "2 * c0")} + {kw - g.PL + extra}";
            return $"{rowPart} + {colPart}";
        }
        // In the loop over rows, loads are relative to the row's ref xr{r} (declared by EmitRow): constant columns
        // become constant offsets (a negative one through Unsafe.Add: the element is still inside the plane).
        string rowRef = $"xr{r}";
        string ColumnExpr(int extra) => $"{(g.SW == 1 ? "c0" : "2 * c0")} + {kw - g.PL + extra}";
        string Load(int extra)
        {
            if (oy is null && c0 is int cc)
            {
                int col = g.SW * cc + kw - g.PL + extra;
                return col >= 0 ? flavor.Load(v, width, CodeWriter.N(col), constant: true, at: rowRef)
                    : flavor.Load(v, width, "0", constant: true, at: $"{U}.Add(ref {rowRef}, {col})");
            }
            if (oy is null) return flavor.Load(v, width, ColumnExpr(extra), constant: false, at: rowRef);
            if (q is not int at) return flavor.Load(v, width, QExpr(extra), constant: false);
            at += extra;
            if (at >= 0 && at + width <= g.Plane) return flavor.Load(v, width, CodeWriter.N(at), constant: true);
            if (at + width <= 0 || at >= g.Plane) return $"{v}<float>.Zero";
            // The load would leave the plane: load the vector inside it and move the lanes back.
            int inside = at < 0 ? 0 : g.Plane - width;
            var index = Enumerable.Range(0, width).Select(e => at + e - inside).Select(i => i >= 0 && i < width ? i : width);
            return $"{v}.Shuffle({flavor.Load(v, width, CodeWriter.N(inside), constant: true)}, {v}.Create({string.Join(", ", index)}))";
        }
        string? EvenLoad()
        {
            if (oy is null && c0 is int cc)
            {
                int col = g.SW * cc + kw - g.PL;
                return col >= 0 ? flavor.LoadEven(v, width, CodeWriter.N(col), constant: true, at: rowRef)
                    : flavor.LoadEven(v, width, "0", constant: true, at: $"{U}.Add(ref {rowRef}, {col})");
            }
            if (oy is null) return flavor.LoadEven(v, width, ColumnExpr(0), constant: false, at: rowRef);
            return q is not int from ? flavor.LoadEven(v, width, QExpr(0), constant: false)
                : from >= 0 && from + 2 * width <= g.Plane ? flavor.LoadEven(v, width, CodeWriter.N(from), constant: true) : null;
        }
        string tap = g.SW == 1 ? Load(0) : EvenLoad() ?? KernelEmitter.EvenLanes(v, width, Load(0), Load(width));
        if (c0 is not int c2) return tap;
        var keep = Enumerable.Range(0, width).Select(e => e >= lanes || (uint)(g.SW * (c2 + e) + kw - g.PL) < (uint)g.W).ToArray();
        if (keep.All(k => k)) return tap;
        return $"{v}.BitwiseAnd({tap}, {v}.AsSingle({v}.Create({string.Join(", ", keep.Select(k => k ? "-1" : "0"))})))";
    }

    /// <summary>Stores the first count lanes of a vector: halves while they fit, then single elements.</summary>
    internal static void StorePrefix(CodeWriter w, string value, int width, int count, string at)
    {
        string v = Intrinsics + "Vector" + (width * 32);
        if (count == 0) return;
        if (count == width) { w.Line($"{v}.StoreUnsafe({value}, ref yp, (nuint)({at}));"); return; }
        if (width == 4)
        {
            for (int e = 0; e < count; e++) w.Line($"{U}.Add(ref yp, {at} + {e}) = {v}.GetElement({value}, {e});");
            return;
        }
        int half = width / 2;
        StorePrefix(w, $"{v}.GetLower({value})", half, Math.Min(count, half), at);
        if (count > half) StorePrefix(w, $"{v}.GetUpper({value})", half, count - half, $"{at} + {half}");
    }

    static void EmitScalar(CodeWriter w, Shape g, Flavor flavor)
    {
        using (w.Block($"for (int plane = 0; plane < {g.Planes}; plane++)"))
        {
            w.Line($"int ch = plane % {g.M};");
            flavor.BeginPlane(w, g, null);
            using (w.Block($"for (int oy = 0; oy < {g.OH}; oy++)"))
            using (w.Block($"for (int ox = 0; ox < {g.OW}; ox++)"))
            {
                w.Line("float sum = start;");
                for (int kh = 0; kh < g.KH; kh++)
                {
                    w.Line($"int ih{kh} = oy * {g.SH} + {kh - g.PT};");
                    using (w.Block($"if ((uint)ih{kh} < {g.H}u)"))
                    {
                        for (int kw = 0; kw < g.KW; kw++)
                            w.Line($"if ((uint)(ox * {g.SW} + {kw - g.PL}) < {g.W}u) sum += w{kh * g.KW + kw} * {flavor.LoadScalar($"ih{kh} * {g.W} + ox * {g.SW} + {kw - g.PL}")};");
                    }
                }
                flavor.StoreScalar(w, g, $"oy * {g.OW} + ox");
            }
        }
    }
}
